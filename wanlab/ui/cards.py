"""A live job card: status, progress with an ETA, elapsed time, ids, cost; the video when done; a rating
and notes saved to the log; "new seed" and "same seed, edit the prompt".

The card is updated from the Lab's loop thread (job observers) and from a 0.5 s ticker thread by setting
traits only — never printing, never `with out:` — so it keeps moving while the user runs other cells. The
video goes through an `Output` widget (`append_display_data`, a trait change too) because JupyterLab
rewrites a relative `src` there but not inside `ipywidgets.HTML`.
"""

from __future__ import annotations

import html
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .._views import video_html
from ..catalog import SEED_MAX
from ..providers.base import Status

if TYPE_CHECKING:
    from ..jobs import Job, JobEvent
    from ..lab import Lab

TICK_S = 0.5
BAR_STYLE = {
    Status.SUCCEEDED: "success",
    Status.FAILED: "danger",
    Status.CANCELED: "warning",
    Status.UNKNOWN: "warning",
}


def random_seed() -> int:
    return random.randint(0, SEED_MAX)


def expected_latency(lab: Lab, job: Job) -> tuple[float, str]:
    """(seconds, where from): the median latency of this log's finished runs on the same host with the same
    model, resolution and duration; else the model's prior scaled by the Lab's time scale."""
    r = job.request
    try:
        seen = sorted(
            lab.log.similar(
                "latency_s",
                model=job.model.id,
                resolution=r.resolution,
                duration=r.duration,
                host=job.host,
                exclude=job.id,
            )
        )
        if seen:
            return seen[len(seen) // 2], f"median of {len(seen)} similar run(s)"
    except Exception:  # a log another version wrote, a closed log: fall back to the prior
        pass
    return job.model.expected_latency(r.resolution, r.duration) * lab.time_scale, "model prior"


def _fmt_t(s: float) -> str:
    return f"{s:.1f} s" if s < 90 else f"{int(s // 60)} min {int(s % 60):02d} s"


class JobCard(widgets.VBox):
    """`JobCard(lab, job)`; `on_new_job(job)` places jobs its buttons start (default: below the card),
    `on_edit(request, seed)` loads a request into a form (default: a new form below the card)."""

    def __init__(
        self,
        lab: Lab,
        job: Job,
        *,
        on_new_job: Callable[[Job], Any] | None = None,
        on_edit: Callable[[Any, int | None], Any] | None = None,
        embed: bool | None = None,
    ):
        self.lab, self.job, self.embed = lab, job, embed
        self._on_new_job, self._on_edit = on_new_job, on_edit
        self.eta_s, self.eta_source = expected_latency(lab, job)
        r = job.request
        prompt = html.escape(r.prompt[:160] + ("…" if len(r.prompt) > 160 else ""))
        self.title = widgets.HTML(
            f"<b>{job.mode.upper()}</b> · {html.escape(job.model.id)} · {r.resolution} · "
            f"{r.duration or 'input'} s · seed {job.seed if job.seed is not None else 'random'}"
            f"<br><span style='color:#444'>{prompt}</span>"
        )
        self.status = widgets.HTML()
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="60%"))
        self.info = widgets.HTML()
        self.video = widgets.Output()
        self.rating = widgets.ToggleButtons(
            options=[(f"{i} ★", i) for i in range(1, 6)],
            value=None,
            description="Rating",
            tooltips=[f"{i} of 5" for i in range(1, 6)],
            style={"button_width": "52px"},
            disabled=True,
        )
        self.notes = widgets.Textarea(
            placeholder="notes (saved to the log)",
            continuous_update=False,
            layout=widgets.Layout(width="60%", height="48px"),
            disabled=True,
        )
        self.saved = widgets.HTML()
        self.cancel_button = widgets.Button(description="Cancel", icon="stop")
        self.new_seed_button = widgets.Button(description="New seed", icon="random", disabled=True)
        self.edit_button = widgets.Button(
            description="Same seed, edit the prompt", icon="edit", disabled=True, layout=widgets.Layout(width="auto")
        )
        self.followups = widgets.VBox()
        self.cancel_button.on_click(lambda _: self.job.cancel())
        self.new_seed_button.on_click(lambda _: self.new_seed())
        self.edit_button.on_click(lambda _: self.edit())
        self.rating.observe(self._save_rating, "value")
        self.notes.observe(self._save_notes, "value")
        self._shown_video = False
        super().__init__(
            [
                self.title,
                widgets.HBox([self.status, self.progress]),
                self.info,
                self.video,
                widgets.HBox([self.rating, self.saved]),
                self.notes,
                widgets.HBox([self.cancel_button, self.new_seed_button, self.edit_button]),
                self.followups,
            ],
            layout=widgets.Layout(border="1px solid #ccc", padding="6px", margin="4px 0"),
        )
        self.refresh()
        job.observe(self._on_event)  # replays past events, then runs on the loop thread
        if not job.done and not lab.closed:
            threading.Thread(target=self._tick, name=f"wanlab-card-{job.id}", daemon=True).start()

    # -- updates (loop thread: traits only) ------------------------------------------------------
    def _on_event(self, job: Job, ev: JobEvent) -> None:
        self.refresh()

    def _tick(self) -> None:
        """Move the clock and the ETA every TICK_S until the job ends or its Lab closes. A thread of its own
        that only waits on the job (`Job.wait`) and sets traits: the card needs nothing from the Lab's
        private loop, and a slow trait update never delays the loop that drives every job."""
        while not self.job.wait(TICK_S) and not self.lab.closed:
            self.refresh()
        self.refresh()

    def refresh(self) -> None:
        """Set every trait from the job's current state (safe from any thread: traits only)."""
        job, now = self.job, time.time()
        t = job.timings
        start = t["submitted"] or t["started"] or t["created"] or now
        done = job.status.terminal  # set before job.done flips: show it at once
        end = (t["downloaded"] or t["ended"] or now) if done else None
        elapsed = (end or now) - (t["created"] or now)
        since = (end or now) - start
        status = job.status
        if done:
            self.progress.value = 1.0
            self.progress.bar_style = BAR_STYLE.get(status, "info")
            eta = ""
        else:
            frac = since / self.eta_s if self.eta_s > 0 and t["submitted"] else 0.02
            self.progress.value = max(0.02, min(0.97, frac))
            left = self.eta_s - since
            eta = (
                f"ETA ~{_fmt_t(max(0.0, left))} ({self.eta_source})"
                if left > 0
                else f"over the usual {_fmt_t(self.eta_s)}"
            )
        colour = {"success": "#080", "danger": "#b00", "warning": "#a60"}.get(self.progress.bar_style, "#036")
        self.status.value = f"<b style='color:{colour};min-width:110px;display:inline-block'>{status}</b>"
        cost = (
            f"{job.cost:.2f} {job.currency}"
            if job.cost is not None
            else f"est. {job.est_cost:.2f} {job.currency}"
            if job.est_cost is not None
            else "—"
        )
        bits = [
            f"elapsed {_fmt_t(elapsed)}",
            eta,
            f"request id {job.request_id or '—'}",
            f"task {job.task_id or '—'}",
            f"cost {cost}",
        ]
        if job.seed is not None:
            bits.append(f"seed {job.seed}")
        err = f"<div style='color:#b00'>{html.escape(str(job.error))}</div>" if job.error and done else ""
        self.info.value = f"<span style='font-size:12px;color:#333'>{' · '.join(b for b in bits if b)}</span>{err}"
        if done:
            self.cancel_button.disabled = True
            self.new_seed_button.disabled = self.edit_button.disabled = False
            self.rating.disabled = self.notes.disabled = False
            if status is Status.SUCCEEDED and job.video_path and not self._shown_video:
                self._shown_video = True
                # what Output.append_display_data does, without its InteractiveShell.instance() call,
                # which would create a shell on this thread when no kernel is running (tests, scripts)
                page = video_html(job.video_path, embed=self.embed)
                self.video.outputs = (
                    *self.video.outputs,
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"text/html": page, "text/plain": f"<video {job.video_path}>"},
                    },
                )

    # -- user actions (kernel thread) ------------------------------------------------------------
    def _save_rating(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.lab.log.set_rating(self.job.id, rating=int(change["new"]))
            self.saved.value = f"<span style='color:#080'>rating {change['new']} saved</span>"

    def _save_notes(self, change: dict[str, Any]) -> None:
        self.lab.log.set_rating(self.job.id, notes=change["new"])
        self.saved.value = "<span style='color:#080'>notes saved</span>"

    def new_seed(self) -> Job:
        """The same request with a fresh seed: `lab.submit(job.request.replace(seed=…))`."""
        job = self.lab.submit(self.job.request.replace(seed=random_seed()))
        if self._on_new_job is not None:
            self._on_new_job(job)
        else:
            self.followups.children = (JobCard(self.lab, job, embed=self.embed), *self.followups.children)
        return job

    def edit(self) -> Any:
        """Load this run's request, seed locked, into a form to change the prompt and go again."""
        seed = self.job.seed if self.job.seed is not None else self.job.request.seed
        if self._on_edit is not None:
            return self._on_edit(self.job.request, seed)
        from .forms import GenerateForm

        f = GenerateForm(self.lab, request=self.job.request, seed=seed, lock_seed=True)
        self.followups.children = (f, *self.followups.children)
        return f
