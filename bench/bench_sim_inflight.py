"""Benchmark (not a test): wanlab sim holding many tasks in flight.

Submits N DashScope tasks as fast as a pool of async clients can, with the per-key concurrency raised
so that all of them run at once, then waits until every one has SUCCEEDED. Prints a table and writes
bench/results/sim_inflight.json.

    python bench/bench_sim_inflight.py                    # 500 tasks, time scale 0.1 (~9 s per task)
    python bench/bench_sim_inflight.py --tasks 1000 --distinct 50 --time-scale 0.02

`--distinct` is how many different render specs the tasks share (seeds): identical specs render once,
so the default measures the engine and HTTP layer rather than the encoder; raise it to load the
renderer too. RSS is the whole process (the sim runs in-process, in its own thread, next to the client).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402
from _common import rss_mb as _rss_hwm_mb

from wanlab.sim import SimServer  # noqa: E402


def rss_mb() -> float:
    return _rss_hwm_mb()[0]

SUBMIT = "/services/aigc/video-generation/video-synthesis"


async def run(args) -> dict:
    load0 = os.getloadavg()
    rss0 = rss_mb()
    sim = SimServer(time_scale=args.time_scale, seed=1, dashscope_concurrency=args.tasks,
                    dashscope_submits_per_s=None, dashscope_queries_per_s=None,
                    render_workers=args.render_workers, render_cache_entries=max(64, args.distinct))
    sim.start()
    try:
        base = sim.dashscope_url()
        headers = {"Authorization": "Bearer sk-bench", "X-DashScope-Async": "enable"}
        limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
        ids: list[str] = []
        errors = 0
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            sem = asyncio.Semaphore(args.connections)

            async def submit(i: int) -> None:
                nonlocal errors
                body = {"model": "wan2.7-t2v", "input": {"prompt": f"bench task {i % args.distinct}"},
                        "parameters": {"resolution": args.resolution, "duration": args.duration,
                                       "seed": i % args.distinct}}
                async with sem:
                    r = await client.post(base + SUBMIT, json=body, headers=headers)
                if r.status_code == 200:
                    ids.append(r.json()["output"]["task_id"])
                else:
                    errors += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(submit(i) for i in range(args.tasks)))
            submit_s = time.perf_counter() - t0

            peak_in_flight = 0
            peak_rss = rss_mb()
            while True:
                st = (await client.get(sim.url + "/_sim/stats")).json()
                in_flight = st["tasks"]["PENDING"] + st["tasks"]["RUNNING"]
                peak_in_flight = max(peak_in_flight, in_flight)
                peak_rss = max(peak_rss, rss_mb())
                if in_flight == 0:
                    break
                if time.perf_counter() - t0 > args.timeout:
                    raise SystemExit(f"timed out with {in_flight} tasks in flight")
                await asyncio.sleep(0.05)
            total_s = time.perf_counter() - t0

            # every task answers SUCCEEDED with a downloadable video (spot-check a sample of them)
            sample = ids[:: max(1, len(ids) // 20)]
            ok = 0
            for tid in sample:
                o = (await client.get(f"{base}/tasks/{tid}", headers=headers)).json()["output"]
                if o["task_status"] == "SUCCEEDED":
                    v = await client.head(o["video_url"])
                    ok += v.status_code == 200
        st = sim.stats()
    finally:
        sim.stop()
    median_latency = 88.0 * args.time_scale   # 60 s base + 12 s/s × 2 s + 4 s queue, before noise
    return {
        "tasks": args.tasks, "distinct_specs": args.distinct, "time_scale": args.time_scale,
        "resolution": args.resolution, "duration_s": args.duration, "connections": args.connections,
        "submit_errors": errors, "submit_seconds": round(submit_s, 3),
        "submits_per_second": round(args.tasks / submit_s, 1),
        "peak_in_flight": peak_in_flight, "max_running_by_key": max(st["max_running_by_key"].values()),
        "all_done_seconds": round(total_s, 3), "median_task_latency_real_s": round(median_latency, 3),
        "succeeded": st["tasks"]["SUCCEEDED"], "failed": st["tasks"]["FAILED"],
        "sample_checked": len(sample), "sample_ok": ok,
        "renders": st["renders"], "render_seconds": st["render_seconds"],
        "rss_mb_start": round(rss0, 1), "rss_mb_peak": round(peak_rss, 1),
        "machine": machine(load0),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=500)
    p.add_argument("--distinct", type=int, default=10)
    p.add_argument("--time-scale", type=float, default=0.1)
    p.add_argument("--resolution", default="720P")
    p.add_argument("--duration", type=int, default=2)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--render-workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "sim_inflight.json"))
    args = p.parse_args()
    res = asyncio.run(run(args))
    width = max(len(k) for k in res)
    print(f"{'metric':<{width}}  value")
    print(f"{'-' * width}  -----")
    for k, v in res.items():
        print(f"{k:<{width}}  {v}")
    write_json(Path(args.out), res)


if __name__ == "__main__":
    main()
