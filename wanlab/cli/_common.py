"""What several commands share: the host flags and the Lab built from them (with `Lab(...)`'s own host
choice and environment), the request flags and the request built from them, the log a reading command
opens, and `BadInput` — refused before anything was sent or logged (exit 2)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cost import BudgetExceeded
from ..errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from ..lab import Lab
    from ..log import ExperimentLog
    from ..requests import Request


class BadInput(Exception):
    """A command line wanlab refuses before it sends or logs anything; the message says what to change."""


# Everything that means "fix the command line and try again": exit 2, nothing sent.
REFUSALS: tuple[type[BaseException], ...] = (BadInput, ValidationError, ConfigError, BudgetExceeded)

INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT (Ctrl-C)
MODES = ("t2v", "i2v", "flf2v", "grid9", "ref2v", "edit", "extend")

# Which media flag feeds which request field: (field or fields, how many: an int, or None for any), required
_MEDIA: dict[str, dict[str, tuple[tuple[str, ...], int | None, bool]]] = {
    "t2v": {},
    "i2v": {"image": (("image",), 1, True)},
    "flf2v": {"image": (("first", "last"), 2, True)},
    "grid9": {"image": (("images",), None, False), "grid": (("grid",), 1, False)},
    "ref2v": {"image": (("images",), None, False), "video": (("videos",), None, False)},
    "edit": {"video": (("video",), 1, True), "image": (("images",), None, False)},
    "extend": {"video": (("video",), 1, True), "last": (("last",), 1, False)},
}
_USES = {
    "t2v": "t2v takes a prompt and no media",
    "i2v": "i2v takes one --image (the first frame)",
    "flf2v": "flf2v takes two --image: the first frame, then the last",
    "grid9": "grid9 takes nine --image (the tiles, row by row) or one --grid picture",
    "ref2v": "ref2v takes 1–5 references as --video and/or --image",
    "edit": "edit takes one --video (the clip to edit) and up to 3 --image references",
    "extend": "extend takes one --video (the clip to continue) and optionally --last (the last frame)",
}


def say(message: str) -> None:
    """A line for the person at the terminal: stderr, so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def emit(args: argparse.Namespace, text: str, end: str = "\n") -> None:
    """Output on stdout — the real one: while a command runs, `main` sends the library's own notes (the
    simulator notice, a region's model) to stderr, with the progress."""
    print(text, end=end, file=getattr(args, "stdout", None) or sys.stdout, flush=True)


def aligned(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(cells, widths, strict=True)).rstrip() for cells in (head, *body)]
    return "\n".join(lines) + "\n"


# -- the host --------------------------------------------------------------------------------------
def add_host_flags(p: argparse.ArgumentParser, *, home: bool = True, budget: bool = True) -> None:
    g = p.add_argument_group("host (default: as Lab() reads the environment; no key → the embedded simulator)")
    g.add_argument(
        "--provider",
        choices=("dashscope", "wavespeed", "sim"),
        help="default: $WANLAB_PROVIDER, else the host whose key is set ($DASHSCOPE_API_KEY, $WAVESPEED_API_KEY)",
    )
    g.add_argument("--region", help="DashScope region: singapore, beijing or virginia (default $DASHSCOPE_REGION)")
    g.add_argument("--base-url", help="any host speaking the protocol, e.g. a running `wanlab sim`")
    g.add_argument("--protocol", choices=("dashscope", "wavespeed"), help="the wire the sim speaks (sim only)")
    g.add_argument("--time-scale", type=float, help="sim seconds per host second (sim only; default 0.01)")
    if home:
        g.add_argument("--home", help="folder of runs.sqlite and media/ (default $WANLAB_HOME or ./wanlab-runs)")
    if budget:
        g.add_argument("--budget", type=float, help="refuse a run whose estimate would pass this amount")


@contextlib.contextmanager
def lab_from_flags(args: argparse.Namespace, *, home: str | Path | None = None) -> Iterator[Lab]:
    """A Lab built by `Lab(...)` from the host flags (nothing resumed, nothing measured: commands do that
    explicitly); closed on the way out."""
    from .._hosts import is_sim
    from ..lab import Lab

    lab = Lab(
        provider=args.provider,
        region=args.region,
        base_url=args.base_url,
        protocol=args.protocol,
        time_scale=args.time_scale,
        home=home if home is not None else getattr(args, "home", None),
        budget=getattr(args, "budget", None),
        resume=False,
        measure=False,
    )
    with lab:
        if args.time_scale is not None and not is_sim(lab.host):
            raise BadInput(f"--time-scale is for the simulator; {lab.host} runs in real time (drop the flag)")
        yield lab


