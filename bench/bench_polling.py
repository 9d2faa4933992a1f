"""Benchmark (not a test): polls per job and lateness after completion, wanlab's poll policies next to the
official SDKs' loops and a fixed 15 s loop, on the same job latencies.

Every contender gets a fresh `wanlab sim` (same seed, same settings), submits the same N jobs, spread evenly over
`--stagger` host seconds (wan2.7-t2v, 720P, 5 s: `ModelSpec.expected_latency` = 120 s, plus the sim's 4 s queue) and waits for
all of them. Identical requests render once (the sim's render cache), so rendering does not move the
end times. Measured in HOST seconds (real seconds / time scale):

* polls per job  = the sim's count of query and task-list requests / N (and wanlab's own `job.polls`, its
                   status checks, as a cross-check: a list request answers several of them);
* lateness       = when the client saw SUCCEEDED − the task's end time in the sim (`Task.end_wall`).

The official SDKs run their real code paths against the sim: dashscope 1.x `VideoSynthesis.async_call`
+ `wait` (1, 1, 2, 2, 2, 4, 4, 4, 5 … s), dashscope 2.0 `Client().videos.jobs.create` + `wait`
(1 → 8 s), wavespeed `Client._submit` + `Client._wait` (what `Client.run` does; 1 s). Their sleeps are
in real seconds, so `time.sleep` inside those SDK modules is replaced by one that sleeps `s × scale`
(dashscope 2.0: its `_sleep` test seam). The fal cadence (0.1 s) is a wanlab `FixedInterval(0.1)`: the
fal SDK is not installed and the sim does not speak fal's protocol. The fixed 15 s loop (the seed's
advice) is a wanlab `FixedInterval(15)`. `EtaPoll(lead_in=3, pending_fraction=0.25)` approximates the
EtaPoll defaults before commit 9c58f5f (3 dense polls before the expected end, 30 s PENDING re-polls), so the
change shows side by side.

Two latency scenarios: `--sigma 0.15` (the sim's default log-normal noise on queue and run time, drawn
from the seeded RNG, so every contender gets the same draws) and `--sigma 0` (every job exactly 4 s
queued + 120 s running).

    python bench/bench_polling.py                       # 16 jobs per contender, time scale 0.05
    python bench/bench_polling.py --jobs 40 --sigma 0.15 --time-scale 0.1

The sim and the client share one process (and its GIL): at time scale s, 1 ms of real delay is 1/s ms of
host lateness (20 ms at 0.05). That is the noise floor of the lateness column.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ScaledTime, machine, pct, write_json  # noqa: E402

from wanlab import T2V, EtaPoll, FixedInterval, Lab, Limits, RetryPolicy, Status  # noqa: E402
from wanlab.sim import SimServer  # noqa: E402

KEY = "sk-bench-polling"
PROMPT = "a paper boat drifting down a rain-soaked street at dusk"
DS_MODEL, WS_MODEL = "wan2.7-t2v", "alibaba/wan-2.7/text-to-video"
RES, DUR, SEED = "720P", 5, 42
GOAL_POLLS, GOAL_LATE = 5.0, 2.0


def sim_for(args: argparse.Namespace, sigma: float) -> SimServer:
    return SimServer(time_scale=args.time_scale, seed=args.seed, latency_sigma=sigma,
                     dashscope_concurrency=10_000, wavespeed_concurrency=10_000,
                     dashscope_submits_per_s=None, dashscope_queries_per_s=None,
                     wavespeed_submits_per_min=None).start()


def end_wall(sim: SimServer, task_id: str) -> float:
    task = sim.app.engine.tasks[task_id]
    assert task.status == "SUCCEEDED", (task_id, task.status)
    return task.end_wall


# -- contenders: each returns [(task_id, seen_wall, own_polls or None)] -------------------------------
def run_wanlab(sim: SimServer, args: argparse.Namespace, policy: Any, protocol: str = "dashscope",
               warm: int = 0) -> list:
    """`warm` similar runs go into the Lab's log first (concurrently, not measured): what the default policy
    learns from. Their submits and queries are recorded on the sim object and left out of the figures."""
    scale = args.time_scale
    base = sim.dashscope_url() if protocol == "dashscope" else sim.wavespeed_url
    with tempfile.TemporaryDirectory() as home:
        lab = Lab(provider=protocol, api_key=KEY, base_url=base, time_scale=scale, poll=policy,
                  limits=Limits(submits_per_s=10_000, queries_per_s=100_000, concurrent_jobs=10_000),
                  retry=RetryPolicy(time_scale=scale), home=home, resume=False, quiet=True, measure=False)
        try:
            req = T2V(PROMPT, resolution=RES, duration=DUR, seed=SEED)
            if warm:
                lab.wait([lab.submit(req, fresh=True) for _ in range(warm)], timeout=600)
                stats = sim.stats()
                sim.warm = (stats["submits"], status_requests(stats))  # type: ignore[attr-defined]
            jobs = []
            for i in range(args.jobs):
                time.sleep(stagger_gap(args))
                jobs.append(lab.submit(req, fresh=True))   # the same request N times, each one paid
            lab.wait(jobs, timeout=600)
            out = []
            for j in jobs:
                assert j.status is Status.SUCCEEDED, (j, j.error)
                # timings["ended"]: set when the poll that saw SUCCEEDED was parsed (before the download)
                out.append((j.task_id, j.timings["ended"], j.polls))
            return out
        finally:
            lab.close()


def stagger_gap(args: argparse.Namespace) -> float:
    """Real seconds between two submits: the N submits are spread over `--stagger` host seconds, so the
    jobs end spread out (as a user's would) instead of all in the same millisecond."""
    return args.stagger / max(1, args.jobs) * args.time_scale


def run_threads(n: int, fn: Callable[[], tuple], args: argparse.Namespace) -> list:
    gap = stagger_gap(args)

    def start(i: int) -> tuple:
        time.sleep(gap * (i + 1))
        return fn()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(start, range(n)))


