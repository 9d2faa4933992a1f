"""A request becomes a run: checked, priced against the budgets, and logged — or found in the log instead, in
the one transaction that decides whether anything is sent: attached to while unfinished, and, with `reuse`,
reused once SUCCEEDED. `Lab.submit`, sweeps, `compare_hosts` and `wanlab generate` all come through here."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import _checks as checks
from . import cost
from ._records import to_record
from .cost import Budget
from .jobs import Job
from .requests import Request

if TYPE_CHECKING:
    from .lab import Lab


def submit(
    lab: Lab,
    req: Request,
    *,
    study: str | None = None,
    tags: dict[str, Any] | None = None,
    budget: Budget | None = None,
    fresh: bool = False,
    reuse: bool = False,
) -> Job | str:
    """`Lab.submit`; with `reuse`, a seeded request whose run already SUCCEEDED in the log is not sent and that
    run's id comes back instead. Sweeps, host comparisons and the command line look for such a run before they
    start; they ask again here because another kernel may have finished it since."""
    lab._check_open()
    spec = lab.resolve(req)
    if tags is not None:
        tags = checks.json_value("tags", tags, where="submit")
    if study is not None:
        study = checks.check_text("study", study, maximum=200, where="submit")
    attach = req.seed is not None and not fresh
    job = lab._new_job(req, spec)
    est = cost.estimate(req, spec, lab.prices, lab.region or None)
    params, inputs = to_record(req, lab._keep)
    budgets = [b for b in (lab.budget, budget) if b is not None]
    admitted: list[Budget] = []
    try:
        for b in budgets:
            b.admit(job.id, est)
            admitted.append(b)
        job.budgets = admitted
        job.est_cost, job.currency = est.amount, est.currency
        existing = lab.log.record_created(
            job,
            params,
            inputs,
            attach=attach,
            reuse=reuse and attach,
            study=study,
            base_url=lab.provider.base_url,
            est_cost=est.amount,
            currency=est.currency,
            price_source=est.source,
            tags=json.dumps(tags) if tags else None,
        )
    except BaseException:
        for b in admitted:
            b.settle(job.id, None)  # release the reservation: nothing was sent
        raise
    if existing is None:
        return lab._start(job, "submit")
    for b in admitted:
        b.settle(job.id, None)  # nothing new is spent: the run it attaches to is counted already
    if existing["status"] == "SUCCEEDED":
        return str(existing["run_id"])
    return lab._attach(existing)
