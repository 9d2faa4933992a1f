"""Benchmark (not a test): the client's own cost — CPU per job and memory with 1,000 jobs in flight.

The sim runs in a SEPARATE process (`_common.SimProcess`: a `SimServer` with its rate limits raised;
`wanlab sim` has no flags for the rate limits), so only
the client's CPU is counted: `resource.getrusage(RUSAGE_SELF)` user + system time of this process
(the Lab's loop thread, the log writer, downloads, sha256 and the MP4 probe) from the first submit
to the last job done, divided by the jobs. Side by side, the same jobs through the official dashscope SDK as
its docs show it (`VideoSynthesis.call` in a thread pool, the video fetched with `requests`; no log, no hash,
no MP4 check), and floors: the same HTTP exchanges as bare aiohttp calls on one event loop, nothing else; the
same plus what wanlab promises for every paid job (a row committed before the submit leaves, the task id before
the first poll, the verified video's row at the end; sha256 and the MP4 check), done inline — with a poll every
15 s, and with ~2 polls a job (as few as a poller that knew each run's end could make): the least any client that
keeps those promises can spend, on this machine.
The learned default runs twice: as shipped (polls due together share one task-list request, `_board.py`) and with
every poll its own query, so the list's share shows in the same run. "Status requests" are the queries and lists
the sim answered, per job.

Memory: RSS (VmRSS, /proc/self/status) after a warm-up job (imports, loop, log, httpx pool all
alive) versus with 1,000 jobs submitted and PENDING/RUNNING on the sim (sim concurrency 2,000, time
scale 1: the jobs run for minutes), then the Lab is closed (jobs detach).

    python bench/bench_client.py                 # 200 jobs for CPU, 1000 in flight for memory
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS, ScaledTime, SimProcess, cpu_by_thread, cpu_s, machine, rss_mb, write_json)

KEY = "sk-bench-client"
GOAL_CPU_MS, GOAL_MB = 5.0, 50.0


def make_lab(url: str, scale: float, policy, concurrency: int, home: str):
    from wanlab import Lab, Limits, RetryPolicy
    return Lab(provider="dashscope", api_key=KEY, base_url=url, time_scale=scale, poll=policy,
               limits=Limits(submits_per_s=200, queries_per_s=2000, concurrent_jobs=concurrency),
               retry=RetryPolicy(time_scale=scale), home=home, resume=False, quiet=True, measure=False)


def status_requests(sim: SimProcess) -> int:
    """Requests that asked the sim for a status: queries and task lists (one list answers several polls)."""
    asked = sim.stats()["requests"]
    return asked.get("query", 0) + asked.get("list", 0)


def cpu_per_job(args: argparse.Namespace, name: str, policy, warm: int = 1, board: bool = True) -> dict:
    from wanlab import T2V, Status
    from wanlab.video import probe_file

    scale = args.time_scale
    sim = SimProcess(time_scale=scale, seed=1, dashscope_concurrency=args.cpu_concurrency,
                     dashscope_submits_per_s=None, dashscope_queries_per_s=None)
    try:
        with tempfile.TemporaryDirectory() as home:
            lab = make_lab(sim.url, scale, policy, args.cpu_concurrency, home)
            if not board:  # the contender without shared list requests: every poll its own query
                lab.client.board = None
            try:
                lab.run_sync(T2V("warm-up", resolution="720P", duration=2, seed=1), timeout=120)   # imports, pools
                # `warm` − 1 similar runs in the log first: what the default policy learns from (3 = it learns)
                lab.wait([lab.submit(T2V("cpu job", resolution="720P", duration=2, seed=9), fresh=True)
                          for _ in range(warm - 1)], timeout=120)
                if warm > 1:  # one job on what was learned: its one-time imports (numpy, for the plan) paid here
                    lab.run_sync(T2V("cpu job", resolution="720P", duration=2, seed=9), fresh=True, timeout=120)
                # one prompt, 4 seeds: the sim renders 4 videos. (A distinct prompt per job made the sim render
                # all 200 on the same 2 cores: jobs ran ~8× their 84 s estimate and EtaPoll re-polled the
                # overdue jobs ~27 times each, so the figure measured the sim's render backlog.)
                reqs = [T2V("cpu job", resolution="720P", duration=2, seed=i % 4) for i in range(args.cpu_jobs)]
                asked0 = status_requests(sim)
                c0, t0, by0 = cpu_s(), time.monotonic(), cpu_by_thread()
                jobs = [lab.submit(r, fresh=True) for r in reqs]  # N paid jobs, not one attached to
                lab.wait(jobs, timeout=1200)
                cpu, wall, by1 = cpu_s() - c0, time.monotonic() - t0, cpu_by_thread()
                asked = (status_requests(sim) - asked0) / args.cpu_jobs
                threads = {k: round((v - by0.get(k, 0.0)) / args.cpu_jobs * 1000, 2) for k, v in by1.items()
                           if v - by0.get(k, 0.0) > 0}
                assert all(j.status is Status.SUCCEEDED for j in jobs)
                polls = statistics.fmean(j.polls for j in jobs)
                lat = statistics.median(j.latency / scale for j in jobs)
                renders = sim.stats()["renders"]
                path = jobs[0].video_path
                p0 = cpu_s()
                for _ in range(10):
                    probe_file(path)
                probe_ms = (cpu_s() - p0) / 10 * 1000
                size = jobs[0].bytes
            finally:
                lab.close()
    finally:
        sim.stop()
    per = cpu / args.cpu_jobs * 1000
    row = {"policy": name, "jobs": args.cpu_jobs, "cpu_ms_per_job": round(per, 2),
           "probe_cpu_ms_per_file": round(probe_ms, 2), "cpu_ms_per_job_without_probe": round(per - probe_ms, 2),
           "polls_per_job": round(polls, 2), "status_requests_per_job": round(asked, 2), "job_latency_median_s": round(lat, 1), "sim_renders": renders,
           "mp4_bytes": size, "wall_s": round(wall, 1), "cpu_ms_per_job_by_thread": threads,
           "meets_goal": per <= GOAL_CPU_MS}
    print(f"  CPU {name:28} {per:7.2f} ms/job  (probe_file {probe_ms:.1f} ms of it; {polls:.1f} polls/job in "
          f"{asked:.1f} status requests; "
          f"median job {lat:.0f} host s; {renders} sim renders)", flush=True)
    print("      by thread (ms/job): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(threads.items(),
                                                                                 key=lambda kv: -kv[1])))
    return row


def sdk_cpu_per_job(args: argparse.Namespace) -> dict:
    """The same jobs through the official dashscope SDK, as its docs show it: `VideoSynthesis.call` (submit, then
    its `wait` loop) in a pool of `--cpu-concurrency` threads, then the video fetched with `requests` and written
    to disk — no log, no hash, no MP4 check. Its `time.sleep` sleeps `s × scale` (as in bench_polling)."""
    import concurrent.futures

    import dashscope
    import dashscope.client.base_api as base_api
    import requests
    from dashscope import VideoSynthesis

    scale = args.time_scale
    sim = SimProcess(time_scale=scale, seed=1, dashscope_concurrency=args.cpu_concurrency,
                     dashscope_submits_per_s=None, dashscope_queries_per_s=None)
    old_url, old_time = dashscope.base_http_api_url, base_api.time
    dashscope.base_http_api_url = sim.url
    base_api.time = ScaledTime(scale)
    session = requests.Session()
    try:
        with tempfile.TemporaryDirectory() as home:
            def one(i: int) -> float:
                t0 = time.monotonic()
                rsp = VideoSynthesis.call(model="wan2.7-t2v", prompt="cpu job", api_key=KEY, resolution="720P",
                                          duration=2, seed=i % 4)
                assert rsp.status_code == 200 and rsp.output.task_status == "SUCCEEDED", rsp
                with session.get(rsp.output.video_url, stream=True, timeout=60) as got:
                    got.raise_for_status()
                    with open(os.path.join(home, f"{i}.mp4"), "wb") as fh:
                        for chunk in got.iter_content(1 << 16):
                            fh.write(chunk)
                return time.monotonic() - t0

            one(-1)                                                   # imports, connection pools
            q0 = sim.stats()["requests"].get("query", 0)
            c0, by0 = cpu_s(), cpu_by_thread()
            with concurrent.futures.ThreadPoolExecutor(args.cpu_concurrency) as pool:
                lat = list(pool.map(one, range(args.cpu_jobs)))
                cpu, by1 = cpu_s() - c0, cpu_by_thread()             # while the pool's threads live
            polls = (sim.stats()["requests"].get("query", 0) - q0) / args.cpu_jobs
    finally:
        dashscope.base_http_api_url, base_api.time = old_url, old_time
        session.close()
        sim.stop()
    per = cpu / args.cpu_jobs * 1000
    name = f"dashscope SDK {dashscope.__version__} VideoSynthesis.call, {args.cpu_concurrency} threads"
    threads = {k: round((v - by0.get(k, 0.0)) / args.cpu_jobs * 1000, 2) for k, v in by1.items()
               if v - by0.get(k, 0.0) > 0}
    print(f"  CPU {name:28} {per:7.2f} ms/job  ({polls:.1f} polls/job; median job "
          f"{statistics.median(lat) / scale:.0f} host s; no log, no hash, no MP4 check)", flush=True)
    return {"policy": name, "jobs": args.cpu_jobs, "cpu_ms_per_job": round(per, 2), "polls_per_job": round(polls, 2),
            "job_latency_median_s": round(statistics.median(lat) / scale, 1), "cpu_ms_per_job_by_thread": threads,
            "probe_cpu_ms_per_file": 0.0, "meets_goal": per <= GOAL_CPU_MS,
            "note": "official SDK, for comparison: no experiment log, no sha256, no MP4 check"}


def bare_cpu_per_job(args: argparse.Namespace, every: float = 15.0, durable: bool = False) -> dict:
    """A floor, not a client: the same jobs as bare aiohttp calls on one event loop — submit, a GET every `every`
    host seconds (about as many polls as `EtaPoll()` makes here), the video streamed to a file — with nothing
    else: no log, no retries, no rate limits, no hash, no MP4 check. What the HTTP exchanges alone cost.

    `durable=True` adds, inline and nothing more, what wanlab promises for every paid job: a log row committed
    (SQLite WAL, synchronous=FULL, as wanlab's log) before the submit leaves, the task id committed before the
    first poll, the video's sha256 and MP4 check (`video.probe_file`) and its row committed at the end — the
    floor under any client that keeps those promises, measured on this machine."""
    import asyncio
    import sqlite3

    import aiohttp

    from wanlab.video import probe_file

    scale = args.time_scale
    sim = SimProcess(time_scale=scale, seed=1, dashscope_concurrency=args.cpu_concurrency,
                     dashscope_submits_per_s=None, dashscope_queries_per_s=None)
    auth = {"Authorization": f"Bearer {KEY}"}

    db: sqlite3.Connection | None = None

    def commit(sql: str, *params: object) -> None:
        if db is not None:
            db.execute(sql, params)  # autocommit: each statement its own fsync'd transaction

    async def one(http: aiohttp.ClientSession, slots: asyncio.Semaphore, i: int, home: str) -> int:
        body = {"model": "wan2.7-t2v", "input": {"prompt": "cpu job"},
                "parameters": {"resolution": "720P", "duration": 2, "seed": i % 4}}
        async with slots:
            commit("INSERT INTO runs (n, status) VALUES (?, 'SUBMITTING')", i)
            async with http.post(f"{sim.url}/services/aigc/video-generation/video-synthesis", json=body,
                                 headers={**auth, "X-DashScope-Async": "enable"}) as r:
                task = (await r.json())["output"]["task_id"]
            commit("UPDATE runs SET task_id = ?, status = 'PENDING' WHERE n = ?", task, i)
            polls = 0
            while True:
                await asyncio.sleep(every * scale)
                async with http.get(f"{sim.url}/tasks/{task}", headers=auth) as r:
                    out = (await r.json())["output"]
                polls += 1
                if out["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
                    break
            assert out["task_status"] == "SUCCEEDED", out
            async with http.get(out["video_url"]) as r:
                path = os.path.join(home, f"{i}.mp4")
                with open(path, "wb") as fh:
                    async for chunk in r.content.iter_chunked(1 << 16):
                        fh.write(chunk)
            if db is not None:
                info = probe_file(path)  # sha256 and the MP4 check
                commit("UPDATE runs SET status = 'SUCCEEDED', path = ?, sha256 = ?, frames = ? WHERE n = ?",
                       path, info["sha256"], info["frames"], i)
            return polls

    async def run(home: str) -> tuple[float, float]:
        slots = asyncio.Semaphore(args.cpu_concurrency)
        async with aiohttp.ClientSession() as http:
            await one(http, slots, -1, home)                          # connection pool, imports
            c0 = cpu_s()
            polls = await asyncio.gather(*(one(http, slots, i, home) for i in range(args.cpu_jobs)))
            return cpu_s() - c0, statistics.fmean(polls)

    try:
        with tempfile.TemporaryDirectory() as home:
            if durable:
                db = sqlite3.connect(os.path.join(home, "runs.sqlite"), isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("CREATE TABLE runs (n INTEGER PRIMARY KEY, status TEXT, task_id TEXT, path TEXT, "
                           "sha256 TEXT, frames INTEGER)")
            try:
                cpu, polls = asyncio.run(run(home))
            finally:
                if db is not None:
                    db.close()
    finally:
        sim.stop()
    per = cpu / args.cpu_jobs * 1000
    if durable:
        name = f"bare aiohttp {aiohttp.__version__} + 3 durable commits, sha256, MP4 check, a poll every {every:g} s"
        note = ("the floor under wanlab's promises: HTTP, a row committed before the submit, the task id before the "
                "first poll, the checked video's row at the end; nothing else")
    else:
        name = f"bare aiohttp {aiohttp.__version__}, a poll every {every:g} s (floor)"
        note = "a floor: the HTTP exchanges on one event loop and nothing else (no log, retries, limits, checks)"
    print(f"  CPU {name:28} {per:7.2f} ms/job  ({polls:.1f} polls/job)", flush=True)
    return {"policy": name, "jobs": args.cpu_jobs, "cpu_ms_per_job": round(per, 2), "polls_per_job": round(polls, 2),
            "probe_cpu_ms_per_file": 0.0, "meets_goal": per <= GOAL_CPU_MS, "floor": True, "note": note}


def memory_in_flight(args: argparse.Namespace) -> dict:
    from wanlab import T2V, EtaPoll

    n = args.inflight
    sim = SimProcess(time_scale=1.0, seed=1, dashscope_concurrency=n * 2, dashscope_submits_per_s=None,
                     dashscope_queries_per_s=None)
    try:
        with tempfile.TemporaryDirectory() as home:
            lab = make_lab(sim.url, 1.0, EtaPoll(), n * 2, home)
            try:
                # warm-up at scale 1 would take 90 s: one fast job on a throwaway sim instead
                warm = SimProcess(time_scale=0.01, seed=1)
                try:
                    wl = make_lab(warm.url, 0.01, EtaPoll(), 5, home + "/warm")
                    wl.run_sync(T2V("warm-up", resolution="720P", duration=2, seed=1), timeout=120)
                    wl.close()
                finally:
                    warm.stop()
                rss0, _ = rss_mb()
                t0 = time.monotonic()
                jobs = [lab.submit(T2V(f"in flight {i}", resolution="720P", duration=15, seed=i)) for i in range(n)]
                while sum(1 for j in jobs if j.task_id) < n and time.monotonic() - t0 < 300:
                    time.sleep(0.5)
                submitted_s = time.monotonic() - t0
                time.sleep(args.settle)          # first polls done, the log written, pools settled
                statuses = {}
                for j in jobs:
                    statuses[str(j.status)] = statuses.get(str(j.status), 0) + 1
                rss1, hwm = rss_mb()
                sim_stats = sim.stats()
            finally:
                lab.close()                      # detaches: the tasks stay on the sim
    finally:
        sim.stop()
    delta = rss1 - rss0
    row = {"jobs_in_flight": n, "rss_before_mb": round(rss0, 1), "rss_in_flight_mb": round(rss1, 1),
           "rss_delta_mb": round(delta, 1), "kb_per_job": round(delta * 1024 / n, 1), "peak_rss_mb": round(hwm, 1),
           "client_statuses": statuses, "sim_tasks": sim_stats["tasks"], "submit_all_s": round(submitted_s, 1),
           "meets_goal": delta <= GOAL_MB}
    print(f"  memory: {n} in flight ({statuses}): RSS {rss0:.1f} → {rss1:.1f} MB, Δ {delta:.1f} MB "
          f"({row['kb_per_job']} kB/job), peak {hwm:.1f} MB", flush=True)
    return row


def main() -> None:
    from wanlab import EtaPoll

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-jobs", type=int, default=200)
    ap.add_argument("--cpu-concurrency", type=int, default=50)
    ap.add_argument("--time-scale", type=float, default=0.01)
    ap.add_argument("--inflight", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to wait with all jobs in flight")
    ap.add_argument("--out", type=Path, default=RESULTS / "client.json")
    args = ap.parse_args()
    load0 = os.getloadavg()
    print(f"client cost: sim in a separate process; CPU over {args.cpu_jobs} jobs (wan2.7-t2v 720P 2 s, time scale "
          f"{args.time_scale}); memory with {args.inflight} jobs in flight", flush=True)
    cpu_rows = [cpu_per_job(args, "default, 3 similar runs logged (learned)", None, warm=4),
                cpu_per_job(args, "the same, every poll its own query (no shared list)", None, warm=4, board=False),
                cpu_per_job(args, "default, empty log (= HostCadence)", None),
                cpu_per_job(args, "EtaPoll()", EtaPoll()),
                sdk_cpu_per_job(args),
                bare_cpu_per_job(args),
                bare_cpu_per_job(args, durable=True),
                # a poller that knew when each run ends would ask ~2 times: the least any client can spend
                bare_cpu_per_job(args, every=50.0, durable=True)]
    mem = memory_in_flight(args)
    floor = cpu_rows[-2]["cpu_ms_per_job"]  # the promises kept and nothing else, a poll every 15 s
    for r in cpu_rows:
        r["x_durable_floor"] = round(r["cpu_ms_per_job"] / floor, 2)
    print()
    print("| measure | value | × durable floor | goal |")
    print("|---|---|---|---|")
    for r in cpu_rows:
        asked = f", {r['status_requests_per_job']:.1f} status requests" if "status_requests_per_job" in r else ""
        goal = ("a floor, not a client" if r.get("floor") else
                f"≤ {GOAL_CPU_MS:g} ms: {'met' if r['meets_goal'] else 'missed'}")
        print(f"| CPU per job, {r['policy']} ({r['polls_per_job']:.0f} polls{asked}) | {r['cpu_ms_per_job']:.1f} ms "
              f"(of which MP4 probe {r['probe_cpu_ms_per_file']:.1f} ms) | {r['x_durable_floor']:.2f} | {goal} |")
    print(f"| RSS delta, {mem['jobs_in_flight']} jobs in flight | {mem['rss_delta_mb']:.1f} MB "
          f"({mem['kb_per_job']} kB/job) | | ≤ {GOAL_MB:g} MB: {'met' if mem['meets_goal'] else 'missed'} |")
    result = {"benchmark": "client CPU per job and memory in flight", "cpu": cpu_rows, "memory": mem,
              "goal": {"cpu_ms_per_job": GOAL_CPU_MS, "rss_delta_mb": GOAL_MB},
              "machine": machine(load0)}
    write_json(args.out, result)


if __name__ == "__main__":
    main()
