"""Unit prices as data: dated, sourced rows (`data/prices.csv`) a user can override without touching code,
and the look-up that turns a model, resolution and seconds into an amount. No I/O beyond reading the
packaged CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from . import _checks as checks
from .catalog import _MODELS, HOSTS, REGIONS, RESOLUTIONS, get_model
from .errors import CatalogError, ValidationError


@dataclass(frozen=True)
class PriceRow:
    """One unit price, with where it came from. `per` is "second" (× output seconds) or "clip:N"
    (a flat price for clips up to N seconds)."""

    host: str
    region: str  # "" for any
    model: str  # exact id, or a prefix ending in "*"
    resolution: str
    amount: float
    currency: str
    per: str
    source: str
    date: str
    confidence: str  # "doc" | "2nd"

    def matches(self, host: str, region: str | None, model: str, resolution: str) -> bool:
        if self.host != host or self.resolution != resolution:
            return False
        if self.region and region and self.region != region:
            return False
        if self.model.endswith("*"):
            return model.startswith(self.model[:-1])
        return model == self.model


@dataclass(frozen=True)
class Price:
    amount: float
    currency: str
    row: PriceRow

    def __str__(self) -> str:
        return f"{self.amount:.4g} {self.currency}"


class PriceTable:
    """Unit prices as data rows. Later rows win, so `override()` and a user CSV take precedence."""

    def __init__(self, rows: Iterable[PriceRow]):
        self.rows = list(rows)

    @classmethod
    def from_csv(cls, text: str) -> PriceTable:
        rows = []
        for rec in csv.DictReader(io.StringIO(text)):
            if not rec.get("host") or rec["host"].startswith("#"):
                continue
            rows.append(
                PriceRow(
                    rec["host"],
                    rec["region"],
                    rec["model"],
                    rec["resolution"],
                    float(rec["amount"]),
                    rec["currency"],
                    rec["per"],
                    rec["source"],
                    rec["date"],
                    rec["confidence"],
                )
            )
        return cls(rows)

    def override(
        self,
        host: str,
        model: str,
        resolution: str,
        amount: float,
        currency: str = "USD",
        per: str = "second",
        region: str = "",
        source: str = "user",
        date: str = "",
        confidence: str = "user",
    ) -> PriceTable:
        """A new table with one more row, which wins over earlier ones. Every argument is checked: a row
        no request could match (a misspelled host, model or resolution) would be ignored silently."""
        row = PriceRow(
            _price_host(host),
            _price_region(host, region),
            _price_model(host, model),
            _price_resolution(resolution),
            checks.check_number(
                "amount", amount, minimum=0, where="PriceTable.override", hint=f" ({currency!s} per {per!s})"
            ),
            _price_currency(currency),
            _price_per(per),
            *(
                checks.check_text(n, v, where="PriceTable.override")
                for n, v in (("source", source), ("date", date), ("confidence", confidence))
            ),
        )
        return PriceTable(self.rows + [row])

    def lookup(self, host: str, region: str | None, model: str, resolution: str) -> PriceRow | None:
        """The last matching row: overrides are appended, so they win."""
        for row in reversed(self.rows):
            if row.matches(host, region, model, resolution):
                return row
        return None

    def price(self, host: str, region: str | None, model: str, resolution: str, seconds: float) -> Price | None:
        """What `seconds` of output cost; None when no row covers it (an unknown price is not zero)."""
        row = self.lookup(host, region, model, resolution)
        if row is None:
            return None
        if row.per == "second":
            return Price(round(row.amount * seconds, 6), row.currency, row)
        if row.per.startswith("clip:"):
            # a flat price per clip length: the smallest clip that covers the seconds; among rows for
            # the same length, the later one (an override) wins
            clips: dict[int, PriceRow] = {}
            for r in self.rows:
                if r.per.startswith("clip:") and r.matches(host, region, model, resolution):
                    clips[int(r.per.split(":")[1])] = r
            for limit in sorted(clips):
                if seconds <= limit:
                    return Price(clips[limit].amount, clips[limit].currency, clips[limit])
            return None  # longer than any priced clip: unknown, not the longest clip's price
        raise CatalogError(f"price row for {model} has unknown unit per={row.per!r}")


_WHERE = "PriceTable.override"
_PREFIX_EXAMPLE = {"dashscope": "wan2.7-*", "wavespeed": "alibaba/wan-2.7/*"}


def _price_host(host: object) -> str:
    if host not in HOSTS:
        raise CatalogError(
            f"{_WHERE}: host={host!r}; use {' or '.join(repr(h) for h in HOSTS)}{checks.suggest(host, HOSTS)}"
        )
    return str(host)


def _price_region(host: object, region: object) -> str:
    if region == "":
        return ""
    if host != "dashscope":
        raise ValidationError(f"{_WHERE}: region={region!r}: {host} has no regions; leave region=''")
    if region not in REGIONS:
        raise ValidationError(
            f"{_WHERE}: region={region!r}; use one of {', '.join(REGIONS)} (or '' for any)"
            f"{checks.suggest(region, REGIONS)}"
        )
    return str(region)


def _price_model(host: str, model: object) -> str:
    """An exact ID of this host, or a prefix ending in "*" that matches at least one of its IDs."""
    if isinstance(model, str) and model.endswith("*"):
        if not any(m.host == host and m.id.startswith(model[:-1]) for m in _MODELS):
            raise CatalogError(
                f"{_WHERE}: model={model!r} matches no {host} model ID; e.g. {_PREFIX_EXAMPLE[host]!r} or an exact ID"
            )
        return str(model)
    try:
        return get_model(model, host=host).id  # type: ignore[arg-type]
    except CatalogError as exc:
        raise CatalogError(f"{_WHERE}: {exc}") from None


def _price_resolution(resolution: object) -> str:
    if resolution in RESOLUTIONS:
        return str(resolution)
    fixed = str(resolution).upper().replace(" ", "")
    hint = f" (did you mean {fixed!r}?)" if fixed in RESOLUTIONS else ""
    raise ValidationError(f"{_WHERE}: resolution={resolution!r}; use one of {', '.join(RESOLUTIONS)}{hint}")


def _price_currency(currency: object) -> str:
    if isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper():
        return str(currency)
    hint = f" (did you mean {currency.upper()!r}?)" if isinstance(currency, str) and len(currency) == 3 else ""
    raise ValidationError(f"{_WHERE}: currency={currency!r}; use a three-letter ISO code such as 'USD' or 'CNY'{hint}")


def _price_per(per: object) -> str:
    if per == "second":
        return "second"
    if isinstance(per, str) and per.startswith("clip:") and per[5:].isdigit() and int(per[5:]) > 0:
        return str(per)
    raise ValidationError(
        f"{_WHERE}: per={per!r}; use 'second' (× output seconds) or 'clip:N' (a flat price for "
        f"clips up to N seconds, e.g. 'clip:5')"
    )


def default_prices() -> PriceTable:
    return PriceTable.from_csv(resources.files("wanlab.data").joinpath("prices.csv").read_text())
