"""wanlab's command line: `wanlab demo`, `wanlab sim …`.

Each subcommand registers itself with `_add_<name>(subparsers)` and sets `func`; `main` dispatches."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def _cmd_sim(args: argparse.Namespace) -> int:
    from .sim import SimServer

    settings = {}
    for name in ("dashscope_concurrency", "wavespeed_concurrency", "render_workers"):
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
    if args.storage:
        settings["storage"] = args.storage
    if args.strict_media:
        settings["strict_media"] = True
    keys = [k for k in (args.keys or "").split(",") if k] or None
    try:
        sim = SimServer(
            time_scale=args.time_scale,
            faults=args.faults,
            keys=keys,
            host=args.host,
            port=args.port,
            seed=args.seed,
            **settings,
        )
    except ValueError as exc:
        print(f"wanlab sim: {exc}", file=sys.stderr)
        return 2
    sim.bind()  # bind first so the URLs below carry the real port (port 0 = a free one)
    print(f"wanlab sim (time scale {args.time_scale}) — offline stand-in, not the real hosts", flush=True)
    print(
        f"DashScope:  {sim.dashscope_url()}   (beijing: {sim.dashscope_url('beijing')}, "
        f"virginia: {sim.dashscope_url('virginia')})",
        flush=True,
    )
    print(f"WaveSpeed:  {sim.wavespeed_url}", flush=True)
    print(f"Stats:      {sim.url}/_sim/stats", flush=True)
    if args.log_level in ("info", "debug"):
        sim.app.log = lambda msg: print(f"wanlab sim: {msg}", flush=True)
    try:
        sim.serve_forever(args.log_level)
    except KeyboardInterrupt:
        pass
    return 0


def _add_sim(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim",
        help="run the offline DashScope + WaveSpeed simulator",
        description="Serve offline stand-ins for DashScope and WaveSpeed that render real MP4s.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument(
        "--time-scale", type=float, default=1.0, help="1.0 = the hosts' real minutes; 0.01 for tests and demos"
    )
    p.add_argument("--faults", default=None, help="fault spec, e.g. 'submit:429@0.1,query:503#2' (docs/SIM.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keys", default=None, help="comma-separated accepted keys (default: any non-empty key)")
    p.add_argument("--dashscope-concurrency", type=int, default=None)
    p.add_argument("--wavespeed-concurrency", type=int, default=None)
    p.add_argument("--render-workers", type=int, default=None)
    p.add_argument("--storage", default=None, help="directory for result videos (default: memory)")
    p.add_argument("--strict-media", action="store_true", help="fail tasks whose media URLs are not reachable")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=_cmd_sim)


def _cmd_demo(args: argparse.Namespace) -> int:
    import time

    from . import T2V, Lab
    from .report import write_report
    from .sweep import Sweep

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


def _add_demo(sub: argparse._SubParsersAction) -> None:
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


# Subcommand registrars, in help order.
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_demo, _add_sim]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wanlab", description="wanlab: a lab bench for WAN video generation")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
