"""Grids and seed studies: expand a base request over axes, price the grid before spending, run it under
the host's limits (and a budget), and collect the runs as one tidy DataFrame."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from queue import Empty, Queue
from typing import TYPE_CHECKING, Any

from . import _arguments as arguments
from . import _recovery as recovery
from . import _submission as submission
from .cost import Budget, BudgetExceeded, Estimate, total
from .errors import ValidationError
from .jobs import Job, JobEvent
from .providers.base import Status
from .requests import Request

if TYPE_CHECKING:
    import pandas as pd

    from .lab import Lab


@dataclass(frozen=True)
class SweepProgress:
    """Where a running sweep stands, as `Sweep.run(on_progress=...)` hooks receive it. `done` counts reused
    runs too; `eta` is seconds (None until a run of this call has ended); `final` is True once, at the end,
    with `stopped` saying why submitting stopped early ("" when it did not). `str()` is the one-line summary."""

    done: int
    failed: int
    in_flight: int
    total: int
    spent: float
    eta: float | None
    reused: int = 0
    elapsed: float = 0.0
    stopped: str = ""
    final: bool = False

    def __str__(self) -> str:
        eta = "—" if self.eta is None else f"{self.eta:.0f} s"
        text = (
            f"{self.done}/{self.total} done, {self.failed} failed, {self.in_flight} in flight, "
            f"spent {self.spent:.2f}, ETA {eta}"
        )
        return text + (f" — stopped: {self.stopped}" if self.stopped else "")


def _progress(
    jobs: list[Job | None], total: int, reused: int, spent: float, t0: float, stopped: str = "", final: bool = False
) -> SweepProgress:
    done = sum(1 for j in jobs if j is not None and j.done) + reused
    failed = sum(1 for j in jobs if j is not None and j.done and j.status is not Status.SUCCEEDED)
    flying = sum(1 for j in jobs if j is not None and not j.done)
    elapsed = time.monotonic() - t0
    eta = elapsed / (done - reused) * (total - done) if done > reused else None
    return SweepProgress(done, failed, flying, total, spent, eta, reused, elapsed, stopped, final)


def _progress_hook(
    progress: bool, on_progress: Callable[[SweepProgress], Any] | None
) -> Callable[[SweepProgress], Any] | None:
    """The caller's hook; else, with `progress`, the notebook bar / stderr line (imported only then)."""
    if on_progress is not None or not progress:
        return on_progress
    from .ui.progress import ProgressDisplay

    return ProgressDisplay()


