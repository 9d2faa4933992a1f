"""Money: the estimate before a run (catalog unit prices × seconds), the actual after (the host's usage
fields × the same prices), and the budget guard. Prices are data rows with a source and a date; an
unknown price is reported as unknown, never as zero."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _checks as checks
from .catalog import ModelSpec
from .errors import ValidationError, WanlabError
from .prices import PriceTable
from .providers.base import billed_seconds
from .requests import Request

if TYPE_CHECKING:
    from .jobs import Job


class BudgetExceeded(WanlabError):
    """Starting this would (by the estimate) or did (by actual spend) pass the budget."""


@dataclass(frozen=True)
class Estimate:
    amount: float | None  # None: no price row covers it
    currency: str
    seconds: float  # billed seconds assumed
    source: str  # the price row's source and date
    items: int = 1

    def __str__(self) -> str:
        if self.amount is None:
            return f"unknown price ({self.seconds:g} s)"
        return f"{self.amount:.2f} {self.currency} for {self.items} run(s), {self.seconds:g} s (prices: {self.source})"

    def __add__(self, other: Estimate) -> Estimate:
        if self.currency and other.currency and self.currency != other.currency:
            raise ValueError(f"cannot add {self.currency} and {other.currency} estimates")
        amount = None if self.amount is None or other.amount is None else self.amount + other.amount
        sources = self.source if other.source in self.source else f"{self.source}; {other.source}"
        return Estimate(
            amount,
            self.currency or other.currency,
            self.seconds + other.seconds,
            sources.strip("; "),
            self.items + other.items,
        )


def requests_in(value: Any) -> list[Request]:
    """The requests in a request, a list of them, or a sweep (anything with `.requests` or `.expand()`)."""
    if isinstance(value, Request):
        reqs = [value]
    elif hasattr(value, "requests") and not callable(value.requests):
        reqs = list(value.requests)
    elif callable(expand := getattr(value, "expand", None)):
        reqs = list(expand())
    else:
        reqs = list(value)
    for r in reqs:
        if not isinstance(r, Request):
            raise TypeError(f"estimate() takes requests; got {type(r).__name__}")
    return reqs


def billed_seconds_for(req: Request, spec: ModelSpec) -> float:
    """What the host will bill: output seconds; for r2v and edit on DashScope 2.7 also the input video
    seconds (WIRE.md §5)."""
    seconds = req.output_seconds()
    if spec.host == "dashscope" and spec.version == "2.7" and req.mode in ("ref2v", "edit"):
        videos = [m for _, m in req.media() if m.kind == "video"]
        seconds += sum(v.seconds or 0.0 for v in videos)
    return seconds


def estimate(req: Request, spec: ModelSpec, prices: PriceTable, region: str | None) -> Estimate:
    seconds = billed_seconds_for(req, spec)
    price = prices.price(spec.host, region, spec.id, req.resolution, seconds)
    if price is None:
        return Estimate(None, "", seconds, f"no price row for {spec.id} {req.resolution}")
    row = price.row
    return Estimate(price.amount, price.currency, seconds, f"{row.source}, {row.date} [{row.confidence}]")


def actual(
    spec: ModelSpec, resolution: str, billed: float | None, prices: PriceTable, region: str | None
) -> tuple[float | None, str]:
    """Cost from the host's usage (billed seconds); failed tasks are not billed and have no usage."""
    if billed is None:
        return None, ""
    price = prices.price(spec.host, region, spec.id, resolution, billed)
    return (price.amount, price.currency) if price is not None else (None, "")


def actual_for(job: Job, prices: PriceTable, region: str | None) -> tuple[float | None, str, str]:
    """(amount, currency, basis) of a SUCCEEDED job: the host's usage fields (billed seconds) × the unit
    price; a host that reports no billed seconds (WaveSpeed) bills the request's seconds, or the seconds
    of the video it delivered."""
    billed = billed_seconds(job.usage)
    basis = "host usage"
    if billed is None:
        billed = billed_seconds_for(job.request, job.model)
        basis = "request seconds (the host reports no usage)"
        if not billed and job.video_info.get("duration"):
            billed, basis = float(job.video_info["duration"]), "delivered video seconds"
    amount, currency = actual(job.model, job.request.resolution, billed, prices, region)
    if amount is not None:
        basis += f": {billed:g} s"
    return amount, currency, basis