def run_dashscope_1x(sim: SimServer, args: argparse.Namespace) -> list:
    import dashscope
    import dashscope.client.base_api as base_api
    from dashscope import VideoSynthesis

    old_url, old_time = dashscope.base_http_api_url, base_api.time
    dashscope.base_http_api_url = sim.dashscope_url()
    base_api.time = ScaledTime(args.time_scale)
    try:
        def one() -> tuple:
            rsp = VideoSynthesis.async_call(model=DS_MODEL, prompt=PROMPT, api_key=KEY, resolution=RES,
                                            duration=DUR, seed=SEED)
            assert rsp.status_code == 200, rsp
            done = VideoSynthesis.wait(rsp, api_key=KEY)
            seen = time.time()
            assert done.output.task_status == "SUCCEEDED", done
            return rsp.output.task_id, seen, None
        return run_threads(args.jobs, one, args)
    finally:
        dashscope.base_http_api_url, base_api.time = old_url, old_time


def run_dashscope_2x(sim: SimServer, args: argparse.Namespace) -> list:
    import dashscope

    client = dashscope.Client(api_key=KEY, base_url=sim.dashscope_url())
    scaled = ScaledTime(args.time_scale).sleep

    def one() -> tuple:
        job = client.videos.jobs.create(model=DS_MODEL, prompt=PROMPT, resolution=RES, duration=DUR, seed=SEED)
        done = client.videos.jobs.wait(job, _sleep=scaled)      # defaults: poll_interval 1, max_interval 8
        seen = time.time()
        assert done.status == "SUCCEEDED", done
        return job.task_id, seen, None
    return run_threads(args.jobs, one, args)


