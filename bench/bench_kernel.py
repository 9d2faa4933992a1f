"""Benchmark (not a test): kernel responsiveness while a sweep runs in the same kernel.

A real IPython kernel (nbclient + ipykernel). Cell 1 builds a Lab and starts a 100-job sweep in a
background thread (`threading.Thread(target=sweep.run)` — the sweep's jobs run on the Lab's private
loop thread). Then a trivial cell (`1 + 1`) is executed repeatedly and its round trip is timed from the
client side (`NotebookClient.execute_cell`: execute_request → idle status), first with the kernel idle
(baseline), then while the sweep's jobs submit, poll, download, hash and probe.

Two setups: the sim in a separate process (as the real hosts would be: only the client runs in the
kernel) and the embedded sim (`Lab()` with no key: sim, renderer and client all in the kernel process —
the classroom default), with quality measurement off (the client alone); and a third: a 20-run sweep of
distinct 720P × 5 s videos on the separate sim with every run measured (`wanlab.quality` in its worker
process), sampled until the sweep and its measurements are done. Its videos are rendered once before
(the sim's render cache serves them): a real host renders elsewhere, and a renderer on these same two
cores would measure the sim, not the kernel.

    python bench/bench_kernel.py [--jobs 100] [--samples 40]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, SimProcess, machine, pct, write_json  # noqa: E402

GOAL_MS = 50.0

SETUP = """
import sys, threading, time
sys.path.insert(0, {root!r})
from wanlab import Lab, T2V, EtaPoll, Limits, RetryPolicy
kw = dict(time_scale={scale}, poll=EtaPoll(), limits=Limits(submits_per_s=100, queries_per_s=1000, concurrent_jobs={c}),
          retry=RetryPolicy(time_scale={scale}), home={home!r}, resume=False, quiet=True, measure={measure})
if {url!r}:
    lab = Lab(provider="dashscope", api_key="sk-kernel-bench", base_url={url!r}, **kw)
else:
    lab = Lab(provider="sim", sim_options=dict(dashscope_concurrency={c}, dashscope_submits_per_s=None,
                                               dashscope_queries_per_s=None), **kw)
lab.run_sync(T2V("warm-up", resolution="720P", duration=2, seed=0), timeout=120)
"""
START = """
sweep = lab.sweep(T2V("kernel bench", resolution="720P", duration={duration}, seed=1),
                  **({{"seed": list(range({n}))}} if {measure} else {{"negative_prompt": [f"v{{i}}" for i in range({n})]}}),
                  reuse=False)
