"""`wanlab estimate`: what a grid of requests would cost on the chosen host — each cell, then the total per
currency (two currencies are never added). Nothing is sent and nothing is logged: the Lab it prices with
keeps its log in a temporary folder."""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

from ._common import add_host_flags, add_request_flags, aligned, emit, lab_from_flags, request_from_flags

AXES = ("resolution", "duration", "seed")


def _cmd_estimate(args: argparse.Namespace) -> int:
    axes: dict[str, Any] = {k: list(v) for k in AXES if (v := getattr(args, k))}
    base = request_from_flags(args, **{k: v[0] for k, v in axes.items()})  # bad input: before any Lab
    with tempfile.TemporaryDirectory(prefix="wanlab-estimate-") as tmp, lab_from_flags(args, home=tmp) as lab:
        sweep = lab.sweep(base, **axes)  # every cell built and checked against the host's model
        cells: list[dict[str, Any]] = []
        sources: set[str] = set()
        for cell, req in zip(sweep.cells, sweep.requests, strict=True):
            est = lab.estimate(req)
            model = lab.resolve(req).id
            cells.append(
                {**cell, "model": model, "seconds": est.seconds, "amount": est.amount, "currency": est.currency}
            )
            sources.update(s for s in est.source.split("; ") if s)
        host = lab.host
    totals: dict[str, float] = {}
    for c in cells:
        if c["amount"] is not None:
            totals[c["currency"]] = totals.get(c["currency"], 0.0) + c["amount"]
    unknown = sum(1 for c in cells if c["amount"] is None)
    if args.json:
        emit(args, json.dumps({"host": host, "cells": cells, "totals": totals, "unknown": unknown, "runs": len(cells)}))
        return 0
    emit(args, _table(cells), end="")
    summed = " + ".join(f"{amount:.2f} {currency}" for currency, amount in sorted(totals.items())) or "0.00"
    emit(args, f"total: {summed} for {len(cells) - unknown} run(s) on {host}")
    if unknown:
        emit(args, f"{unknown} run(s) have no known price and are not in the total (unknown, not free)")
    emit(args, f"prices: {'; '.join(sorted(sources)) or 'none'}")
    return 0


def _table(cells: list[dict[str, Any]]) -> str:
    shown = [k for k in AXES if k in cells[0]]
    head = (*shown, "model", "billed", "estimate")
    body = [
        (
            *(str(c[k]) for k in shown),
            c["model"],
            f"{c['seconds']:g} s",
            "unknown price" if c["amount"] is None else f"{c['amount']:.2f} {c['currency']}",
        )
        for c in cells
    ]
    return aligned(head, body)


def add_estimate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate",
        help="price a grid of requests before running it (nothing sent, nothing logged)",
        description="Price every cell of a grid (--resolution 720P 1080P --duration 5 10 --seed 1 2) on the "
        "chosen host, and the total per currency. Nothing is sent and nothing is logged.",
    )
    add_request_flags(p, grid=True)
    p.add_argument("--json", action="store_true", help="one JSON object: cells, totals per currency")
    add_host_flags(p, home=False, budget=False)
    p.set_defaults(func=_cmd_estimate, results=True)
