"""The sim's own control API, `/_sim/*`: stats, faults, clock, per-task facts the hosts never report,
health. Every input is checked before anything changes; a bad request answers `400 {"error": …}`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import sim_error
from .jsonbody import loads_object

if TYPE_CHECKING:
    from .app import SimApp

_SIM_METHODS = {
    "stats": ("GET",),
    "faults": ("GET", "POST"),
    "clock": ("GET", "POST"),
    "tasks": ("GET",),
    "health": ("GET", "HEAD"),
}


async def sim_endpoint(app: SimApp, request: Request, params: dict) -> Response:
    what = params["what"]
    name = "tasks" if what.startswith("tasks/") else what
    allowed = _SIM_METHODS.get(name)
    if allowed is None:
        return sim_error(404, f"unknown sim endpoint /_sim/{what}")
    if request.method not in allowed:
        return sim_error(
            405, f"/_sim/{name} takes {' or '.join(allowed)}, not {request.method}", {"Allow": ", ".join(allowed)}
        )
    try:
        if request.method == "POST":
            body = loads_object(await request.body())
            if what == "faults":
                _set_faults(app, body)
            elif what == "clock":
                app.engine.clock.advance(_seconds(body, "advance"))
    except ValueError as exc:
        # A bad control request must leave the sim exactly as it was: everything is checked
        # before anything changes (a NaN clock offset used to break every later answer).
        return sim_error(400, str(exc))
    if what == "stats":
        return JSONResponse(app.engine.stats())
    if what == "faults":
        return JSONResponse({"faults": app.faults.describe()})
    if what == "clock":
        c = app.engine.clock
        return JSONResponse({"wall": c.wall(), "sim": c.sim(), "offset": c.offset, "time_scale": c.time_scale})
    if name == "tasks":
        task = app.engine.tasks.get(what[len("tasks/") :])
        if task is None:
            return sim_error(404, "unknown task")
        return JSONResponse(sim_task_info(app, task))
    return JSONResponse({"ok": True})


def _seconds(body: dict, field: str) -> float:
    """A finite, non-negative JSON number (not a string, not a bool)."""
    value = body.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number of seconds, got {type(value).__name__} {value!r:.40}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{field} must be a finite number >= 0, got {value!r}")
    return float(value)


def _set_faults(app: SimApp, body: dict) -> None:
    spec, append = body.get("spec", ""), body.get("append", False)
    if spec is not None and not isinstance(spec, str):
        raise ValueError(f"spec must be a string of fault items, got {type(spec).__name__}")
    if not isinstance(append, bool):
        raise ValueError(f"append must be true or false, got {type(append).__name__}")
    if append:
        app.faults.extend(spec)
    else:
        app.faults.set(spec)


def sim_task_info(app: SimApp, task) -> dict:
    """What the hosts never report: the drawn seed, the latency draws, the price from the catalog."""
    from ..prices import default_prices

    price = None
    try:
        p = default_prices().price(task.host, task.region or None, task.model.id, task.resolution, task.duration)
        if p is not None:
            price = {"amount": p.amount, "currency": p.currency, "source": p.row.source, "confidence": p.row.confidence}
    except Exception:  # noqa: BLE001 — a price table problem must not break introspection
        price = None
    return {
        "task_id": task.id,
        "host": task.host,
        "key": task.key_fp,
        "region": task.region,
        "model": task.model.id,
        "mode": task.mode,
        "status": task.status,
        "seed": task.seed,
        "seed_drawn": task.seed_drawn,
        "resolution": task.resolution,
        "ratio": task.ratio,
        "width": task.width,
        "height": task.height,
        "duration": task.duration,
        "input_video_duration": task.input_video_s,
        "queue_s": round(task.queue_s, 3),
        "run_s": round(task.run_s, 3),
        "video_bytes": task.video_bytes,
        "price": price,
        "fail": list(task.fail) if task.fail else None,
        "moderation": task.moderation,
        # known defects rendered on purpose (prompt tag + task:defect rules), {name: strength}
        "defects": dict(task.extra.get("defects") or {}),
    }
