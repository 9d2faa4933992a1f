"""What came out of a run: its video measured by `wanlab.quality` in a worker process, the figures written
to the run's log row. Measuring never blocks or fails a run: it starts after the job has SUCCEEDED, and
an error lands in the row's `quality_error`.

Why a process, not a thread: decoding and optical flow hold the GIL often enough to stretch the kernel's
round trip; one worker subprocess per Python process (`quality/_worker.py` says why not multiprocessing),
shared by every Lab in it and run at a lower priority, keeps the kernel and wanlab's loop thread free.
Started on the first video to measure, and again if it died.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import output_size
from .jobs import Job, JobEvent, Status
from .quality import QUALITY_COLUMNS  # a table, no OpenCV: that loads in the worker

if TYPE_CHECKING:
    import pandas as pd

    from .log import ExperimentLog
    from .requests import Request

log = logging.getLogger("wanlab")

COLUMNS = (*QUALITY_COLUMNS, "clip_score")  # what a measurement writes to the log (besides quality_error)


class WorkerDied(RuntimeError):
    """The measuring worker ended (killed, out of memory, a crash in a codec) before it answered."""


class _Worker:
    """One `wanlab.quality._worker` subprocess and the futures of the videos it was sent."""

    def __init__(self) -> None:
        import wanlab

        env = dict(os.environ)
        # the worker imports wanlab from where this process did (a checkout on sys.path included)
        root = str(Path(wanlab.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        nice = shutil.which("nice")  # lowered before Python starts: its imports are the heaviest part
        self.proc = subprocess.Popen(
            [*([nice, "-n", "10"] if nice else []), sys.executable, "-m", "wanlab.quality._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.pending: dict[int, concurrent.futures.Future[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self.next_id = 0
        self.dead = False
        threading.Thread(target=self._read, name="wanlab-quality-reader", daemon=True).start()

    def submit(self, *args: Any) -> concurrent.futures.Future[dict[str, Any]]:
        from .quality._worker import write_frame

        fut: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self.lock:
            if self.dead:
                fut.set_exception(WorkerDied("the measuring worker has ended"))
                return fut
            self.next_id += 1
            self.pending[self.next_id] = fut
            try:
                assert self.proc.stdin is not None
                write_frame(self.proc.stdin, (self.next_id, *args))
            except (OSError, ValueError):
                del self.pending[self.next_id]
                self.dead = True
                fut.set_exception(WorkerDied("the measuring worker has ended"))
        return fut

    def _read(self) -> None:
        from .quality._worker import read_frame

        assert self.proc.stdout is not None
        while True:
            try:
                ident, ok, value = read_frame(self.proc.stdout)
            except Exception:  # EOF or a garbled frame: the worker is gone
                break
            with self.lock:
                fut = self.pending.pop(ident, None)
            if fut is not None:
                fut.set_result(value) if ok else fut.set_exception(MeasureError(value))
        with self.lock:
            self.dead = True
            left, self.pending = list(self.pending.values()), {}
        code = self.proc.wait()
        self._close_output()
        for fut in left:
            fut.set_exception(WorkerDied(f"the measuring worker ended (exit code {code}) before answering"))

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._close_output()  # at exit the reader thread may never run again to do it

    def _close_output(self) -> None:
        """The worker's stdout, once it has ended (left open: a ResourceWarning when the process exits)."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdout is not None
            self.proc.stdout.close()


class MeasureError(RuntimeError):
    """`measure` raised in the worker; the message is its type and text."""


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _measure_async(
    path: str, first: bytes | None, last: bytes | None, expect: dict[str, float], clip: tuple[str, str] | None
) -> concurrent.futures.Future[dict[str, Any]]:
    """Hand one video to the process's measuring worker (started on first use, again after it died)."""
    global _worker
    with _worker_lock:
        if _worker is None or _worker.dead:
            _worker = _Worker()
            atexit.register(_worker.close)
        worker = _worker
    return worker.submit(path, first, last, expect, clip)


