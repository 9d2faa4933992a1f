"""Fetching a result video: streamed to disk as it arrives, resumed with Range after a cut, retried through
the one retry loop, then verified (length, and a PyAV probe that it is a playable MP4) and stored by its
hash. A link that answers 401/403/404/410 has expired or never was; that is not retried."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._http import TransportError
from .errors import DownloadError, LostContact
from .jobs import Job
from .retry import Outcome, parse_retry_after, retrying

if TYPE_CHECKING:
    from ._runner import JobRunner


async def fetch_video(runner: JobRunner, job: Job) -> Path:
    """Stream the result to disk, resuming with Range after a cut, then verify length and that it is
    a playable MP4."""
    from .video import probe_file

    if not job.video_url:
        raise DownloadError(f"task {job.task_id} SUCCEEDED without a video URL")
    url = job.video_url
    part = runner.store.partial(job.id)
    part.unlink(missing_ok=True)
    announced: list[int] = []

    async def attempt(_n: int) -> Outcome:
        try:
            got = await runner.http.fetch_into(url, part)
        except TransportError as exc:
            return Outcome.retry(type(exc).__name__)
        if got.status in (401, 403, 404, 410):
            expired = "expire" in got.body.lower()
            return Outcome.fail(
                DownloadError(
                    f"result URL for task {job.task_id} answered HTTP {got.status}"
                    + (": the link expired (hosts keep result URLs 24 h)" if expired else f": {got.body}")
                )
            )
        if got.status == 429 or got.status >= 500:
            return Outcome.retry(f"HTTP {got.status}", parse_retry_after(got.headers.get("retry-after")))
        if got.status >= 400:
            return Outcome.fail(DownloadError(f"result URL for task {job.task_id} answered HTTP {got.status}"))
        if got.total is not None:
            announced[:] = [got.total]
        size = part.stat().st_size
        if announced and size < announced[0]:
            return Outcome.retry(f"got {size} of {announced[0]} bytes")
        return Outcome.done(size)

    def give_up(out: Outcome, tries: int) -> int:
        raise LostContact(
            f"download of task {job.task_id}'s video failed after {tries} tries ({out.why}); "
            f"the URL stays valid 24 h: lab.resume() can fetch it later"
        )

    def on_retry(out: Outcome, tries: int, delay: float) -> None:
        got = part.stat().st_size if part.exists() else 0
        job.emit(
            "retry",
            f"download: {out.why}; resuming at byte {got} in {delay:.2f} s",
            route="download",
            attempt=tries,
            retry_after=out.retry_after,
        )
        runner.stats["retries"] += 1

    size = await retrying(attempt, runner.retry, runner.rng, give_up=give_up, on_retry=on_retry)
    if announced and size != announced[0]:
        raise DownloadError(f"download of task {job.task_id}: {size} bytes on disk, {announced[0]} announced")
    try:
        info = await asyncio.to_thread(probe_file, part)
    except ValueError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"task {job.task_id}'s file is not a playable MP4 ({exc})") from None
    job.sha256 = info.pop("sha256")
    final = runner.store.ingest(part, job.sha256)
    job.video_path = final
    job.bytes = size
    job.video_info = info
    job.timings["downloaded"] = time.time()
    job.emit("downloaded", f"{size} bytes → {final}", path=str(final))
    return final
