"""`wanlab demo`: a small grid on the embedded simulator, written up as an HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    import time

    from .. import T2V, Lab
    from ..report import write_report
    from ..sweep import Sweep

    t0 = time.monotonic()
    out = Path(args.out).resolve()
    print(
        f"wanlab demo: a {len(args.resolution)}×{len(args.duration)}×{len(args.seed)} grid on the embedded "
        f"simulator (offline, free) → {out}",
        flush=True,
    )
    with Lab(provider="sim", home=out, time_scale=args.time_scale, quiet=True) as lab:
        base = T2V(args.prompt, seed=args.seed[0])
        sweep = Sweep(lab, base, study="demo", resolution=args.resolution, duration=args.duration, seed=args.seed)
        print(f"estimate before running: {sweep.estimate()}", flush=True)
        sweep.run(progress=True)
        lab.measure(sweep)  # the figures of the last runs may still be on their way
        report = write_report(sweep.df, out, lab.store, title="wanlab demo: resolution × duration × seed")
    df = sweep.df
    ok = int((df["status"].astype("string") == "SUCCEEDED").sum())
    print(f"{ok}/{len(df)} runs succeeded in {time.monotonic() - t0:.1f} s; log: {out / 'runs.sqlite'}")
    print(f"report: {report}")
    return 0 if ok == len(df) else 1


def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run a small grid on the embedded simulator and write an HTML report",
        description="Run a resolution × duration × seed grid on the embedded simulator and write "
        "report.html (videos, contact sheet, plots, log table).",
    )
    p.add_argument("--out", default="wanlab-demo", help="folder for the log, the videos and the report")
    p.add_argument("--prompt", default="a paper boat drifting down a rain-soaked street at dusk, cinematic")
    p.add_argument("--resolution", nargs="+", default=["720P", "1080P"])
    p.add_argument("--duration", nargs="+", type=int, default=[2, 4])
    p.add_argument("--seed", nargs="+", type=int, default=[1, 2])
    p.add_argument(
        "--time-scale", type=float, default=0.01, help="sim time per host second (0.01: a 2-minute render takes ~1 s)"
    )
    p.set_defaults(func=_cmd_demo)
