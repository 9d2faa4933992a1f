"""Fault injection for the sim: which answer a route gives instead of the normal one.

A plan is a list of faults, each bound to a route (or "*") with a firing rule: a probability per
request, a scripted list of request numbers, or every request. Counters start when a fault is added,
so a test can say "the 2nd query after this line answers 503" without knowing what ran before.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from .defect_tags import DEFECTS, parse_defect_arg

ROUTES = ("submit", "query", "cancel", "list", "upload", "download", "task", "*")
HTTP_KINDS = ("429", "500", "502", "503", "reset", "slow")
KINDS = HTTP_KINDS + ("accept_reset", "fail", "moderation", "truncate", "defect")
# Kinds that only make sense on one route; "*" reaches them there only.
ROUTE_ONLY = {
    "accept_reset": "submit",
    "fail": "task",
    "moderation": "task",
    "truncate": "download",
    "defect": "task",
}

GRAMMAR = (
    "fault spec grammar: comma-separated items 'route:kind[=arg][@prob | #n[;m;...]]', "
    f"route one of {', '.join(ROUTES)}; kind one of {', '.join(KINDS)}; "
    "'@0.1' = probability per request, '#1;3' = the 1st and 3rd requests on that route, "
    "neither = every request. Examples: 'submit:429=2@0.5', 'query:503#1;2', 'task:fail=InternalError', "
    "'download:truncate=0.3#1', '*:slow=0.5@0.1', "
    f"'task:defect=flicker:0.5@0.3' (a known defect on successful tasks: {', '.join(DEFECTS)}, strength 0..1)"
)


@dataclass
class Fault:
    route: str
    kind: str
    arg: str | None = None
    prob: float | None = None
    seq: frozenset[int] | None = None
    seen: int = 0  # requests on its route since it was added (where its kind applies)
    fired: int = 0

    def applies(self, route: str, kinds: Iterable[str]) -> bool:
        if self.kind not in kinds:
            return False
        if self.route != "*" and self.route != route:
            return False
        only = ROUTE_ONLY.get(self.kind)
        return only is None or only == route

    @property
    def name(self) -> str:
        return f"{self.route}:{self.kind}"

    def float_arg(self, default: float) -> float:
        if self.arg is None or self.arg == "":
            return default
        return float(self.arg)


def _number(text: str) -> float:
    # float() accepts "nan" and "inf": a NaN delay or Retry-After would break the answer it shapes
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _check(fault: Fault, item: str) -> Fault:
    def bad(why: str) -> ValueError:
        return ValueError(f"bad fault item {item!r}: {why}; {GRAMMAR}")

    if fault.route not in ROUTES:
        raise bad(f"unknown route {fault.route!r}")
    if fault.kind not in KINDS:
        raise bad(f"unknown kind {fault.kind!r}")
    only = ROUTE_ONLY.get(fault.kind)
    if only and fault.route not in (only, "*"):
        raise bad(f"kind {fault.kind!r} applies to route {only!r} only")
    if fault.kind in HTTP_KINDS and fault.route == "task":
        raise bad(f"kind {fault.kind!r} is an HTTP answer; the 'task' route takes fail, moderation or defect")
    if fault.prob is not None and not (math.isfinite(fault.prob) and 0.0 <= fault.prob <= 1.0):
        raise bad("probability must be within 0..1")
    if fault.seq is not None and (not fault.seq or min(fault.seq) < 1):
        raise bad("request numbers are 1-based")
    try:
        if fault.kind == "429" and fault.arg and not fault.arg.startswith("date:"):
            _number(fault.arg)
        if fault.kind == "429" and fault.arg and fault.arg.startswith("date:"):
            _number(fault.arg[5:])
        if fault.kind in ("slow", "truncate") and fault.arg:
            v = _number(fault.arg)
            if fault.kind == "truncate" and not 0.0 <= v < 1.0:
                raise bad("truncate fraction must be within 0..1 (exclusive of 1)")
            if v < 0:
                raise bad("negative argument")
    except ValueError as exc:
        if str(exc).startswith("bad fault item"):
            raise
        raise bad(f"argument {fault.arg!r} is not a number") from None
    if fault.kind == "defect":
        try:
            parse_defect_arg(fault.arg)
        except ValueError as exc:
            raise bad(str(exc)) from None
    if fault.arg is not None and fault.kind in ("500", "502", "503", "reset", "accept_reset", "moderation"):
        raise bad(f"kind {fault.kind!r} takes no argument")
    return fault


def parse_item(item: str) -> Fault:
    text = item.strip()
    if ":" not in text:
        raise ValueError(f"bad fault item {item!r}: missing 'route:'; {GRAMMAR}")
    route, rest = text.split(":", 1)
    prob: float | None = None
    seq: frozenset[int] | None = None
    if "@" in rest:
        rest, p = rest.rsplit("@", 1)
        try:
            prob = float(p)
        except ValueError:
            raise ValueError(f"bad fault item {item!r}: probability {p!r} is not a number; {GRAMMAR}") from None
    elif "#" in rest:
        rest, s = rest.rsplit("#", 1)
        try:
            seq = frozenset(int(n) for n in s.split(";") if n.strip())
        except ValueError:
            raise ValueError(f"bad fault item {item!r}: request numbers {s!r} are not integers; {GRAMMAR}") from None
    kind, eq, value = rest.partition("=")
    arg = value if eq else None
    return _check(Fault(route.strip(), kind.strip(), arg.strip() if arg is not None else None, prob, seq), item)


def parse(spec: str | None) -> list[Fault]:
    if not spec or not spec.strip():
        return []
    return [parse_item(item) for item in spec.split(",") if item.strip()]


@dataclass
class FaultPlan:
    """The faults in force. Thread-safe: tests add faults from their thread while the server's
    loop consults them."""

    seed: int = 0
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{self.seed}")
        self.injected: dict[str, int] = {}

    def add(
        self,
        route: str,
        kind: str,
        arg: object = None,
        prob: float | None = None,
        seq: Iterable[int] | int | None = None,
    ) -> FaultPlan:
        if isinstance(seq, int):
            seq = [seq]
        fault = _check(
            Fault(
                route, str(kind), None if arg is None else str(arg), prob, frozenset(seq) if seq is not None else None
            ),
            f"{route}:{kind}" + (f"={arg}" if arg is not None else ""),
        )
        with self._lock:
            self.faults.append(fault)
        return self

    def set(self, spec: str | None) -> FaultPlan:
        """Replace every fault with those of `spec` (counters restart)."""
        parsed = parse(spec)
        with self._lock:
            self.faults = parsed
        return self

    def extend(self, spec: str | None) -> FaultPlan:
        parsed = parse(spec)
        with self._lock:
            self.faults.extend(parsed)
        return self

    def clear(self) -> FaultPlan:
        with self._lock:
            self.faults = []
        return self

    def pick(self, route: str, kinds: Iterable[str] = KINDS) -> Fault | None:
        """Count this request against every applicable fault; return the first that fires."""
        fired = self._fire(route, tuple(kinds), first_only=True)
        return fired[0] if fired else None

    def pick_all(self, route: str, kinds: Iterable[str]) -> list[Fault]:
        """Like `pick`, but every fault that fires is returned (and counted), in plan order: for kinds
        that add up, such as several `task:defect` rules."""
        return self._fire(route, tuple(kinds), first_only=False)

    def _fire(self, route: str, kinds: tuple[str, ...], first_only: bool) -> list[Fault]:
        """Every applicable fault sees the request; those that fire (only the first, with `first_only`)
        are counted as injected and returned."""
        chosen: list[Fault] = []
        with self._lock:
            for fault in self.faults:
                if not fault.applies(route, kinds):
                    continue
                fault.seen += 1
                if fault.prob is not None:
                    fires = self._rng.random() < fault.prob
                elif fault.seq is not None:
                    fires = fault.seen in fault.seq
                else:
                    fires = True
                if fires and not (first_only and chosen):
                    chosen.append(fault)
            for fault in chosen:
                fault.fired += 1
                key = f"{route}:{fault.kind}"
                self.injected[key] = self.injected.get(key, 0) + 1
        return chosen

    def describe(self) -> list[str]:
        with self._lock:
            out = []
            for f in self.faults:
                s = f"{f.route}:{f.kind}" + (f"={f.arg}" if f.arg is not None else "")
                if f.prob is not None:
                    s += f"@{f.prob}"
                elif f.seq is not None:
                    s += "#" + ";".join(str(n) for n in sorted(f.seq))
                out.append(s)
            return out

    def __repr__(self) -> str:
        return f"FaultPlan({', '.join(self.describe()) or 'none'})"
