"""Benchmark (not a test): sweep makespan, N jobs at concurrency C, against the ideal ceil(N/C) × latency
and against the official dashscope SDK's synchronous loop.

Setup: `wanlab sim` with `dashscope_concurrency=C`, fixed latencies (`latency_sigma=0`: every job is
4 s queued + 120 s running = 124 host s, wan2.7-t2v 720P 5 s), and its per-key rate limits raised by
1/scale so that they stay DashScope's 5 submits/s and 20 QPS in HOST time (the sim counts them per real
second); the wanlab Lab gets the same `Limits`. All makespans are host seconds (real / time scale).

Contenders:
* wanlab `lab.sweep(base, negative_prompt=[…N values…]).run(max_concurrency=C)` with the default (no
  `poll=`: the host's cadence until 3 similar runs are in the log, then planned from them), with
  `HostCadence` throughout, and with `EtaPoll()`. The negative prompt is not part of the sim's render spec, so the
  N requests are distinct but render once (the sim's render cache): rendering is out of the measurement.
  `--distinct-seeds` sweeps `seed=[…]` instead, so every job renders (sim rendering then shares the
  2 cores with the client; noted in the output).
* dashscope SDK 2.0.2 `VideoSynthesis.call` (= `async_call` + `wait`) in a plain `for` loop — the
  SDK's documented synchronous use. It is run for `--sdk-seq-jobs` jobs and extrapolated to N (it is
  strictly sequential: makespan = Σ per-job times).
* the same `VideoSynthesis.call` in a thread pool of C threads, for all N jobs.
The SDK's `time.sleep` (inside `dashscope.client.base_api`) sleeps `s × scale`.

    python bench/bench_sweep.py                         # N=200, C=8, time scale 0.01
    python bench/bench_sweep.py --jobs 64 --distinct-seeds --time-scale 0.02
"""
from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ScaledTime, machine, write_json  # noqa: E402

from wanlab import T2V, EtaPoll, HostCadence, Lab, Limits, RetryPolicy, Status  # noqa: E402
from wanlab.sim import SimServer  # noqa: E402

KEY = "sk-bench-sweep"
PROMPT = "a paper boat drifting down a rain-soaked street at dusk"
MODEL, RES, DUR, SEED = "wan2.7-t2v", "720P", 5, 42
JOB_S = 4.0 + 120.0          # queue_base_s + expected_latency("720P", 5) with latency_sigma 0
GOAL = 1.03


def make_sim(args: argparse.Namespace) -> SimServer:
    return SimServer(time_scale=args.time_scale, seed=1, latency_sigma=0.0, dashscope_concurrency=args.concurrency,
                     dashscope_submits_per_s=5 / args.time_scale,
                     dashscope_queries_per_s=20 / args.time_scale).start()


def run_wanlab(args: argparse.Namespace, policy: Any) -> dict:
    scale = args.time_scale
    sim = make_sim(args)
    try:
        with tempfile.TemporaryDirectory() as home:
            lab = Lab(provider="dashscope", api_key=KEY, base_url=sim.dashscope_url(), time_scale=scale, poll=policy,
                      limits=Limits(submits_per_s=5 / scale, queries_per_s=20 / scale,
                                    concurrent_jobs=args.concurrency),
                      retry=RetryPolicy(time_scale=scale), home=home, resume=False, quiet=True, measure=False)
            try:
                base = T2V(PROMPT, resolution=RES, duration=DUR, seed=SEED)
                axis = ({"seed": list(range(1000, 1000 + args.jobs))} if args.distinct_seeds
                        else {"negative_prompt": [f"variant {i}" for i in range(args.jobs)]})
                sweep = lab.sweep(base, **axis)
                t0 = time.monotonic()
                sweep.run(max_concurrency=args.concurrency, progress=False, timeout=3600)
                wall = time.monotonic() - t0
                jobs = [j for j in sweep.jobs if j is not None]
                assert all(j.status is Status.SUCCEEDED for j in jobs), [j for j in jobs if j.status is not
                                                                         Status.SUCCEEDED][:3]
                lat = [j.latency / scale for j in jobs]
                polls = statistics.fmean(j.polls for j in jobs)
            finally:
                lab.close()
        stats = sim.stats()
    finally:
        sim.stop()
    return {"makespan_s": wall / scale, "job_latency_median_s": statistics.median(lat), "polls_per_job": polls,
            "sim_renders": stats["renders"], "sim_render_s": stats["render_seconds"],
            "render_cache_hits": stats["render_cache_hits"], "peak_running": max(stats["max_running_by_key"].values()),
            "sim_429": stats["faults"], "submits": stats["submits"]}


def sdk_call(args: argparse.Namespace, i: int) -> float:
    from dashscope import VideoSynthesis

    kw = {"seed": 1000 + i} if args.distinct_seeds else {"seed": SEED, "negative_prompt": f"variant {i}"}
    t0 = time.monotonic()
    rsp = VideoSynthesis.call(model=MODEL, prompt=PROMPT, api_key=KEY, resolution=RES, duration=DUR, **kw)
    assert rsp.status_code == 200 and rsp.output.task_status == "SUCCEEDED", rsp
    return time.monotonic() - t0


