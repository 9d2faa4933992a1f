"""Runs already in the log: resume what this Lab may take (a crash, a restart, a dead kernel's runs),
attach a request to the unfinished run it matches (running here, resumed, or followed while another live
kernel drives it), and the helpers both share. Functions of a Lab: they use its log, runner and jobs."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _arguments as arguments
from . import _hosts as hosts
from . import catalog, cost
from ._records import from_record
from .cost import Estimate
from .errors import JobFailed, WanlabError
from .jobs import Job, Status
from .log import RESULT_TTL_S, TERMINAL, describe_owner

if TYPE_CHECKING:
    from ._loop import LoopThread
    from ._runner import JobRunner
    from .lab import Lab
    from .log import ExperimentLog
    from .requests import Request


def attach(lab: Lab, row: dict[str, Any]) -> Job:
    """A handle on the logged, unfinished run `row`: this Lab's own job when it runs here; the run itself,
    resumed, when its owner is gone; else a follower that waits on the row another kernel is driving
    (and takes it over should that kernel die)."""
    for running in lab.jobs:
        if running.id == row["run_id"] and not running.done:
            return running
    # not marked FAILED here: the row may belong to a live kernel that drives it well, and a task may exist
    job = job_from_row(lab, row, mark_failed=False)
    if job is None:
        raise WanlabError(
            f"run {row['run_id']} in the log matches this request but cannot be rebuilt here (nothing was "
            f"sent or changed); pass fresh=True to send a new one"
        )
    if lab.log.claim(row["run_id"]):
        job.attached = "resumed: its owner is gone"
        lab._reserve(job, phase_of(row))
        job.emit("resumed", f"attached to logged run {job.id}: resumed at phase {phase_of(row)}")
        return lab._start(job, phase_of(row))
    holder = describe_owner(lab.log.holder(row["run_id"]))
    job.attached = f"following: {holder} is running it"
    job.emit(
        "attached",
        f"the same request is running in another kernel ({holder}): following its run {job.id}, nothing sent",
    )
    lab.jobs.append(job)
    for fn in lab._observers:
        job.observe(fn)
    fut = lab._loop.submit(follow(lab, job))
    job.set_canceller(lambda: lab._loop.call_soon(fut.cancel))
    return job


async def follow(lab: Lab, job: Job) -> None:
    """Wait on a row another live process drives; mirror its end. If that process dies, take the run over."""
    try:
        while True:
            row = lab.log.get(job.id)
            if row["status"] in TERMINAL:
                mirror(job, row)
                break
            if lab.log.claim(job.id):
                fresh = job_from_row(lab, row)
                if fresh is None:
                    break
                job.task_id, job.timings, job.polls = fresh.task_id, fresh.timings, fresh.polls
                job.restore_state(fresh.status)
                job.attached = "taken over: the kernel that ran it is gone"
                lab._reserve(job, phase_of(row))
                job.observe(lab._settle)
                job.observe(lab.log.observe_loudly)
                lab.log.hold(job.id)
                job.emit("resumed", f"the kernel that ran {job.id} is gone: taken over at phase {phase_of(row)}")
                await lab.client.run(job, phase_of(row))
                return
            await asyncio.sleep(min(1.0, lab.log.lease_s / 8))
    except asyncio.CancelledError:
        job.set_status(job.status, "stopped following (the run goes on in the kernel that owns it)")
    finally:
        job.finish()


def finished_twin(lab: Lab, req: Request, model: str | None = None) -> str | None:
    """The run id of the latest SUCCEEDED run of this very seeded request (same fingerprint, model if given,
    protocol, region and host) in the Lab's log: what a sweep, a host comparison and `wanlab generate` reuse
    instead of paying again. An unseeded request has no twin: running it again is a new sample."""
    if req.seed is None:
        return None
    extra = {"model": model} if model is not None else {}
    rows = lab.log.rows(
        fingerprint=req.fingerprint(),
        status="SUCCEEDED",
        protocol=lab.protocol,
        region=lab.region,
        host=hosts.labels(lab.host),
        **extra,
    )
    return rows[-1]["run_id"] if rows else None


def resume(lab: Lab, report: bool = False) -> list[Job]:
    """Pick up this host's unfinished runs from the log (a kernel restart, a crash): poll, download,
    reconcile, or submit what never left. Runs older than the host's 24 h window become UNKNOWN, with
    the reason. A run whose owner lives (another kernel, or a job of this Lab) is left to it; a dead
    owner's runs are taken at once on this machine, after their lease on another. `lab.resumed` and
    `lab.left_to_others` say which; with `report`, one line says it too."""
    lab._check_open()
    jobs = []
    now = time.time()
    mine = {j.id for j in lab.jobs if not j.done}
    others: dict[str, int] = {}
    for row in lab.log.unfinished():
        if row["run_id"] in mine:
            continue
        if row["protocol"] != lab.protocol or (row["region"] or "") != lab.region:
            continue
        if row["base_url"] != lab.provider.base_url:
            # an embedded sim's URL dies with it (older logs label every sim run just "sim")
            if hosts.is_sim(row["host"]) and hosts.is_sim(lab.host) and lab.log.claim(row["run_id"]):
                end_row(lab, row, "wanlab.SimGone", "the embedded simulator that ran this task has stopped")
            continue
        if not lab.log.claim(row["run_id"]):
            holder = describe_owner(lab.log.holder(row["run_id"]))
            others[holder] = others.get(holder, 0) + 1
            lab.left_to_others.append(row["run_id"])
            continue
        age = now - (row["submitted"] or row["created"])
        if age > RESULT_TTL_S:
            if row["task_id"]:
                why = f"submitted {age / 3600:.0f} h ago: past the host's 24 h window for task ids and result URLs"
            elif row["status"] == "SUBMITTING":
                why = (
                    f"its submit was in flight {age / 3600:.0f} h ago and the host's task list no longer "
                    f"covers that time: it may have run (and been billed); not re-sent"
                )
            else:
                why = (
                    f"queued {age / 3600:.0f} h ago and never sent; not sent automatically after 24 h: "
                    f"lab.rerun({row['run_id']!r}) sends it"
                )
            end_row(lab, row, "wanlab.Expired", why)
            continue
        job = job_from_row(lab, row)
        if job is None:
            continue
        phase = phase_of(row)
        if phase == "submit":
            try:  # never sent: it spends only if the budget admits it now
                lab.budget.admit(job.id, Estimate(job.est_cost, job.currency, 0.0, "the log's estimate"))
            except cost.BudgetExceeded as exc:
                end_row(lab, row, "wanlab.BudgetExceeded", f"not sent on resume: {exc}", status="CANCELED")
                continue
            job.budgets = [lab.budget]
        else:
            lab._reserve(job, phase)
        job.emit("resumed", f"resumed from the log at phase {phase}")
        jobs.append(lab._start(job, phase))
    lab.resumed += jobs
    if report and (jobs or others):
        phases: dict[str, int] = {}
        for j in jobs:
            phases[str(j.status)] = phases.get(str(j.status), 0) + 1
        said = (
            [
                f"resumed {len(jobs)} unfinished run(s) from {lab.log.path} "
                f"({', '.join(f'{n} {k}' for k, n in sorted(phases.items()))})"
            ]
            if jobs
            else []
        )
        said += [f"left {n} to the live kernel that runs them ({who})" for who, n in others.items()]
        print("wanlab: " + "; ".join(said), file=sys.stdout)
    return jobs


def job_from_row(lab: Lab, row: dict[str, Any], mark_failed: bool = True) -> Job | None:
    """A Job for a logged run, as the log left it; None if it cannot be rebuilt — and then, with
    `mark_failed` (a caller that holds the row's claim), the row is marked FAILED with the reason."""
    try:
        req = from_record(row["mode"], row, json.loads(row["params"] or "{}"), json.loads(row["inputs"] or "{}"))
        spec = catalog.get_model(row["model"], host=lab.protocol)
    except (WanlabError, ValueError, OSError) as exc:
        if not mark_failed:
            return None
        lab.log.update(
            row["run_id"],
            status="FAILED",
            error_code="wanlab.CannotResume",
            error_message=f"cannot rebuild the request: {exc}",
            claimed_until=0.0,
        )
        return None
    job = lab._new_job(req, spec, run_id=row["run_id"])
    for key in ("created", "started", "submitted", "scheduled"):
        job.timings[key] = row[key]
    job.task_id, job.request_id = row["task_id"], row["request_id"]
    job.est_cost, job.currency = row["est_cost"], row["currency"] or ""
    job.polls = row["polls"] or 0
    phase = phase_of(row)
    if phase == "poll":
        job.restore_state(Status(row["status"]) if row["status"] in ("PENDING", "RUNNING") else Status.PENDING)
    elif phase == "reconcile":
        job.restore_state(Status.SUBMITTING)
    return job


def end_row(lab: Lab, row: dict[str, Any], code: str, why: str, status: str = "UNKNOWN") -> None:
    lab.log.update(
        row["run_id"],
        status=status,
        error_code=code,
        error_message=why,
        claimed_until=0.0,
        ended=row["ended"] or time.time(),
    )


def phase_of(row: dict[str, Any]) -> str:
    """Where a logged, unfinished run picks up."""
    if row["task_id"]:
        return "poll"
    return "reconcile" if row["status"] == "SUBMITTING" else "submit"


def mirror(job: Job, row: dict[str, Any]) -> None:
    """Copy a finished run's outcome from its log row onto a job that followed it."""
    job.task_id, job.request_id = row["task_id"], row["request_id"]
    for key in ("submitted", "scheduled", "ended", "downloaded"):
        job.timings[key] = row[key]
    if row["path"]:
        job.video_path = Path(row["path"])
    job.sha256, job.bytes = row["sha256"], row["bytes"]
    job.video_info = {
        k: row[c]
        for k, c in (
            ("width", "width"),
            ("height", "height"),
            ("fps", "fps"),
            ("frames", "frames"),
            ("duration", "video_seconds"),
        )
        if row[c] is not None
    }
    job.cost, job.currency, job.polls = row["cost"], row["currency"] or job.currency, row["polls"] or 0
    if row["status"] != "SUCCEEDED":
        job.error_code = row["error_code"] or ""
        job.error = JobFailed(
            row["error_message"] or f"run {job.id} ended {row['status']}", code=job.error_code, status=row["status"]
        )
    job.adopt_end(Status(row["status"]), "the kernel that ran it finished it")


def rerun(lab: Lab, run_id: str, changes: dict[str, Any]) -> Job:
    """Submit a logged run again (see `Lab.rerun`)."""
    arguments.rerun_arguments(lab.log, run_id, changes)
    row = lab.log.get(run_id)
    req = from_record(row["mode"], row, json.loads(row["params"] or "{}"), json.loads(row["inputs"] or "{}"))
    if req.seed is None and "seed" not in changes:
        raise WanlabError(
            f"run {run_id} has no seed in the log (the host did not report the one it drew): "
            f"its video cannot be reproduced; pass seed=… to rerun it with a chosen seed"
        )
    tags = json.loads(row["tags"]) if row["tags"] else {}
    if not isinstance(tags, dict):
        tags = {"tags": tags}
    tags["rerun_of"] = run_id
    return lab.submit(req.replace(**changes) if changes else req, study=row["study"], tags=tags)


def shutdown(
    loop: LoopThread,
    client: JobRunner,
    sim: Any,
    jobs: list[Job],
    log: ExperimentLog | None,
    turns: tuple[ExperimentLog, str] | None = None,
) -> None:
    """Close a Lab's parts. Closing detaches: tasks on the host are not cancelled, their rows stay resumable.
    `turns`: the log and holder whose lingering submit turn ends now (its timer dies with the loop, and a
    log the Lab does not own stays open)."""
    for job in jobs:
        job.detached = True  # closing detaches: tasks on the host are not cancelled, nor marked so
    if loop.running:
        try:
            loop.submit(client.aclose()).result(5)
        except Exception:
            pass
        loop.close()
    if turns is not None and not turns[0].closed:  # after the loop: nothing else touches the turn now
        turns[0].end_turns(turns[1])
    if sim is not None:
        sim.stop()
    if log is not None:
        log.close()  # checkpoints: runs.sqlite alone is then the whole log