def settle(job: Job, prices: PriceTable, region: str | None) -> tuple[float | None, str, str]:
    """(amount, currency, basis) a job that ended costs. SUCCEEDED: the host's usage × the unit price (the
    estimate when no price row covers the billed seconds, rather than counting it free). FAILED, or never
    scheduled on the host: not billed, 0. Cancelled or unknown after it ran: the estimate, assumed billed."""
    from .jobs import Status

    if job.status is Status.SUCCEEDED:
        amount, currency, basis = actual_for(job, prices, region)
        if amount is None:
            return job.est_cost, currency or job.currency, "estimate (no price row for the billed seconds)"
        return amount, currency or job.currency, basis
    if job.status is Status.FAILED or job.timings["scheduled"] is None:
        return 0.0, job.currency, "not billed (failed or never ran)"
    return job.est_cost, job.currency, f"estimate: {job.status} after it ran, assumed billed"


class Budget:
    """Spend so far (actual) plus what is in flight (estimated), against a limit in one currency."""

    def __init__(self, limit: float | None, currency: str | None = None, spent: float = 0.0):
        # NaN would compare False everywhere and turn the guard off; a negative limit admits nothing
        self.limit = checks.check_number(
            "limit", limit, minimum=0, allow_none=True, where="Budget", hint=" (or None for no limit)"
        )
        if currency is not None and not (isinstance(currency, str) and len(currency) == 3 and currency.isupper()):
            raise ValidationError(
                f"Budget: currency={currency!r}; use a three-letter code such as 'USD' or 'CNY' "
                f"(or None to take the first run's)"
            )
        self.currency = None if currency is None else str(currency)
        self.spent = checks.check_number("spent", spent, minimum=0, where="Budget")
        self.in_flight: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, run_id: str, est: Estimate) -> None:
        """Reserve the estimate, or raise BudgetExceeded before anything is sent."""
        if self.limit is None:
            return
        if est.amount is None:
            raise BudgetExceeded(
                f"budget={self.limit}: the price of this run is unknown ({est.source}); add a price "
                f"row (lab.prices = lab.prices.override(...)) or drop the budget"
            )
        if self.currency and est.currency != self.currency:
            raise BudgetExceeded(f"budget is in {self.currency} but this run is priced in {est.currency}")
        with self._lock:
            self.currency = self.currency or est.currency
            committed = self.spent + sum(self.in_flight.values())
            if self.spent >= self.limit:
                raise BudgetExceeded(f"budget {self.limit:.2f} {self.currency} reached: {self.spent:.2f} spent")
            if committed + est.amount > self.limit + 1e-9:
                raise BudgetExceeded(
                    f"budget {self.limit:.2f} {self.currency}: {self.spent:.2f} spent + "
                    f"{committed - self.spent:.2f} in flight + {est.amount:.2f} for this run would exceed it"
                )
            self.in_flight[run_id] = est.amount

    def reserve(self, run_id: str, amount: float | None) -> None:
        """Count a run that is already on the host (a resumed one) without refusing it."""
        if self.limit is None or amount is None:
            return
        with self._lock:
            self.in_flight[run_id] = amount

    def settle(self, run_id: str, cost: float | None) -> None:
        """A run ended: replace its reservation by what it actually cost (0 when not billed)."""
        with self._lock:
            self.in_flight.pop(run_id, None)
            if cost:
                self.spent += cost

    def __repr__(self) -> str:
        if self.limit is None:
            return f"Budget(no limit, {self.spent:.2f} {self.currency or ''} spent)".replace(" )", ")")
        return (
            f"Budget({self.limit:.2f} {self.currency or ''}: {self.spent:.2f} spent, "
            f"{sum(self.in_flight.values()):.2f} in flight)"
        )

    @property
    def remaining(self) -> float | None:
        return None if self.limit is None else self.limit - self.spent - sum(self.in_flight.values())


def total(estimates: Iterable[Estimate]) -> Estimate:
    out: Estimate | None = None
    for e in estimates:
        out = e if out is None else out + e
    return out or Estimate(0.0, "", 0.0, "", 0)
