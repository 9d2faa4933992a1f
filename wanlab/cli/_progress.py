"""Waiting on jobs at a terminal: their state, elapsed time and ETA on stderr — one line redrawn in place
on a TTY, a plain line per state change elsewhere (a log file, CI) — and Ctrl-C, which cancels them on
the host and waits briefly for its answer."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from ..providers.base import Status
from ._common import say

if TYPE_CHECKING:
    from ..jobs import Job

TICK_S = 0.25  # redraw period; also how soon a finished job is noticed
CANCEL_WAIT_S = 15.0  # how long Ctrl-C waits for the host's answer to the cancel
BAR = 20
# events worth a line besides status changes: what the host said to a cancel, a resumed or attached run,
# a retry, a job left unfinished for `wanlab resume`
_TOLD = ("cancel", "resumed", "attached", "retry", "detached", "reconciled")


def expected_s(job: Job, time_scale: float) -> float:
    """Real seconds the task should run: what the job's poller expects (the log's history of similar runs,
    else the model's prior), on this Lab's clock."""
    return job.expected_run_s * time_scale


def eta(job: Job, time_scale: float, now: float) -> float | None:
    """Seconds until the task should end (negative: overdue), from the run's start, else from the accepted
    submit (a queue on the host is not foreseen); None once the host has ended it."""
    if job.status.terminal or job.status is Status.DOWNLOADING:
        return None
    anchor = job.timings["scheduled"] or job.timings["submitted"] or now
    return anchor + expected_s(job, time_scale) - now


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 90 else f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def _eta_text(left: float | None) -> str:
    if left is None:
        return ""
    return f"ETA ~{fmt_s(left)}" if left > 0 else "ETA passed (the host is slower than usual)"


def line(jobs: list[Job], time_scale: float, now: float) -> str:
    """One line for the jobs: a bar for one job, counts by state for several; elapsed; the latest ETA."""
    started = min((j.timings["created"] or now) for j in jobs)
    lefts = [x for x in (eta(j, time_scale, now) for j in jobs) if x is not None]
    left = max(lefts) if lefts else None
    if len(jobs) == 1:
        job = jobs[0]
        total = expected_s(job, time_scale)
        frac = 1.0 if job.status.terminal else 0.02 if left is None or total <= 0 else 1 - max(0.0, left) / total
        filled = int(BAR * max(0.0, min(1.0, frac)))
        head = f"[{'#' * filled}{'.' * (BAR - filled)}] {job.status}"
    else:
        counts: dict[str, int] = {}
        for j in jobs:
            counts[str(j.status)] = counts.get(str(j.status), 0) + 1
        head = f"{len(jobs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return "  ".join(b for b in (head, fmt_s(now - started), _eta_text(left)) if b)


class Watch:
    """Shows `jobs` until every one has ended. A KeyboardInterrupt (Ctrl-C) propagates to the caller."""

    def __init__(self, jobs: list[Job], time_scale: float):
        self.jobs = jobs
        self.time_scale = time_scale
        self.tty = sys.stderr.isatty()
        self._seen = dict.fromkeys((j.id for j in jobs), 0)  # events already told, per job

    def wait(self) -> None:
        try:
            while not all(j.done for j in self.jobs):
                self.show()
                if len(self.jobs) == 1:
                    self.jobs[0].wait(TICK_S)  # wakes at once when it ends
                else:
                    time.sleep(TICK_S)
        finally:
            self.show()
            if self.tty:
                print(file=sys.stderr, flush=True)

    def show(self) -> None:
        now = time.time()
        if self.tty:
            print(f"\r\x1b[K{line(self.jobs, self.time_scale, now)}", end="", file=sys.stderr, flush=True)
            return
        for job in self.jobs:
            events = job.events[self._seen[job.id] :]
            self._seen[job.id] += len(events)
            for ev in events:
                if ev.kind == "status":
                    left = _eta_text(eta(job, self.time_scale, now)) if ev is job.events[-1] else ""
                    detail = f" — {ev.detail}" if ev.detail and ev.status.terminal else ""
                    when = fmt_s(ev.t - (job.timings["created"] or ev.t))
                    say(f"wanlab: run {job.id} {ev.status} at {when}" + (f", {left}" if left else "") + detail)
                elif ev.kind in _TOLD:
                    say(f"wanlab: run {job.id}: {ev.detail}")


def cancel(jobs: list[Job]) -> None:
    """Ctrl-C: ask the host to cancel each unfinished job, wait up to CANCEL_WAIT_S for its answer (a second
    Ctrl-C stops waiting), and say what became of each. A task the host would not cancel is running and
    billed: its row stays unfinished and `wanlab resume` downloads it."""
    todo = [j for j in jobs if not j.done]
    for job in todo:
        job.cancel()
    if todo:
        say(f"wanlab: cancelling {len(todo)} run(s) on the host (Ctrl-C again to stop waiting) …")
    deadline = time.monotonic() + CANCEL_WAIT_S
    try:
        while time.monotonic() < deadline and not all(j.done or j.cancel_outcome in _KEEPS for j in todo):
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    for job in todo:
        say(f"wanlab: run {job.id}: {cancel_outcome(job)}")


_KEEPS = ("refused", "unsupported")  # the host keeps the task running: no point waiting for an end


def cancel_outcome(job: Job) -> str:
    if job.status is Status.CANCELED:
        where = f"task {job.task_id} cancelled on the host" if job.task_id else "cancelled before anything was sent"
        return f"{where}; not billed"
    if job.status is Status.SUCCEEDED:
        return f"it had already finished (paid): the video is at {job.video_path}"
    said = [ev.detail for ev in job.events if ev.kind == "cancel"]
    resume = "its row stays unfinished and `wanlab resume` downloads the video"
    if job.cancel_outcome == "unsupported":
        host = {"wavespeed": "WaveSpeed", "dashscope": "DashScope"}.get(job.protocol, job.host)
        return f"{host} cannot cancel a task it accepted: task {job.task_id} runs to its end, billed; {resume}"
    if job.cancel_outcome == "refused":
        return f"{said[-1] if said else 'the host refused the cancel'}; {resume}"
    if job.done:
        return f"ended {job.status}"
    return f"no answer from the host yet (status {job.status}); `wanlab resume` follows it up"
