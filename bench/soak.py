"""The fault soak: N jobs through a wanlab Lab against `wanlab sim` with injected faults, then an audit.

Faults (docs/SIM.md grammar; probabilities per request on that route, drawn from the sim's seeded RNG):

    submit: 10 % 429 (Retry-After 1 s), 2 % 503, 1 % 500 (ambiguous: reconciled), 1 % reset before the
            task exists, 1 % accept_reset (the task IS created, then the connection drops: reconciled)
    query:  10 % 429 (Retry-After 0.1 s), 3 % 500, 2 % 503, 2 % reset
    list:   2 % 503 (the reconciliation path itself is unreliable too)
    task:   2 % FAILED (InternalError)
    download: 2 % truncated (half the body, then the connection is cut), 1 % 503

Audit (every item must hold; `run_soak` returns the findings):

* 0 runs lost: every submitted job has a log row in `lab.log.df`, and every row is terminal;
* 0 duplicate submits: no two rows share a task id, and the set of tasks the sim created equals the set
  of task ids in the log (a task the sim created that no row owns would be a paid duplicate);
* every SUCCEEDED row has a file whose sha256 re-hashes to the logged value and matches the sim's bytes;
* the FAILED rows are exactly the tasks the sim failed by injection; any other failure (retries
  exhausted …) is reported with the job's events.

    python bench/soak.py                 # 1000 jobs, writes bench/results/soak.json
    python bench/soak.py --jobs 60       # the size tests/test_soak.py runs
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, write_json  # noqa: E402

from wanlab import T2V, EtaPoll, Lab, Limits, RetryPolicy  # noqa: E402
from wanlab.sim import SimServer  # noqa: E402

FAULTS = ("submit:429=1@0.10,submit:503@0.02,submit:500@0.01,submit:reset@0.01,submit:accept_reset@0.01,"
          "query:429=0.1@0.10,query:500@0.03,query:503@0.02,query:reset@0.02,"
          "list:503@0.02,"
          "task:fail@0.02,"
          "download:truncate@0.02,download:503@0.01")
KEY = "sk-soak"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_soak(jobs: int = 1000, *, time_scale: float = 0.01, faults: str = FAULTS, seed: int = 0,
             concurrency: int = 50, distinct: int = 20, home: str | os.PathLike | None = None,
             timeout: float = 1800.0, progress: bool = False) -> dict[str, Any]:
    """Run the soak and audit it. Returns a report whose `findings` list is empty when every check held."""
    tmp = None
    if home is None:
        tmp = tempfile.TemporaryDirectory()
        home = tmp.name
    sim = SimServer(time_scale=time_scale, seed=seed, faults=faults, dashscope_concurrency=concurrency,
                    dashscope_submits_per_s=None, dashscope_queries_per_s=None).start()
    retry = RetryPolicy(base_s=0.5, max_backoff_s=8.0, retry_after_cap_s=2.0, budget_s=120.0, time_scale=time_scale)
    lab = Lab(provider="dashscope", api_key=KEY, base_url=sim.dashscope_url(), time_scale=time_scale,
              poll=EtaPoll(), retry=retry, limits=Limits(submits_per_s=100, queries_per_s=400, concurrent_jobs=concurrency),
              home=home, resume=False, quiet=True)
    findings: list[str] = []
    try:
        t0 = time.monotonic()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        # wan2.7-t2v 720P 2 s (84 host s); `distinct` seeds so the sim renders a few videos, not N
        submitted = [lab.submit(T2V(f"soak job {i}: a lighthouse in a storm", resolution="720P", duration=2,
                                    seed=i % distinct), study="soak") for i in range(jobs)]
        deadline = time.monotonic() + timeout
        while True:
            done = sum(j.done for j in submitted)
            if done == jobs or time.monotonic() > deadline:
                break
            if progress:
                print(f"\r  {done}/{jobs} done", end="", file=sys.stderr, flush=True)
            time.sleep(1.0)
        if progress:
            print(file=sys.stderr)
        wall = time.monotonic() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        not_done = [j for j in submitted if not j.done]
        if not_done:
            findings.append(f"{len(not_done)} jobs not done after {timeout} s: "
                            f"{[(j.id, str(j.status)) for j in not_done[:5]]}")
        stats = sim.stats()
        tasks = dict(sim.app.engine.tasks)      # the sim's own record of every task it created
        df = lab.log.df
        client_stats = dict(lab.client.stats)
    finally:
        lab.close()
        sim.stop()

    by_id = {j.id: j for j in submitted}
    rows = {r.run_id: r for r in df.itertuples(index=False)}
    # -- 0 runs lost
    lost = [j.id for j in submitted if j.id not in rows]
    if lost:
        findings.append(f"{len(lost)} submitted jobs have no log row: {lost[:5]}")
    statuses = collections.Counter(str(r.status) for r in rows.values())
    non_terminal = [rid for rid, r in rows.items() if str(r.status) not in TERMINAL]
    if non_terminal:
        findings.append(f"{len(non_terminal)} log rows are not terminal: "
                        f"{[(rid, str(rows[rid].status)) for rid in non_terminal[:5]]}")
    # -- 0 duplicate submits
    task_ids = [r.task_id for r in rows.values() if isinstance(r.task_id, str) and r.task_id]
    dup = [t for t, c in collections.Counter(task_ids).items() if c > 1]
    if dup:
        findings.append(f"{len(dup)} task ids appear on more than one row: {dup[:5]}")
    orphans = sorted(set(tasks) - set(task_ids))
    if orphans:
        findings.append(f"{len(orphans)} tasks the sim created belong to no log row (duplicate/paid submits): "
                        f"{orphans[:5]}")
    phantom = sorted(set(task_ids) - set(tasks))
    if phantom:
        findings.append(f"{len(phantom)} logged task ids the sim never created: {phantom[:5]}")
    no_task = [rid for rid, r in rows.items() if not (isinstance(r.task_id, str) and r.task_id)]
    # -- every SUCCEEDED row's file verified
    verified, bad_files = 0, []
    for rid, r in rows.items():
        if str(r.status) != "SUCCEEDED":
            continue
        path = Path(str(r.path)) if isinstance(r.path, str) else None
        if path is None or not path.exists():
            bad_files.append((rid, "no file"))
            continue
        digest = _sha256(path)
        if digest != r.sha256:
            bad_files.append((rid, f"sha256 {digest[:12]} != logged {str(r.sha256)[:12]}"))
            continue
        t = tasks.get(r.task_id)
        blob = None if t is None else sim.app.engine.store.get("files", t.video_name or "")
        if blob is not None and hashlib.sha256(blob.read()).hexdigest() != digest:
            bad_files.append((rid, "bytes differ from the sim's"))
            continue
        verified += 1
    if bad_files:
        findings.append(f"{len(bad_files)} SUCCEEDED rows fail verification: {bad_files[:5]}")
    # -- FAILED rows are exactly the injected task failures
    injected = {tid for tid, t in tasks.items() if t.status == "FAILED" and "fault_fail" in t.extra
                and "render_error" not in t.extra}
    failed_rows = {rid: r for rid, r in rows.items() if str(r.status) == "FAILED"}
    failed_tasks = {r.task_id for r in failed_rows.values() if isinstance(r.task_id, str)}
    unexplained = []
    for rid, r in failed_rows.items():
        if r.task_id in injected:
            continue
        j = by_id.get(rid)
        events = [f"{e.kind}: {e.detail}" for e in (j.events if j else [])][-8:]
        unexplained.append({"run_id": rid, "task_id": r.task_id if isinstance(r.task_id, str) else None,
                            "error_code": r.error_code if isinstance(r.error_code, str) else None,
                            "error_message": r.error_message if isinstance(r.error_message, str) else None,
                            "events": events})
    if unexplained:
        findings.append(f"{len(unexplained)} FAILED rows are not injected task failures (see 'unexplained')")
    missed = sorted(injected - failed_tasks)
    if missed:
        findings.append(f"{len(missed)} injected task failures not logged FAILED: {missed[:5]}")
    other_terminal = {rid: str(r.status) for rid, r in rows.items() if str(r.status) in ("CANCELED", "UNKNOWN")}
    if other_terminal:
        j_events = {rid: [f"{e.kind}: {e.detail}" for e in by_id[rid].events][-6:] for rid in list(other_terminal)[:3]
                    if rid in by_id}
        findings.append(f"{len(other_terminal)} rows ended CANCELED/UNKNOWN: {j_events}")

    usage = lambda a, b: (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)  # noqa: E731
    report = {
        "jobs": jobs, "time_scale": time_scale, "faults": faults, "seed": seed, "concurrency": concurrency,
        "sim": "SimServer (TCP_NODELAY on since 9c58f5f)",
        "wall_s": round(wall, 1), "process_cpu_s": round(usage(cpu0, cpu1), 1),
        "log_rows": len(rows), "statuses": dict(statuses), "lost": len(lost), "non_terminal": len(non_terminal),
        "rows_without_task": len(no_task),
        "sim_tasks_created": len(tasks), "sim_submit_requests": stats["requests"].get("submit", 0),
        "distinct_logged_task_ids": len(set(task_ids)), "duplicate_task_ids": len(dup),
        "orphan_sim_tasks": len(orphans), "files_verified": verified, "bad_files": len(bad_files),
        "injected_task_failures": len(injected), "failed_rows": len(failed_rows),
        "unexplained_failures": unexplained, "faults_injected": stats["faults"], "sim_requests": stats["requests"],
        "client_stats": client_stats, "findings": findings,
    }
    if tmp is not None:
        tmp.cleanup()
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--time-scale", type=float, default=0.01)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--faults", default=FAULTS)
    ap.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = ap.parse_args()
    load0 = os.getloadavg()
    print(f"soak: {args.jobs} jobs, concurrency {args.concurrency}, time scale {args.time_scale}\nfaults: {args.faults}",
          flush=True)
    r = run_soak(args.jobs, time_scale=args.time_scale, faults=args.faults, seed=args.seed,
                 concurrency=args.concurrency, progress=True)
    print()
    print("| check | result |")
    print("|---|---|")
    for label, value in [("jobs submitted / log rows", f"{r['jobs']} / {r['log_rows']}"),
                         ("statuses", ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items()))),
                         ("runs lost", r["lost"]), ("rows not terminal", r["non_terminal"]),
                         ("sim tasks created / distinct logged task ids",
                          f"{r['sim_tasks_created']} / {r['distinct_logged_task_ids']}"),
                         ("duplicate submits (orphan sim tasks + shared task ids)",
                          r["orphan_sim_tasks"] + r["duplicate_task_ids"]),
                         ("files verified (sha256 re-hashed, = sim bytes)", f"{r['files_verified']} "
                                                                           f"(bad {r['bad_files']})"),
                         ("FAILED rows / injected task failures", f"{r['failed_rows']} / "
                                                                   f"{r['injected_task_failures']}"),
                         ("unexplained failures", len(r["unexplained_failures"])),
                         ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(r["faults_injected"].items()))),
                         ("client retries / reconciled / re-sent after proof", f"{r['client_stats']['retries']} / "
                          f"{r['client_stats']['reconciled']} / {r['client_stats']['resubmits']}"),
                         ("wall / process CPU", f"{r['wall_s']} s / {r['process_cpu_s']} s")]:
        print(f"| {label} | {value} |")
    print("\nfindings:" if r["findings"] else "\nall checks held", *r["findings"], sep="\n  ")
    r["machine"] = machine(load0)
    write_json(args.out, r)


if __name__ == "__main__":
    main()