class Sweep:
    """`lab.sweep(T2V("…", seed=1), resolution=["720P", "1080P"], duration=[2, 5], seed=[1, 2, 3])`.

    Every combination is built (and validated) at once, so a bad cell fails before anything is spent.
    Runs already in the log with the same request and seed are reused unless `reuse=False`."""

    def __init__(self, lab: Lab, base: Request, *, study: str | None = None, reuse: bool = True, **axes: Sequence[Any]):
        checked = arguments.sweep_axes(base, axes, study=study, reuse=reuse)  # field names, non-empty value lists
        self.lab = lab
        self.base = base
        self.study = study or f"sweep-{uuid.uuid4().hex[:8]}"
        self.reuse = reuse
        for name, values in checked.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ValidationError(f"sweep axis {name}={values!r}: give a non-empty list of values")
        self.axes = {k: list(v) for k, v in checked.items()}
        self.cells: list[dict[str, Any]] = [
            dict(zip(self.axes, combo, strict=True)) for combo in itertools.product(*self.axes.values())
        ]
        self.requests: list[Request] = []
        for cell in self.cells:
            try:
                req = base.replace(**cell) if cell else base
                lab.resolve(req)
            except ValidationError as exc:
                raise ValidationError(f"sweep cell {cell}: {exc}") from None
            self.requests.append(req)
        self.jobs: list[Job | None] = [None] * len(self.requests)
        self.run_ids: list[str | None] = [None] * len(self.requests)
        self.stopped = ""  # why the last run() stopped submitting early; "" when it did not
        self.budget: Budget | None = None  # the last run()'s guard: limit, actual spend, currency
        self._not_started: dict[int, str] = {}  # cell index → why the last run() never sent it

    def __len__(self) -> int:
        return len(self.requests)

    def __repr__(self) -> str:
        axes = ", ".join(f"{k}×{len(v)}" for k, v in self.axes.items())
        return f"<Sweep {self.study}: {len(self)} runs ({axes}) on {self.lab.host}>"

    # -- before spending -------------------------------------------------------------------------
    def _reusable(self) -> dict[int, str]:
        """index → run id of a successful logged run with the same seeded request on this host."""
        if not self.reuse:
            return {}
        twins = {i: recovery.finished_twin(self.lab, req) for i, req in enumerate(self.requests)}
        return {i: run_id for i, run_id in twins.items() if run_id is not None}

    def estimate(self) -> Estimate:
        """What the runs still to do would cost (reused runs are free)."""
        reused = self._reusable()
        todo = [r for i, r in enumerate(self.requests) if i not in reused]
        return total(self.lab.estimate(r) for r in todo) if todo else Estimate(0.0, "", 0.0, "all reused", 0)

    # -- spending --------------------------------------------------------------------------------
    def run(
        self,
        budget: float | None = None,
        max_concurrency: int | None = None,
        progress: bool = True,
        timeout: float | None = None,
        *,
        on_progress: Callable[[SweepProgress], Any] | None = None,
    ) -> Sweep:
        """Submit the grid and wait for it. At most `max_concurrency` of this sweep's jobs are in flight
        (the Lab's host limits still apply).

        `budget` (in the currency of the Lab's prices) is a limit, not an expectation that the grid fits:
        cells start in grid order while the estimate says they fit; one that would pass the budget waits
        while runs are in flight (they may cost less than estimated) and cheaper cells go first; once nothing
        is in flight and no cell left fits, submitting stops. Then `sweep.stopped` says so, `sweep.df`'s
        `not_started` column gives each unsent cell's reason (the budget's refusal: spend, estimate,
        currency), and `sweep.budget` is the guard (`limit`, actual `spent`, `currency`). Spend never passes
        the budget by the estimates; the Lab's own budget applies too.

        An interrupt stops submitting; jobs already sent are cancelled on the host where it can; those it
        would not cancel are still downloaded. `timeout` raises TimeoutError (the runs stay in the log).

        `on_progress(p)` receives a `SweepProgress` on this thread: at the start, after every event (at
        least once a second) and once at the end (`p.final`). Without it, `progress=True` shows a bar in a
        notebook (a line on stderr elsewhere); `progress=False` shows nothing."""
        budget, max_concurrency, timeout = arguments.sweep_run_arguments(
            budget, max_concurrency, timeout, progress, on_progress
        )
        reused = self._reusable()
        for i, run_id in reused.items():
            self.run_ids[i] = run_id
        queue = [i for i in range(len(self)) if i not in reused]
        limit = max_concurrency or self.lab.client.limits.concurrent_jobs
        guard = self.budget = Budget(budget, self.lab.budget.currency)  # the Lab's prices' currency, if one
        self.stopped, self._not_started = "", {}
        hook = _progress_hook(progress, on_progress)
        t0 = time.monotonic()

        def report(stopped: str = "", final: bool = False) -> None:
            if hook is not None:
                hook(_progress(self.jobs, len(self), len(reused), guard.spent, t0, stopped, final))

        report()
        events: Queue[tuple[str, int]] = Queue()
        on_host: set[int] = set()  # submitted, not yet DOWNLOADING: what max_concurrency counts
        unfinished: set[int] = set()
        # cell → the budget's refusal; not asked again until a run settles (only a settled cost frees room)
        refused: dict[int, str] = {}
        by_budget = False
        deadline = None if timeout is None else time.monotonic() + timeout
        stopped = ""

        def watch(i: int) -> Callable[[Job, JobEvent], None]:
            def on_event(job: Job, ev: JobEvent) -> None:  # on the Lab's loop thread: only enqueue
                if ev.kind == "status" and (job.status is Status.DOWNLOADING or job.status.terminal):
                    events.put(("slot", i))

            return on_event

        def finished(i: int) -> Callable[[Job], None]:
            return lambda _j: events.put(("done", i))

        try:
            while queue or unfinished:
                for i in list(queue):
                    if len(on_host) >= limit:
                        break
                    if i in refused:
                        continue
                    try:
                        job = submission.submit(
                            self.lab,
                            self.requests[i],
                            study=self.study,
                            budget=guard,
                            tags={"sweep_cell": self.cells[i]},
                            reuse=self.reuse,
                        )
                    except BudgetExceeded as exc:
                        refused[i] = str(exc)
                        continue
                    queue.remove(i)
                    if isinstance(job, str):  # another kernel finished this cell since the sweep started
                        reused[i] = self.run_ids[i] = job
                        continue
                    self.jobs[i], self.run_ids[i] = job, job.id
                    on_host.add(i)
                    unfinished.add(i)
                    job.observe(watch(i))
                    job.add_done_callback(finished(i))
                if queue and not unfinished:  # every cell left was refused, and nothing can free up room
                    stopped = f"the budget stopped {len(queue)} of {len(self)} cells: {refused[queue[0]]}"
                    by_budget = True
                    break
                try:
                    kind, i = events.get(timeout=1.0)
                    on_host.discard(i)  # a downloading job no longer holds a host slot
                    if kind == "done":
                        unfinished.discard(i)
                        refused.clear()
                except Empty:
                    pass
                report()
                if deadline is not None and time.monotonic() > deadline:
                    stopped = f"timeout: not done after {timeout} s"
                    raise TimeoutError(
                        f"sweep {self.study} not done after {timeout} s; {len(unfinished)} jobs "
                        f"still running (they stay in the log), {len(queue)} not started"
                    )
        except KeyboardInterrupt:
            # the stop button stops paying: cancel what the host can still cancel; the rest is downloaded
            stopped = "interrupted: unfinished runs cancelled where the host could"
            for sent in self.jobs:
                if sent is not None and not sent.done:
                    sent.cancel()
            raise
        finally:
            self.stopped = stopped
            why = stopped or "not sent: run() ended on an error"
            self._not_started = {i: refused[i] if by_budget else why for i in queue}
            report(stopped, final=True)
        return self

    # -- results ---------------------------------------------------------------------------------
    @property
    def df(self) -> pd.DataFrame:
        """One row per cell: the axis values (`cell_…`), the run's log columns, `reused` (True for a run
        taken from the log), and `not_started`: why the last `run()` sent no run for the cell (the budget's
        refusal, an interrupt, a timeout), NA where a run was sent or reused. A cell not started has NA
        log columns (`status` included)."""
        import pandas as pd

        ids = [r for r in self.run_ids if r]
        runs = self.lab.log.frame(run_id=ids)
        cells = pd.DataFrame(
            [
                {**{f"cell_{k}": v for k, v in c.items()}, "run_id": rid}
                for c, rid in zip(self.cells, self.run_ids, strict=True)
            ]
        )
        cells["run_id"] = cells["run_id"].astype("string")
        out = cells.merge(runs, on="run_id", how="left")
        out["reused"] = [rid is not None and (job is None) for rid, job in zip(self.run_ids, self.jobs, strict=True)]
        out["not_started"] = pd.array([self._not_started.get(i) for i in range(len(self))], dtype="string")
        return out

    def show(self, by: str | None = None, **kwargs: Any) -> Any:
        from .ui import show

        return show(self.df, by=by, **kwargs)

    @property
    def summary(self) -> str:
        """One line on the last `run()`: runs by status, cells not started, spend against the budget (actual,
        this call's runs only: reused ones cost nothing now) and why submitting stopped."""
        return self._summary(self.df)

    def _summary(self, df: pd.DataFrame) -> str:
        counts = df["status"].dropna().value_counts().to_dict()
        parts = [f"{n} {status}" for status, n in counts.items() if n]
        if self._not_started:
            parts.append(f"{len(self._not_started)} not started")
        text = f"{len(self)} cells: " + (", ".join(parts) or "none run yet")
        guard = self.budget
        if guard is not None:
            unit = f" {guard.currency}" if guard.currency else ""
            text += f"; spent {guard.spent:.2f}{unit}"
            if guard.limit is not None:
                text += f" of a {guard.limit:.2f}{unit} budget"
        return text + (f" — stopped: {self.stopped}" if self.stopped else "")

    def _repr_html_(self) -> str:
        import html

        df = self.df
        cols = [c for c in df.columns if c.startswith("cell_")] + ["status", "latency_s", "cost", "currency"]
        if self._not_started:
            cols.append("not_started")
        from ._views import sweep_html

        table = df[cols].to_html(index=False, na_rep="—", float_format=lambda x: f"{x:.2f}")
        head = f"<b>{html.escape(repr(self))}</b><br>{html.escape(self._summary(df))}"
        return f"<div>{head}{table}</div>" + sweep_html(self)