def expectation(req: Request) -> dict[str, float]:
    """What the delivered video should be, as far as the request says: its length, and its size when the
    host does not fit it to an input picture or video."""
    out: dict[str, float] = {}
    if req.duration:  # edit's 0 means "the whole input video": no fixed length to check
        out["duration"] = float(req.duration)
    if req.mode == "t2v":
        out["width"], out["height"] = output_size(req.resolution, getattr(req, "ratio", None))
    return out


def frames_of(req: Request) -> tuple[bytes | None, bytes | None]:
    """The first and last frame a request gave as local bytes (I2V's image, FLF2V's first and last)."""
    first = getattr(req, "first", None) or getattr(req, "image", None)
    last = getattr(req, "last", None)
    return (getattr(first, "data", None), getattr(last, "data", None))


def frames_from_row(row: dict[str, Any]) -> tuple[bytes | None, bytes | None]:
    """The same from a log row: inputs kept in the media store (a URL is not fetched again)."""
    try:
        inputs = json.loads(row.get("inputs") or "{}")
    except ValueError:
        return None, None

    def read(ref: Any) -> bytes | None:
        if isinstance(ref, dict) and "file" in ref and Path(ref["file"]).is_file():
            return Path(ref["file"]).read_bytes()
        return None

    return read(inputs.get("first") or inputs.get("image")), read(inputs.get("last"))