def run_wavespeed(sim: SimServer, args: argparse.Namespace) -> list:
    import wavespeed
    import wavespeed.api.client as ws_client

    old_time = ws_client.time
    ws_client.time = ScaledTime(args.time_scale)
    try:
        client = wavespeed.Client(api_key=KEY, base_url=sim.wavespeed_url)

        def one() -> tuple:
            # Client.run(model, input) is exactly _submit then _wait(request_id, timeout, poll_interval=1.0);
            # called in two steps here only to learn the task id.
            request_id, _ = client._submit(WS_MODEL, {"prompt": PROMPT, "resolution": "720p", "duration": DUR,
                                                      "seed": SEED}, enable_sync_mode=False, timeout=None)
            out = client._wait(request_id, None, 1.0)
            seen = time.time()
            assert out["outputs"], out
            return request_id, seen, None
        return run_threads(args.jobs, one, args)
    finally:
        ws_client.time = old_time


CONTENDERS: list[tuple[str, str, Callable]] = [
    ("wanlab default, after 3 similar runs in its log (learned)", "wanlab",
     lambda s, a: run_wanlab(s, a, None, warm=3)),
    ("wanlab default, after 3 similar runs, wavespeed protocol", "wanlab",
     lambda s, a: run_wanlab(s, a, None, "wavespeed", warm=3)),
    ("wanlab default on an empty log (= HostCadence)", "wanlab", lambda s, a: run_wanlab(s, a, None)),
    ("wanlab EtaPoll()", "wanlab", lambda s, a: run_wanlab(s, a, EtaPoll())),
    # the defaults before 9c58f5f (lead_in 3, PENDING re-polls at pending_fraction 0.25 of the run), for contrast
    ("wanlab EtaPoll(lead_in=3, pending_fraction=0.25) (≈ old default)", "wanlab",
     lambda s, a: run_wanlab(s, a, EtaPoll(lead_in=3, pending_fraction=0.25))),
    ("wanlab EtaPoll() on wavespeed protocol", "wanlab", lambda s, a: run_wanlab(s, a, EtaPoll(), "wavespeed")),
    ("dashscope SDK 2.0.2 VideoSynthesis.wait (1.x API)", "official SDK", run_dashscope_1x),
    ("dashscope SDK 2.0.2 Client().videos.jobs.wait", "official SDK", run_dashscope_2x),
    ("wavespeed SDK 2.0.5 Client.run poll loop", "official SDK", run_wavespeed),
    ("fixed 15 s loop (seed's advice)", "baseline", lambda s, a: run_wanlab(s, a, FixedInterval(15.0))),
    # 0.1 host s is 5 ms real at scale 0.05: a few jobs only, or the shared process saturates and the
    # figure measures the CPU, not the cadence.
    ("fixed 0.1 s loop (fal-client cadence, 4 jobs)", "baseline",
     lambda s, a: run_wanlab(s, argparse.Namespace(**{**vars(a), "jobs": min(a.jobs, 4)}), FixedInterval(0.1))),
]


def status_requests(stats: dict) -> int:
    """The requests that asked the host for a status: queries, and the task lists that answer several jobs' polls
    at once (wanlab's `_board`): each list is counted as one poll, whatever it answered."""
    return stats["requests"].get("query", 0) + stats["requests"].get("list", 0)


