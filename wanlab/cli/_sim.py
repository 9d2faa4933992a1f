"""`wanlab sim`: serve the offline DashScope + WaveSpeed stand-ins on a port (docs/SIM.md)."""

from __future__ import annotations

import argparse
import sys


def _cmd_sim(args: argparse.Namespace) -> int:
    from ..sim import SimServer

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


def add_sim(sub: argparse._SubParsersAction) -> None:
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
