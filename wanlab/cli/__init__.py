"""wanlab's command line: `wanlab generate / runs / show / resume / estimate / export`, `wanlab demo`,
`wanlab sim` (docs/CLI.md).

Each command family is a module with an `add_<name>(subparsers)` that sets `func`; `main` dispatches and
turns a refusal (bad flags or input, a budget, a missing log: see `_common.REFUSALS`) into its message on
stderr and exit 2 — raised before anything is sent or logged. Heavy imports (pandas, the simulator) happen
inside the commands, so `wanlab --help` stays quick and importing this package does nothing."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from ._common import INTERRUPTED, REFUSALS
from ._demo import add_demo
from ._estimate import add_estimate
from ._generate import add_generate, add_resume
from ._runs import add_runs
from ._sim import add_sim

# Subcommand registrars, in help order (`add_runs` registers runs, show and export).
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_generate,
    add_runs,
    add_resume,
    add_estimate,
    add_demo,
    add_sim,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wanlab",
        description="wanlab: a lab bench for WAN video generation. Same keys and environment as Lab(): "
        "DASHSCOPE_API_KEY (+ DASHSCOPE_REGION), WAVESPEED_API_KEY, WANLAB_PROVIDER, WANLAB_HOME; "
        "with no key, the embedded simulator.",
    )
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
    try:
        return _run(args)
    except REFUSALS as exc:
        print(f"wanlab {args.command}: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:  # outside a wait, which cancels its runs itself; a run already sent stays resumable
        print(f"wanlab {args.command}: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED
    except BrokenPipeError:  # `wanlab runs | head`: the reader left early, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush raises nothing
        return 0


def _run(args: argparse.Namespace) -> int:
    if not getattr(args, "results", False):  # demo and sim talk on stdout
        return int(args.func(args) or 0)
    # stdout carries results only (`emit`): what the library prints for the person — the simulator notice, a
    # region's model note, a resume report — joins the progress on stderr
    args.stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        return int(args.func(args) or 0)


__all__ = ["COMMANDS", "build_parser", "main"]