def measure(name: str, kind: str, fn: Callable, args: argparse.Namespace, sigma: float) -> dict:
    scale = args.time_scale
    sim = sim_for(args, sigma)
    try:
        t0 = time.monotonic()
        results = fn(sim, args)
        wall = time.monotonic() - t0
        stats = sim.stats()
        late, lat = [], []
        for task_id, seen, _ in results:
            t = sim.app.engine.tasks[task_id]
            late.append((seen - end_wall(sim, task_id)) / scale)
            lat.append((t.end_wall - t.submit_wall) / scale)
        own = [p for _, _, p in results if p is not None]
        warm_submits, warm_queries = getattr(sim, "warm", (0, 0))
        queries = status_requests(stats) - warm_queries
        n = len(results)
        assert stats["submits"] - warm_submits == n, stats
    finally:
        sim.stop()
    row = {
        "contender": name, "kind": kind, "sigma": sigma, "jobs": n,
        "polls_per_job": round(queries / n, 2),
        "client_polls_mean": round(statistics.fmean(own), 2) if own else None,
        "client_polls_max": max(own) if own else None,
        "lateness_mean_s": round(statistics.fmean(late), 3),
        "lateness_p95_s": round(pct(late, 0.95), 3),
        "lateness_max_s": round(max(late), 3),
        "lateness_min_s": round(min(late), 3),
        "job_latency_mean_s": round(statistics.fmean(lat), 2),
        "job_latency_min_s": round(min(lat), 2), "job_latency_max_s": round(max(lat), 2),
        "wall_s": round(wall, 2),
    }
    row["meets_goal"] = row["polls_per_job"] <= GOAL_POLLS and row["lateness_mean_s"] <= GOAL_LATE
    print(f"  σ={sigma:<4g} {name:52} polls {row['polls_per_job']:7.2f}  late {row['lateness_mean_s']:6.2f} s "
          f"(max {row['lateness_max_s']:.2f})  [{wall:.1f} s]", flush=True)
    return row


def table(rows: list[dict]) -> str:
    head = (f"| contender | σ | polls/job | mean lateness s | p95 s | max s | job latency s (min–max) | goal ≤ "
            f"{GOAL_POLLS:g} polls & ≤ {GOAL_LATE:g} s |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(f"| {r['contender']} | {r['sigma']:g} | {r['polls_per_job']:.1f} | {r['lateness_mean_s']:.2f} | "
                     f"{r['lateness_p95_s']:.2f} | {r['lateness_max_s']:.2f} | {r['job_latency_mean_s']:.0f} "
                     f"({r['job_latency_min_s']:.0f}–{r['job_latency_max_s']:.0f}) | "
                     f"{'met' if r['meets_goal'] else 'missed'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=16, help="jobs per contender")
    ap.add_argument("--stagger", type=float, default=60.0, help="host seconds over which the submits are spread")
    ap.add_argument("--time-scale", type=float, default=0.05, help="real seconds per host second")
    ap.add_argument("--sigma", type=float, nargs="+", default=[0.15, 0.0], help="sim latency_sigma scenarios")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--only", default="", help="run contenders whose name contains this text")
    ap.add_argument("--out", type=Path, default=RESULTS / "polling.json")
    args = ap.parse_args()
    load0 = os.getloadavg()

    print(f"polls and lateness: {args.jobs} jobs per contender, {DS_MODEL} {RES} {DUR} s (expected 120 s + 4 s "
          f"queue), time scale {args.time_scale}; SDK sleeps scaled by {args.time_scale} (time.sleep patched in "
          f"dashscope.client.base_api and wavespeed.api.client; dashscope 2.0 via its _sleep seam)", flush=True)
    rows = []
    for sigma in args.sigma:
        for name, kind, fn in CONTENDERS:
            if args.only and args.only not in name:
                continue
            rows.append(measure(name, kind, fn, args, sigma))
    print()
    print(table(rows))
    result = {
        "benchmark": "polls per job and lateness after completion (host seconds)",
        "jobs_per_contender": args.jobs, "stagger_host_s": args.stagger, "time_scale": args.time_scale, "sim_seed": args.seed,
        "job": {"model": DS_MODEL, "wavespeed_model": WS_MODEL, "resolution": RES, "duration": DUR,
                "expected_run_s": 120, "queue_base_s": 4},
        "sim": "SimServer (TCP_NODELAY on since 9c58f5f)",
        "sdk_sleeps": f"scaled × {args.time_scale} (time.sleep patched inside the SDK modules)",
        "goal": {"polls_per_job": GOAL_POLLS, "mean_lateness_s": GOAL_LATE},
        "machine": machine(load0),
        "results": rows,
    }
    write_json(args.out, result)


if __name__ == "__main__":
    main()
