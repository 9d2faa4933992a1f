"""One request on several hosts — "which host is cheaper and faster for this?": `compare_hosts(request, labs)`
checks and prices the request on every host before anything is sent, runs it on each into one log, and
gives the runs side by side (`Comparison`). Prices stay in their own currencies: never added."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _checks as checks
from . import _hosts as hosts
from . import _recovery as recovery
from . import _submission as submission
from . import cost
from .cost import Estimate, Totals
from .errors import ValidationError, WanlabError

if TYPE_CHECKING:
    import pandas as pd

    from .catalog import ModelSpec
    from .jobs import Job
    from .lab import Lab
    from .requests import Request

WHERE = "compare_hosts"


def where(lab: Lab) -> str:
    """The host a Lab runs on, as the comparison names it: "sim:dashscope-beijing", "dashscope/singapore"."""
    return hosts.place(lab.host, lab.region)


class HostEstimates(dict[str, Estimate]):
    """What the request(s) cost on each host (host → `Estimate`, each in its host's currency) and `.totals`,
    one total per currency — never added."""

    @property
    def totals(self) -> Totals:
        return cost.totals(self.values())

    def __str__(self) -> str:
        width = max(map(len, self), default=5)
        return "\n".join([f"{h:<{width}}  {e}" for h, e in self.items()] + [f"{'total':<{width}}  {self.totals}"])

    __repr__ = __str__


def _checked(request: Any, labs: Any) -> tuple[list[Request], list[Lab]]:
    from .lab import Lab

    reqs = cost.requests_in(request)
    if not reqs:
        raise ValidationError(f"{WHERE}: no request given; pass one request (or a list of them)")
    if isinstance(labs, Lab) or not isinstance(labs, Sequence) or not labs:
        raise ValidationError(f"{WHERE}: labs must be a list of Labs, one per host, e.g. [singapore, beijing]")
    seen: set[str] = set()
    for lab in labs:
        if not isinstance(lab, Lab):
            raise ValidationError(f"{WHERE}: labs must be Labs, got {type(lab).__name__}")
        lab._check_open()
        if where(lab) in seen:
            raise ValidationError(f"{WHERE}: {where(lab)} is given twice; give each host once")
        seen.add(where(lab))
    return reqs, list(labs)


def estimate_hosts(request: Any, labs: Sequence[Lab]) -> HostEstimates:
    """Check `request` (or a list of requests) against every host and price it there; nothing is sent. A host
    that refuses it raises ValidationError naming the host and why (what to change)."""
    reqs, checked = _checked(request, labs)
    return _priced(reqs, checked)[0]


def _priced(reqs: list[Request], labs: list[Lab]) -> tuple[HostEstimates, list[list[ModelSpec]]]:
    out, specs = HostEstimates(), []
    for lab in labs:
        try:
            models = [lab.resolve(r) for r in reqs]
        except WanlabError as exc:
            raise ValidationError(
                f"{WHERE}: {where(lab)} refuses this request, so nothing was sent to any host: {exc}"
            ) from None
        specs.append(models)
        out[where(lab)] = cost.total(
            cost.estimate(r, m, lab.prices, lab.region or None) for r, m in zip(reqs, models, strict=True)
        )
    return out, specs


def compare_hosts(
    request: Any,
    labs: Sequence[Lab],
    *,
    study: str | None = None,
    fresh: bool = False,
    wait: bool = True,
    timeout: float | None = None,
) -> Comparison:
    """Run `request` (or a list of requests, e.g. several seeds) on each Lab's host, into one log.

    Before anything is sent, the request is checked and priced on every host, and each Lab's budget asked:
    one host refusing means nothing is sent anywhere. The Labs must share a log (the same `home=`, or
    `log=`) so the comparison is one log you can query, plot and resume. A seeded request already run on a
    host is reused (a successful run) or attached to (an unfinished one): re-running the cell pays nothing.
    An unseeded request is refused unless `fresh=True` (each call would be new paid samples, and hosts
    drawing their own seeds compare luck). `wait=False` returns at once; `.wait()` later."""
    reqs, labs = _checked(request, labs)
    checks.check_bool("fresh", fresh, where=WHERE)
    checks.check_bool("wait", wait, where=WHERE)
    checks.check_number("timeout", timeout, positive=True, allow_none=True, where=WHERE, hint=" seconds (or None)")
    logs = {str(Path(lab.log.path).resolve()) for lab in labs}
    if len(logs) > 1:
        raise ValidationError(
            f"{WHERE}: the Labs log to {len(logs)} files ({', '.join(sorted(logs))}); give them the same home= "
            f"(or log=) so that the comparison is one log"
        )
    if not fresh and any(r.seed is None for r in reqs):
        raise ValidationError(
            f"{WHERE}: give the request a seed (seed=1): the same seed on every host, and re-running this cell "
            f"reuses the runs instead of paying again; or fresh=True for new, paid samples on each call"
        )
    study = checks.check_text("study", study, maximum=200, where=WHERE) if study is not None else None
    prices, specs = _priced(reqs, labs)
    plan = [
        [None if fresh else recovery.finished_twin(lab, r, m.id) for r, m in zip(reqs, ms, strict=True)]
        for lab, ms in zip(labs, specs, strict=True)
    ]
    _check_budgets(labs, reqs, specs, plan)
    comparison = Comparison(reqs, labs, prices, study or f"compare-{uuid.uuid4().hex[:8]}")
    for lab, reused in zip(labs, plan, strict=True):
        for req, run_id in zip(reqs, reused, strict=True):
            # a run to send is asked for again where it would be logged: another kernel may have finished it
            got = run_id or submission.submit(lab, req, study=comparison.study, fresh=fresh, reuse=not fresh)
            if isinstance(got, str):
                comparison.reused.append(got)
                comparison.run_ids.append(got)
            else:
                comparison.jobs.append(got)
                comparison.run_ids.append(got.id)
            comparison.places.append(where(lab))
    return comparison.wait(timeout) if wait else comparison


def _check_budgets(
    labs: list[Lab], reqs: list[Request], specs: list[list[ModelSpec]], plan: list[list[str | None]]
) -> None:
    """Every Lab's budget (a budget shared by several Labs: their sum) must admit what is to be sent."""
    due: dict[int, tuple[cost.Budget, list[Estimate]]] = {}
    for lab, models, reused in zip(labs, specs, plan, strict=True):
        todo = [
            cost.estimate(r, m, lab.prices, lab.region or None)
            for r, m, rid in zip(reqs, models, reused, strict=True)
            if rid is None
        ]
        due.setdefault(id(lab.budget), (lab.budget, []))[1].extend(todo)
    for budget, estimates in due.values():
        if estimates:
            try:
                budget.check(cost.total(estimates))
            except (cost.BudgetExceeded, ValueError) as exc:
                raise cost.BudgetExceeded(f"{WHERE}: nothing was sent to any host: {exc}") from None


@dataclass
class Comparison:
    """The runs of one comparison: `.df` (one row per run, with `where`: the host as named here), `.show()`
    (the videos side by side, a column per host), `.estimate()` (the price on each host), `.summary()`."""

    requests: list[Request]
    labs: list[Lab]
    estimates: HostEstimates
    study: str
    run_ids: list[str] = field(default_factory=list)  # per Lab, per request
    places: list[str] = field(default_factory=list)  # the host of each run id (an older log's row may say "sim")
    jobs: list[Job] = field(default_factory=list)  # sent (or attached to) by this call
    reused: list[str] = field(default_factory=list)  # successful runs taken from the log

    def wait(self, timeout: float | None = None) -> Comparison:
        """Block until every run ends; TimeoutError (the runs go on, and stay in the log) after `timeout`."""
        self.labs[0].wait(self.jobs, timeout)
        running = [j.id for j in self.jobs if not j.done]
        if running:
            raise TimeoutError(
                f"{WHERE}: {len(running)} run(s) not done after {timeout} s; they go on (and stay in the log): "
                f"comparison.wait() again"
            )
        return self

    def estimate(self) -> HostEstimates:
        """The price of the request(s) on each host, as checked before sending, and one total per currency."""
        return self.estimates

    @property
    def df(self) -> pd.DataFrame:
        """The runs as log rows, host by host, with `where` (the host) and `reused` columns."""
        import pandas as pd

        frame = self.labs[0].log.frame(run_id=self.run_ids)
        frame = frame.set_index("run_id").loc[self.run_ids].reset_index()  # host by host, as given
        frame.insert(1, "where", pd.Categorical(self.places, categories=list(self.estimates), ordered=True))
        frame["reused"] = frame["run_id"].isin(self.reused)
        return frame

    def summary(self) -> pd.DataFrame:
        """One row per host: model, runs, succeeded, median latency / queue / run seconds, actual cost and the
        estimate, each in the host's own currency (the currency column says which; no row adds two)."""
        import pandas as pd

        rows = []
        for place, runs in self.df.groupby("where", observed=True, sort=True):
            spent = cost.sums(runs["cost"], runs["currency"])
            est = self.estimates[str(place)]
            rows.append(
                {
                    "host": str(place),
                    "model": ", ".join(dict.fromkeys(runs["model"].astype(str))),
                    "runs": len(runs),
                    "succeeded": int((runs["status"].astype("string") == "SUCCEEDED").sum()),
                    **{c: runs[c].astype("Float64").median() for c in ("latency_s", "queue_s", "run_s")},
                    "cost": cost.money(spent) if spent else "—",
                    "estimate": "unknown" if est.amount is None else f"{est.amount:.2f} {est.currency}",
                }
            )
        return pd.DataFrame(rows)

    def show(self, **kw: Any) -> None:
        """The videos side by side: a column per host (a row per request when there are several)."""
        from .ui import show

        show(self.df, by=self._by(), **kw)

    def _by(self) -> tuple[Any, str]:
        varying = tuple(
            k
            for k in ("prompt", "seed", "resolution", "duration")
            if len({str(getattr(r, k)) for r in self.requests}) > 1
        )
        return (varying or None, "where")

    def _repr_html_(self) -> str:
        import html

        from ._views import Gallery

        table = self.summary().to_html(index=False, na_rep="—", float_format=lambda x: f"{x:.1f}")
        gallery = Gallery(self.df, by=self._by())._repr_html_()
        return f"<div><b>{html.escape(repr(self))}</b>{table}{gallery}</div>"

    def __repr__(self) -> str:
        return f"<Comparison {self.study}: {len(self.requests)} request(s) on {', '.join(self.estimates)}>"


__all__ = ["Comparison", "HostEstimates", "compare_hosts", "estimate_hosts", "where"]
