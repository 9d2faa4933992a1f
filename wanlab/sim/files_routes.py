"""Result videos and uploaded media (GET/HEAD with Range, signed expiring links), and the sim-only
introspection endpoints under /_sim/."""
from __future__ import annotations

import math
import re
import time
import uuid
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .jsonbody import loads_object

if TYPE_CHECKING:
    from .app import SimApp


def _oss_error(status: int, code: str, message: str, extra: str = "") -> Response:
    # OSS answers signed-URL problems with XML like this.
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
            f"  <RequestId>{uuid.uuid4().hex[:24].upper()}</RequestId>\n"
            f"  <HostId>wanlab-sim.oss.local</HostId>\n{extra}</Error>\n")
    return Response(body, status_code=status, media_type="application/xml")


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


async def serve(app: "SimApp", request: Request, params: dict) -> Response:
    name = unquote(params["name"])
    blob = app.store.get(params["space"], name)
    clock = app.engine.clock
    if blob is None:
        return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
    q = request.query_params
    if "Expires" in q or "Signature" in q:
        try:
            expires = int(q.get("Expires", "0"))
        except ValueError:
            expires = 0
        if q.get("Signature", "") != app.sign(name, expires):
            return _oss_error(403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match the signature you provided.")
        if clock.wall() > expires:
            return _oss_error(403, "AccessDenied", "Request has expired.",
                              f"  <Expires>{_iso(expires)}</Expires>\n  <ServerTime>{_iso(clock.wall())}</ServerTime>\n")
    elif params["space"] == "files" and blob.name and app.engine.tasks.get(name[:-4]) is not None \
            and app.engine.tasks[name[:-4]].host == "dashscope":
        return _oss_error(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
    if blob.expired(clock.sim()):
        return _oss_error(403, "AccessDenied", "Request has expired.")
    data = blob.read()
    total = len(data)
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{hash_etag(data)}"',
               "Last-Modified": formatdate(blob.created_wall, usegmt=True)}
    rng = request.headers.get("range")
    status = 200
    body = data
    if rng:
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
        if not m or (not m.group(1) and not m.group(2)):
            return Response(status_code=416, headers={"Content-Range": f"bytes */{total}"})
        if m.group(1):
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else total - 1
        else:
            start = max(0, total - int(m.group(2)))
            end = total - 1
        end = min(end, total - 1)
        if start >= total or start > end:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{total}"})
        body = data[start:end + 1]
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{total}"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(b"", status_code=status, headers=headers, media_type=blob.content_type)
    return Response(body, status_code=status, headers=headers, media_type=blob.content_type)


def hash_etag(data: bytes) -> str:
    import hashlib
    return hashlib.md5(data).hexdigest().upper()


_SIM_METHODS = {"stats": ("GET",), "faults": ("GET", "POST"), "clock": ("GET", "POST"), "tasks": ("GET",),
                "health": ("GET", "HEAD")}


def _sim_error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def sim_endpoint(app: "SimApp", request: Request, params: dict) -> Response:
    what = params["what"]
    name = "tasks" if what.startswith("tasks/") else what
    allowed = _SIM_METHODS.get(name)
    if allowed is None:
        return _sim_error(404, f"unknown sim endpoint /_sim/{what}")
    if request.method not in allowed:
        return _sim_error(405, f"/_sim/{name} takes {' or '.join(allowed)}, not {request.method}",
                          {"Allow": ", ".join(allowed)})
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
        return _sim_error(400, str(exc))
    if what == "stats":
        return JSONResponse(app.engine.stats())
    if what == "faults":
        return JSONResponse({"faults": app.faults.describe()})
    if what == "clock":
        c = app.engine.clock
        return JSONResponse({"wall": c.wall(), "sim": c.sim(), "offset": c.offset, "time_scale": c.time_scale})
    if name == "tasks":
        task = app.engine.tasks.get(what[len("tasks/"):])
        if task is None:
            return _sim_error(404, "unknown task")
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


def _set_faults(app: "SimApp", body: dict) -> None:
    spec, append = body.get("spec", ""), body.get("append", False)
    if spec is not None and not isinstance(spec, str):
        raise ValueError(f"spec must be a string of fault items, got {type(spec).__name__}")
    if not isinstance(append, bool):
        raise ValueError(f"append must be true or false, got {type(append).__name__}")
    if append:
        app.faults.extend(spec)
    else:
        app.faults.set(spec)


def sim_task_info(app: "SimApp", task) -> dict:
    """What the hosts never report: the drawn seed, the latency draws, the price from the catalog."""
    from ..catalog import default_prices
    price = None
    try:
        p = default_prices().price(task.host, task.region or None, task.model.id, task.resolution, task.duration)
        if p is not None:
            price = {"amount": p.amount, "currency": p.currency, "source": p.row.source,
                     "confidence": p.row.confidence}
    except Exception:  # noqa: BLE001 — a price table problem must not break introspection
        price = None
    return {"task_id": task.id, "host": task.host, "key": task.key_fp, "region": task.region,
            "model": task.model.id, "mode": task.mode, "status": task.status, "seed": task.seed,
            "seed_drawn": task.seed_drawn, "resolution": task.resolution, "ratio": task.ratio,
            "width": task.width, "height": task.height, "duration": task.duration,
            "input_video_duration": task.input_video_s, "queue_s": round(task.queue_s, 3),
            "run_s": round(task.run_s, 3), "video_bytes": task.video_bytes, "price": price,
            "fail": list(task.fail) if task.fail else None, "moderation": task.moderation}