class Measurer:
    """Measures this Lab's downloaded videos and writes the figures to its log."""

    def __init__(self, log: ExperimentLog, enabled: bool = True, clip_dir: str | None = None):
        self.log = log
        self.enabled = enabled
        self.clip_dir = clip_dir  # a local CLIP model (quality/_clip.py): each run also gets a clip_score
        self._pending: dict[str, concurrent.futures.Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def after(self, job: Job, ev: JobEvent) -> None:
        """Job observer: a run that SUCCEEDED is measured (on the loop thread: only a hand-off)."""
        if not self.enabled or ev.kind != "status" or job.status is not Status.SUCCEEDED or job.video_path is None:
            return
        first, last = frames_of(job.request)
        written = self.submit(job.id, job.video_path, first, last, expectation(job.request), job.request.prompt)
        written.add_done_callback(lambda f: setattr(job, "quality", f.result()))

    def submit(
        self,
        run_id: str,
        path: str | os.PathLike,
        first: bytes | None,
        last: bytes | None,
        expect: dict[str, float],
        prompt: str = "",
    ) -> concurrent.futures.Future[dict[str, Any]]:
        """Measure one video; the returned future ends once the figures (or the error) are in the log,
        with the values written."""
        clip = (self.clip_dir, prompt) if self.clip_dir and prompt else None
        fut = _measure_async(str(path), first, last, expect, clip)
        written: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            self._pending[run_id] = written
        fut.add_done_callback(lambda f: self._record(run_id, f, written))
        return written

    def _record(self, run_id: str, fut: concurrent.futures.Future, written: concurrent.futures.Future) -> None:
        exc = fut.exception()
        values = {k: fut.result().get(k) for k in COLUMNS} if exc is None else {}
        why = str(exc) if exc is not None else fut.result().get("clip_error")
        values["quality_error"] = None if why is None else why[:500]
        try:
            self.log.update(run_id, **values)
        except Exception as write_exc:  # a closed log: the row stays unmeasured, lab.measure() backfills it
            log.debug("quality of %s not recorded: %s", run_id, write_exc)
        with self._lock:
            if self._pending.get(run_id) is written:
                del self._pending[run_id]
        written.set_result(values)

    def backfill(self, ids: list[str] | None, again: bool) -> list[str]:
        """Measure logged runs (the given ones, or all) that succeeded, have a file and were not measured
        yet (with `again`: also those that were). Returns the ids being measured, in flight ones included."""
        rows = self.log.rows(status="SUCCEEDED") if ids is None else self._rows(ids)
        todo = []
        for row in rows:
            if not row.get("path") or not Path(row["path"]).is_file():
                continue
            if not again and (row.get("exposure") is not None or row.get("quality_error")):  # measured
                continue
            with self._lock:
                if row["run_id"] in self._pending:
                    todo.append(row["run_id"])
                    continue
            from ._records import from_record

            expect: dict[str, float] = {}
            try:
                req = from_record(
                    row["mode"], row, json.loads(row["params"] or "{}"), json.loads(row["inputs"] or "{}")
                )
                expect = expectation(req)
            except Exception:  # an old or odd row: measure without expectations
                pass
            first, last = frames_from_row(row)
            self.submit(row["run_id"], row["path"], first, last, expect, row.get("prompt") or "")
            todo.append(row["run_id"])
        return todo

    def _rows(self, ids: list[str]) -> list[dict[str, Any]]:
        rows = self.log.rows(run_id=ids)
        missing = set(ids) - {r["run_id"] for r in rows}
        if missing:
            raise KeyError(f"no runs {', '.join(sorted(missing))} in {self.log.path}")
        return [r for r in rows if r["status"] == "SUCCEEDED"]

    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        """Block until the given (default: all) pending measurements are written; False on timeout."""
        with self._lock:
            futs = [f for rid, f in self._pending.items() if run_ids is None or rid in set(run_ids)]
        done, not_done = concurrent.futures.wait(futs, timeout)
        return not not_done


def run_ids(runs: Any) -> list[str]:
    """Run ids of a sweep, a DataFrame of log rows, or an iterable of run ids or jobs."""
    frame = getattr(runs, "df", runs)  # a Sweep's rows
    if hasattr(frame, "columns") and "run_id" in frame.columns:
        return [str(r) for r in frame["run_id"]]
    if isinstance(runs, (str, Job)):
        runs = [runs]
    return [r.id if isinstance(r, Job) else str(r) for r in runs]


class LabOutcomes:
    """The Lab's methods about what came out of its runs: measured figures, blind judging, rankings."""

    log: ExperimentLog
    measurer: Measurer

    def measure(
        self, runs: Any = None, *, again: bool = False, wait: bool = True, timeout: float | None = None
    ) -> pd.DataFrame:
        """Measure logged runs (a sweep, a DataFrame of log rows, run ids or jobs; default: every successful
        run not measured yet, or with `again`, every one) and return their quality columns once written
        (`wait=False`: at once, figures still arriving). New runs are measured as they finish; this backfills
        older ones and waits for those in flight. Given runs are measured only if not measured yet, unless
        `again`."""
        wanted = None if runs is None else run_ids(runs)
        ids = self.measurer.backfill(wanted, again)
        if wait and not self.measurer.wait(ids, timeout):
            raise TimeoutError(f"measuring {len(ids)} runs took longer than {timeout} s; they go on in the background")
        frame = self.log.frame(status="SUCCEEDED") if wanted is None else self.log.frame(run_id=wanted)
        cols = [c for c in COLUMNS if c != "clip_score" or self.measurer.clip_dir]
        return frame[["run_id", "prompt", "seed", *cols, "quality_error"]].set_index("run_id")

    def judge(
        self,
        runs: Any = None,
        by: str = "prompt",
        *,
        judge: str | None = None,
        seed: int | None = None,
        target: int = 5,
    ) -> Any:
        """Blind side-by-side judging of runs (a sweep, a DataFrame of log rows, run ids or jobs; default: all
        successful runs): two videos in sync, labels hidden, order random; each choice goes to the log. Pairs
        are chosen between values of `by` (e.g. prompt variants) where a judgment tells most, until each has
        `target` comparisons. In a notebook the session shows as a widget; `session.choose(...)` scripts it."""
        from . import judging

        def view(session: Any) -> Any:
            from .ui.judge import judge_view  # anywidget only when a notebook shows the session

            return judge_view(session)

        return judging.start(self, runs, by=by, judge=judge, seed=seed, target=target, view=view)

    def ranking(self, by: str = "prompt", runs: Any = None) -> pd.DataFrame:
        """Bradley–Terry (with ties) fitted to the log's judgments, per value of `by`: score, 95 % interval,
        comparisons, wins, ties, losses."""
        from . import judging

        return judging.rank(self, by=by, runs=runs)