def run_sdk(args: argparse.Namespace, threads: int, n: int) -> dict:
    import dashscope
    import dashscope.client.base_api as base_api

    sim = make_sim(args)
    old_url, old_time = dashscope.base_http_api_url, base_api.time
    dashscope.base_http_api_url = sim.dashscope_url()
    base_api.time = ScaledTime(args.time_scale)
    try:
        t0 = time.monotonic()
        if threads == 1:
            per = [sdk_call(args, i) for i in range(n)]
        else:
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                per = list(pool.map(lambda i: sdk_call(args, i), range(n)))
        wall = time.monotonic() - t0
        stats = sim.stats()
    finally:
        dashscope.base_http_api_url, base_api.time = old_url, old_time
        sim.stop()
    return {"makespan_s": wall / args.time_scale, "job_latency_median_s": statistics.median(per) / args.time_scale,
            "polls_per_job": stats["requests"].get("query", 0) / n, "sim_renders": stats["renders"],
            "sim_render_s": stats["render_seconds"], "render_cache_hits": stats["render_cache_hits"],
            "peak_running": max(stats["max_running_by_key"].values()), "sim_429": stats["faults"],
            "submits": stats["submits"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--time-scale", type=float, default=0.01)
    ap.add_argument("--sdk-seq-jobs", type=int, default=12, help="jobs run by the SDK's sequential loop")
    ap.add_argument("--distinct-seeds", action="store_true", help="every job renders (seed axis)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    load0 = os.getloadavg()
    out = args.out or RESULTS / ("sweep_distinct.json" if args.distinct_seeds else "sweep.json")
    n, c = args.jobs, args.concurrency
    ideal = math.ceil(n / c) * JOB_S
    print(f"sweep makespan: N={n}, C={c}, jobs {MODEL} {RES} {DUR} s = {JOB_S:g} host s each (σ 0), time scale "
          f"{args.time_scale}; ideal ceil(N/C) × {JOB_S:g} = {ideal:g} host s; "
          f"{'every job renders (distinct seeds)' if args.distinct_seeds else 'one render (identical specs)'}; "
          f"SDK sleeps × {args.time_scale}", flush=True)

    rows = []

    def add(name: str, r: dict, extrapolated_from: int | None = None) -> None:
        r = {"contender": name, **r}
        if extrapolated_from:
            r["measured_jobs"] = extrapolated_from
            r["measured_makespan_s"] = round(r["makespan_s"], 1)
            r["makespan_s"] = r["makespan_s"] / extrapolated_from * n
        r["makespan_s"] = round(r["makespan_s"], 1)
        r["vs_ideal"] = round(r["makespan_s"] / ideal, 4)
        r["job_latency_median_s"] = round(r["job_latency_median_s"], 2)
        r["polls_per_job"] = round(r["polls_per_job"], 2)
        rows.append(r)
        print(f"  {name:58} makespan {r['makespan_s']:9.1f} s  {r['vs_ideal']:.3f} × ideal", flush=True)

    add("wanlab sweep, the default (learns from the log; empty at the start)", run_wanlab(args, None))
    add("wanlab sweep, HostCadence (the default before it learned)", run_wanlab(args, HostCadence()))
    add("wanlab sweep, EtaPoll()", run_wanlab(args, EtaPoll()))
    add(f"dashscope SDK VideoSynthesis.call, for loop (×{n} from {args.sdk_seq_jobs})",
        run_sdk(args, 1, args.sdk_seq_jobs), extrapolated_from=args.sdk_seq_jobs)
    add(f"dashscope SDK VideoSynthesis.call, {c} threads", run_sdk(args, c, n))

    print()
    print(f"| contender | makespan (host s) | × ideal ({ideal:g} s) | median job latency s | polls/job | sim renders |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['contender']} | {r['makespan_s']:.0f} | {r['vs_ideal']:.3f} | {r['job_latency_median_s']:.1f} | "
              f"{r['polls_per_job']:.1f} | {r['sim_renders']} ({r['sim_render_s']:.1f} s) |")
    result = {"benchmark": "sweep makespan (host seconds)", "jobs": n, "concurrency": c,
              "time_scale": args.time_scale, "job_host_s": JOB_S, "ideal_s": ideal, "goal_vs_ideal": GOAL,
              "renders": "distinct seeds: every job renders" if args.distinct_seeds else
              "identical render specs (negative_prompt axis): one render, cache hits for the rest",
              "sim": "SimServer (TCP_NODELAY on since 9c58f5f)",
              "limits": {"submits_per_s_host": 5, "queries_per_s_host": 20, "note": "× 1/scale in real time, "
                                                                                     "sim and client"},
              "machine": machine(load0), "results": rows}
    write_json(out, result)


if __name__ == "__main__":
    main()