t_sweep = time.monotonic()
runner = threading.Thread(target=sweep.run, kwargs=dict(max_concurrency={c}, progress=False), daemon=True)
runner.start()
"""
STATUS = ("runner.is_alive(), sum(1 for j in sweep.jobs if j is not None and j.done), "
          "sum(1 for j in sweep.jobs if j is not None and j.quality is not None)")
MEASURED = "sum(1 for j in sweep.jobs if j is not None and j.quality is not None) == {n}"
# the measured case renders its 20 videos once before the samples (the sim's render cache then serves
# them), so the samples see the client and the measuring, not a renderer that would be remote in real use
PREWARM = """
warm = lab.sweep(T2V("kernel bench", resolution="720P", duration=5, seed=1), seed=list(range({n})), reuse=False)
warm.run(max_concurrency={c}, progress=False)
lab.measure()
"""
FINISH = """
runner.join(600)
done = sum(1 for j in sweep.jobs if j is not None and j.done)
ok = sum(1 for j in sweep.jobs if j is not None and str(j.status) == "SUCCEEDED")
print(done, ok, round(time.monotonic() - t_sweep, 2))
lab.close()
"""


def timed(client: NotebookClient, nb, index: int) -> float:
    t = time.perf_counter()
    client.execute_cell(nb.cells[index], index)
    return (time.perf_counter() - t) * 1000


def summary(xs: list[float]) -> dict:
    return {"n": len(xs), "p50_ms": round(statistics.median(xs), 2), "p95_ms": round(pct(xs, 0.95), 2),
            "max_ms": round(max(xs), 2), "mean_ms": round(statistics.fmean(xs), 2)}


def run_case(args: argparse.Namespace, label: str, url: str, measure: bool = False) -> dict:
    jobs, duration = (args.measure_jobs, 5) if measure else (args.jobs, 2)
    with tempfile.TemporaryDirectory() as home:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(SETUP.format(root=str(ROOT), scale=args.time_scale, c=args.concurrency,
                                                           home=home, url=url, measure=measure)),
                    nbformat.v4.new_code_cell("1 + 1"),
                    nbformat.v4.new_code_cell(START.format(n=jobs, c=args.concurrency, duration=duration,
                                                           measure=measure)),
                    nbformat.v4.new_code_cell(STATUS),
                    nbformat.v4.new_code_cell(FINISH),
                    nbformat.v4.new_code_cell(MEASURED.format(n=jobs)),
                    nbformat.v4.new_code_cell(PREWARM.format(n=jobs, c=args.concurrency))]
        client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": home}})
        with client.setup_kernel():
            client.execute_cell(nb.cells[0], 0)
            if measure:
                client.execute_cell(nb.cells[6], 6)
            for _ in range(5):
                timed(client, nb, 1)                      # warm
            idle = []
            for _ in range(args.samples):
                idle.append(timed(client, nb, 1))
                time.sleep(args.gap)
            client.execute_cell(nb.cells[2], 2)
            busy = []
            for k in range(10_000):
                busy.append(timed(client, nb, 1))
                time.sleep(args.gap)
                if k + 1 >= args.samples and not measure:
                    break
                if measure and k % 8 == 7:  # until every run is measured
                    client.execute_cell(nb.cells[5], 5)
                    if nb.cells[5].outputs[-1]["data"]["text/plain"] == "True":
                        break
            client.execute_cell(nb.cells[3], 3)
            alive_text = nb.cells[3].outputs[-1]["data"]["text/plain"] if nb.cells[3].outputs else ""
            client.execute_cell(nb.cells[4], 4)
            text = "".join(o.get("text", "") for o in nb.cells[4].outputs)
        done, ok, sweep_s = text.split()
    row = {"setup": label, "jobs": jobs, "video_s": duration, "measured": measure, "concurrency": args.concurrency, "time_scale": args.time_scale,
           "idle": summary(idle), "during_sweep": summary(busy), "sweep_state_after_samples": alive_text,
           "sweep_done": int(done), "sweep_succeeded": int(ok), "sweep_wall_s": float(sweep_s)}
    row["meets_goal"] = row["during_sweep"]["p95_ms"] <= GOAL_MS
    b, i = row["during_sweep"], row["idle"]
    print(f"  {label:34} idle p50 {i['p50_ms']:.1f} / p95 {i['p95_ms']:.1f} / max {i['max_ms']:.1f} ms; "
          f"during p50 {b['p50_ms']:.1f} / p95 {b['p95_ms']:.1f} / max {b['max_ms']:.1f} ms "
          f"(sweep {ok}/{jobs} ok in {sweep_s} s; (running, done, measured) after samples: {alive_text})",
          flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--time-scale", type=float, default=0.05)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--measure-jobs", type=int, default=20, help="runs in the measured sweep (720P 5 s, distinct)")
    ap.add_argument("--gap", type=float, default=0.25, help="real seconds between two round trips")
    ap.add_argument("--out", type=Path, default=RESULTS / "kernel.json")
    args = ap.parse_args()
    load0 = os.getloadavg()
    print(f"kernel responsiveness: `1 + 1` round trips (nbclient execute_cell), idle vs during a {args.jobs}-job "
          f"sweep (concurrency {args.concurrency}, wan2.7-t2v 720P 2 s, time scale {args.time_scale})", flush=True)
    rows = []
    sim = SimProcess(time_scale=args.time_scale, seed=1, dashscope_concurrency=args.concurrency,
                     dashscope_submits_per_s=None, dashscope_queries_per_s=None)
    try:
        rows.append(run_case(args, "sim in a separate process", sim.url))
    finally:
        sim.stop()
    rows.append(run_case(args, "embedded sim (in the kernel)", ""))
    sim = SimProcess(time_scale=args.time_scale, seed=1, dashscope_concurrency=args.concurrency,
                     dashscope_submits_per_s=None, dashscope_queries_per_s=None)
    try:
        rows.append(run_case(args, f"{args.measure_jobs} runs measured (separate sim)", sim.url, measure=True))
    finally:
        sim.stop()
    print()
    print(f"| setup | idle p50 / p95 / max ms | during sweep p50 / p95 / max ms | goal ≤ {GOAL_MS:g} ms (p95) |")
    print("|---|---|---|---|")
    for r in rows:
        i, b = r["idle"], r["during_sweep"]
        print(f"| {r['setup']} | {i['p50_ms']:.1f} / {i['p95_ms']:.1f} / {i['max_ms']:.1f} | {b['p50_ms']:.1f} / "
              f"{b['p95_ms']:.1f} / {b['max_ms']:.1f} | {'met' if r['meets_goal'] else 'missed'} |")
    result = {"benchmark": "kernel round trip of a trivial cell while a sweep runs", "goal_ms": GOAL_MS,
              "results": rows, "machine": machine(load0)}
    write_json(args.out, result)


if __name__ == "__main__":
    main()
