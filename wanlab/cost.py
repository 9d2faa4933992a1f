"""Money: the estimate before a run (catalog unit prices × seconds), the actual after (the host's usage
fields × the same prices), and the budget guard. Prices are data rows with a source and a date; an
unknown price is reported as unknown, never as zero. Amounts in different currencies are never added:
`Totals` (and `sums`, `money` for logged amounts) keep one total per currency, and a budget is in one."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _checks as checks
from .catalog import ModelSpec
from .errors import ConfigError, ValidationError, WanlabError
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
    model: str = ""  # the model(s) actually priced: a region may serve another version than asked

    def __str__(self) -> str:
        on = f" on {self.model}" if self.model else ""
        if self.amount is None:
            return f"unknown price ({self.seconds:g} s{on})"
        return (
            f"{self.amount:.2f} {self.currency} for {self.items} run(s){on}, {self.seconds:g} s (prices: {self.source})"
        )

    def __add__(self, other: Estimate | Totals) -> Estimate | Totals:
        """The sum in one currency; estimates in two currencies make `Totals`, one total each, never added."""
        if isinstance(other, Totals) or (self.currency and other.currency and self.currency != other.currency):
            return Totals([self]) + other
        return _plus(self, other)


def _plus(a: Estimate, b: Estimate) -> Estimate:
    """Two estimates in the same currency (or one of them unpriced: then the sum is unknown too)."""
    amount = None if a.amount is None or b.amount is None else a.amount + b.amount
    sources = a.source if b.source in a.source else f"{a.source}; {b.source}"
    models = dict.fromkeys(m for e in (a, b) for m in e.model.split(", ") if m)
    return Estimate(
        amount,
        a.currency or b.currency,
        a.seconds + b.seconds,
        sources.strip("; "),
        a.items + b.items,
        ", ".join(models),
    )


class Totals(Mapping[str, Estimate]):
    """Estimates kept apart by currency, never added across: `totals["USD"]`, `totals["CNY"]` (and `""` for
    runs with no price); `str()` names each. What adding estimates in two currencies gives, and `totals()`."""

    def __init__(self, estimates: Iterable[Estimate] = ()):
        self._by: dict[str, Estimate] = {}
        for e in estimates:
            self._by[e.currency] = _plus(self._by[e.currency], e) if e.currency in self._by else e

    def __getitem__(self, currency: str) -> Estimate:
        return self._by[currency]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by)

    def __len__(self) -> int:
        return len(self._by)

    def __add__(self, other: Estimate | Totals) -> Totals:
        return Totals([*self.values(), *(other.values() if isinstance(other, Totals) else [other])])

    def __radd__(self, other: object) -> Totals:
        if isinstance(other, Estimate):
            return Totals([other]) + self
        if other == 0:  # sum(...) starts from 0
            return self
        return NotImplemented

    def __str__(self) -> str:
        if not self._by:
            return "nothing to pay"
        priced = [c for c in self._by if c]
        apart = f" — {', '.join(priced)} never added" if len(priced) > 1 else ""
        return "; ".join(str(e) for e in self.values()) + apart

    def __repr__(self) -> str:
        return f"Totals({self})"


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
    seconds (WIRE.md §5). Extend's output seconds are its total, which already include the clip."""
    seconds = req.output_seconds()
    if spec.host == "dashscope" and spec.version == "2.7" and req.mode in ("ref2v", "edit"):
        videos = [m for _, m in req.media() if m.kind == "video"]
        seconds += sum(v.seconds or 0.0 for v in videos)
    return seconds


def estimate(req: Request, spec: ModelSpec, prices: PriceTable, region: str | None) -> Estimate:
    seconds = billed_seconds_for(req, spec)
    price = prices.price(spec.host, region, spec.id, req.resolution, seconds)
    if price is None:
        return Estimate(None, "", seconds, f"no price row for {spec.id} {req.resolution}", model=spec.id)
    row = price.row
    source = f"{row.source}, {row.date} [{row.confidence}]"
    return Estimate(price.amount, price.currency, seconds, source, model=spec.id)