# -- the log, for commands that only read it -------------------------------------------------------
@contextlib.contextmanager
def open_log(args: argparse.Namespace) -> Iterator[ExperimentLog]:
    """The log under --home (or $WANLAB_HOME, or ./wanlab-runs), without starting a Lab; a missing log is
    refused rather than created."""
    from ..log import ExperimentLog, default_home

    path = (Path(args.home) if args.home else default_home()) / "runs.sqlite"
    if not path.is_file():
        raise BadInput(f"no wanlab log at {path}; give --home (or set WANLAB_HOME) to the folder of runs.sqlite")
    log = ExperimentLog(path)
    try:
        yield log
    finally:
        log.close()


def add_home_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", help="folder of runs.sqlite (default $WANLAB_HOME or ./wanlab-runs)")


# -- the request -----------------------------------------------------------------------------------
def add_request_flags(p: argparse.ArgumentParser, *, grid: bool = False) -> None:
    """The request's flags; with `grid`, resolution, duration and seed take several values (a sweep's axes)."""
    several: dict[str, Any] = {"nargs": "+"} if grid else {}
    p.add_argument("prompt", nargs="?", default="", help="what to show (edit: the instruction)")
    p.add_argument("--mode", choices=MODES, default="t2v", help="default t2v")
    g = p.add_argument_group("request")
    g.add_argument("--resolution", **several, help="480P, 720P or 1080P, as the model renders (default 720P)")
    g.add_argument("--duration", type=int, **several, help="seconds (extend: the total; edit: 0 = the input's)")
    g.add_argument("--seed", type=int, **several, help="a seed makes the run repeatable (and reusable)")
    g.add_argument("--model", help="a model id from the catalog (default: the newest for the mode and host)")
    g.add_argument("--ratio", help="aspect ratio, e.g. 16:9 (t2v, grid9, ref2v, edit)")
    g.add_argument("--negative", default="", help="negative prompt")
    m = p.add_argument_group("media (a local path or an https:// URL)")
    m.add_argument("--image", action="append", help="repeatable: i2v 1, flf2v 2 (first, last), grid9 9, ref2v, edit")
    m.add_argument("--video", action="append", help="edit and extend: the clip; ref2v: repeatable references")
    m.add_argument("--grid", help="grid9: one ready-made 3×3 picture instead of nine --image")
    m.add_argument("--last", help="extend: the frame to end on")


def request_class(mode: str) -> type[Request]:
    from .. import requests

    cls = requests.REQUEST_TYPES.get(mode) or getattr(requests, mode.capitalize(), None)
    if cls is None:
        raise BadInput(f"--mode {mode}: this wanlab has no {mode} request yet; upgrade wanlab")
    return cls


def request_from_flags(args: argparse.Namespace, **single: Any) -> Request:
    """The request the flags describe, validated on creation. `single` gives resolution, duration and seed
    when the flags hold several values (a grid's first cell)."""
    cls = request_class(args.mode)
    names = {f.name for f in fields(cls)}
    kw: dict[str, Any] = {"negative_prompt": args.negative, **_media(args)}
    values = {k: single.get(k, getattr(args, k)) for k in ("resolution", "duration", "seed", "model", "ratio")}
    for name, value in values.items():
        if value is None:
            continue  # the request's default
        if name not in names:
            raise BadInput(f"--{name} does not apply to --mode {args.mode} (the input picture sets its shape)")
        kw[name] = value
    return cls(args.prompt, **kw)


def _media(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "image": list(args.image or []),
        "video": list(args.video or []),
        "grid": [args.grid] if args.grid else [],
        "last": [args.last] if args.last else [],
    }
    rules = _MEDIA[args.mode]
    out: dict[str, Any] = {}
    for flag, values in given.items():
        if flag not in rules:
            if values:
                raise BadInput(f"--{flag} is not an input of --mode {args.mode}: {_USES[args.mode]}")
            continue
        names, count, required = rules[flag]
        if not values and not required:
            continue  # the request's default
        if count is None:
            out[names[0]] = values
        elif len(values) == count:
            out.update(zip(names, values, strict=True))
        else:
            raise BadInput(f"got {len(values)} --{flag}; {_USES[args.mode]}")
    return out