def currency_of(prices: PriceTable, host: str, region: str | None) -> str | None:
    """The one currency `host` (in `region`) is priced in by `prices`; None when it has no rows, or rows in
    several currencies (a user override), so that a budget must name its own."""
    found = {r.currency for r in prices.rows if r.host == host and (not r.region or not region or r.region == region)}
    return found.pop() if len(found) == 1 else None


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
    """Spend so far (actual) plus what is in flight (estimated), against a limit in one currency: the one
    given, else the Lab's prices' (`Lab(budget=5)` on Beijing is 5 CNY), else the first run's."""

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

    def for_prices(self, currency: str | None, host: str) -> Budget:
        """This budget on a host whose prices are in `currency` (None: unknown): it takes that currency when
        it names none; naming another is refused, as wanlab never converts currencies."""
        if currency is not None and self.currency is not None and self.currency != currency:
            raise ConfigError(
                f"the budget is in {self.currency} but {host} prices are in {currency}: give the budget in "
                f"{currency}, e.g. budget=({self.limit if self.limit is not None else 5:g}, {currency!r}) "
                f"(wanlab never converts currencies)"
            )
        self.currency = self.currency or currency
        return self

    def admit(self, run_id: str, est: Estimate) -> None:
        """Reserve the estimate, or raise BudgetExceeded before anything is sent."""
        self.check(est, run_id)

    def check(self, est: Estimate, reserve_as: str | None = None) -> None:
        """Raise BudgetExceeded if `est` does not fit (in this budget's currency); with `reserve_as`, reserve
        it under that run id when it does."""
        if self.limit is None:
            return
        if est.amount is None:
            raise BudgetExceeded(
                f"budget {self.limit:g} {self.currency or ''}: the price of this run is unknown ({est.source}); "
                f"add a price row (lab.prices = lab.prices.override(...)) or drop the budget"
            )
        if self.currency and est.currency != self.currency:
            raise BudgetExceeded(
                f"the budget is in {self.currency} but this run is priced in {est.currency}: nothing was sent "
                f"(wanlab never converts currencies); give this host a budget in {est.currency}"
            )
        with self._lock:
            committed = self.spent + sum(self.in_flight.values())
            cur = self.currency or est.currency
            if self.spent >= self.limit:
                raise BudgetExceeded(f"budget {self.limit:.2f} {cur} reached: {self.spent:.2f} {cur} spent")
            if committed + est.amount > self.limit + 1e-9:
                raise BudgetExceeded(
                    f"budget {self.limit:.2f} {cur}: {self.spent:.2f} spent + "
                    f"{committed - self.spent:.2f} in flight + {est.amount:.2f} for this run would exceed it"
                )
            if reserve_as is not None:
                self.currency = cur
                self.in_flight[reserve_as] = est.amount

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


def totals(estimates: Iterable[Estimate]) -> Totals:
    """One total per currency, never added across (several hosts, regions or price tables)."""
    return Totals(estimates)


def total(estimates: Iterable[Estimate]) -> Estimate:
    """The sum of estimates in one currency (a Lab's runs, a sweep's). Several currencies raise, naming each
    total: `totals()` keeps them apart."""
    apart = Totals(estimates)
    priced = [c for c in apart if c]
    if len(priced) > 1:
        raise ValueError(f"these runs are priced in {' and '.join(priced)} ({apart}); use cost.totals(...)")
    out: Estimate | None = None
    for e in apart.values():
        out = e if out is None else _plus(out, e)
    return out or Estimate(0.0, "", 0.0, "", 0)


def sums(amounts: Iterable[Any], currencies: Iterable[Any]) -> dict[str, float]:
    """Logged amounts summed per currency, never across: {"USD": 0.6, "CNY": 3.6}. A missing amount (None,
    NaN, NA) adds nothing; an amount logged without a currency is summed under "?"."""
    out: dict[str, float] = {}
    for amount, currency in zip(amounts, currencies, strict=True):
        try:
            value = float(amount)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            key = currency if isinstance(currency, str) and currency else "?"
            out[key] = out.get(key, 0.0) + value
    return out


def money(per_currency: Mapping[str, float]) -> str:
    """ "0.60 USD; 3.60 CNY": each currency's total, never one sum ("0.00" for none)."""
    return "; ".join(f"{v:.2f} {c}" for c, v in per_currency.items()) or "0.00"
