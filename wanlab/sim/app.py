"""The sim's ASGI app: one dispatcher for both hosts, with the fault layer in front of it.

Routes are classified before dispatch (route name + host) so that faults and stats see every request,
including those the fault layer answers instead of the handler."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import TypedDict

from starlette.requests import Request
from starlette.responses import Response

from . import control, files_routes
from .dashscope_routes import DashScopeRoutes
from .engine import Engine, Task
from .errors import host_error, not_found
from .faults import HTTP_KINDS, FaultPlan
from .fetch import Resolver
from .settings import SimSettings
from .store import BlobStore
from .wavespeed_routes import WaveSpeedRoutes

Handler = Callable[["SimApp", Request, dict], Awaitable[Response]]

DS_REGIONS = ("singapore", "beijing", "virginia")
_DS = re.compile(r"^/(?:(singapore|beijing|virginia)/)?api/v1(/.*)$")


# ---- fault answers --------------------------------------------------------------------------------
def retry_after_value(arg: str | None, wall_now: float) -> str:
    if arg and arg.startswith("date:"):
        return formatdate(wall_now + float(arg[5:]), usegmt=True)
    return str(int(float(arg))) if arg and float(arg).is_integer() else (arg or "1")


# ---- the app ---------------------------------------------------------------------------------------
@dataclass
class Routed:
    route: str  # submit | query | cancel | list | upload | download | sim | other
    host: str  # dashscope | wavespeed | files | sim | other
    handler: Handler | None
    params: dict


class SimApp:
    def __init__(
        self,
        settings: SimSettings,
        faults: FaultPlan | None = None,
        keys: list[str] | None = None,
        key_regions: dict[str, str] | None = None,
    ):
        self.settings = settings
        self.faults = faults or FaultPlan(seed=settings.seed)
        self.store = BlobStore(settings.storage)
        self.engine = Engine(settings, self.faults, self.store)
        self.engine.result_url = self._result_url
        self.keys = set(keys) if keys else None
        self.key_regions = {k: v.lower() for k, v in (key_regions or {}).items()}
        bad = sorted(set(self.key_regions.values()) - set(DS_REGIONS))
        if bad:
            raise ValueError(f"key_regions values must be one of {', '.join(DS_REGIONS)}; got {', '.join(bad)}")
        self.secret = hashlib.sha256(f"wanlab-sim:{settings.seed}:{uuid.uuid4()}".encode()).digest()
        self.public_url = ""  # set by SimServer once bound
        self.log: Callable[[str], None] = lambda msg: None
        self.ds = DashScopeRoutes(self)
        self.ws = WaveSpeedRoutes(self)

    # -- helpers used by the host routes --
    def base_url(self, request: Request | None) -> str:
        if request is not None:
            host = request.headers.get("host")
            if host:
                return f"{request.url.scheme}://{host}"
        return self.public_url

    def own_hosts(self, request: Request) -> frozenset[str]:
        hosts = {request.headers.get("host", "")}
        if self.public_url:
            hosts.add(self.public_url.split("://", 1)[1])
        port = request.url.port
        if port:
            hosts |= {f"127.0.0.1:{port}", f"localhost:{port}"}
        return frozenset(h for h in hosts if h)

    def resolver(self, request: Request, strict: bool | None = None) -> Resolver:
        return Resolver(
            self.store,
            self.own_hosts(request),
            self.settings.strict_media if strict is None else strict,
            self.engine.clock.sim(),
        )

    def sign(self, name: str, expires: int) -> str:
        return hmac.new(self.secret, f"{name}\n{expires}".encode(), hashlib.sha256).hexdigest()[:40]

    def _result_url(self, task: Task) -> str:
        base = task.extra.get("base") or self.public_url
        name = task.video_name or ""
        if task.host == "dashscope":
            expires = int((task.end_wall or self.engine.clock.wall()) + self.settings.ttl_s)
            return (
                f"{base}/_files/{name}?Expires={expires}&OSSAccessKeyId=LTAI5tSimWanlabOffline"
                f"&Signature={self.sign(name, expires)}"
            )
        return f"{base}/_files/{name}"

    def auth(self, request: Request) -> tuple[str | None, str | None]:
        """(key, None) or (None, why) with why in {"missing", "invalid"}."""
        value = request.headers.get("authorization", "").strip()
        key = value[6:].strip() if value[:6].lower() == "bearer" else value
        if not key:
            return None, "missing"
        if self.keys is not None and key not in self.keys:
            return None, "invalid"
        return key, None

    # -- routing --
    def classify(self, method: str, path: str) -> Routed:
        m = _DS.match(path)
        if m:
            region = m.group(1) or "singapore"
            sub = m.group(2)
            p = {"region": region}
            if method == "POST" and re.fullmatch(r"/services/aigc/[\w.-]+/video-synthesis/?", sub):
                return Routed("submit", "dashscope", self.ds.tasks.submit, p)
            t = re.fullmatch(r"/tasks/([^/]+)/cancel/?", sub)
            if t and method == "POST":
                return Routed("cancel", "dashscope", self.ds.tasks.cancel, p | {"task_id": t.group(1)})
            t = re.fullmatch(r"/tasks/([^/]+)/?", sub)
            if t and method == "GET":
                return Routed("query", "dashscope", self.ds.tasks.query, p | {"task_id": t.group(1)})
            if re.fullmatch(r"/tasks/?", sub) and method == "GET":
                return Routed("list", "dashscope", self.ds.tasks.list, p)
            if re.fullmatch(r"/uploads/?", sub) and method == "GET":
                return Routed("upload", "dashscope", self.ds.uploads.get_policy, p)
            return Routed("other", "dashscope", None, p)
        if path.startswith("/_oss"):
            if method == "POST":
                return Routed("upload", "dashscope", self.ds.uploads.oss_post, {})
            return Routed("other", "dashscope", None, {})
        if path.startswith("/api/v3/"):
            sub = path[len("/api/v3/") :]
            if method == "POST" and sub.rstrip("/") == "media/uploads":
                return Routed("upload", "wavespeed", self.ws.create_upload, {})
            if method == "POST" and sub.rstrip("/") == "media/upload/binary":
                return Routed("upload", "wavespeed", self.ws.upload_binary, {})
            t = re.fullmatch(r"predictions/([^/]+)(/result)?/?", sub)
            if t and method == "GET":
                return Routed("query", "wavespeed", self.ws.result, {"task_id": t.group(1)})
            if t and method == "DELETE" and not t.group(2):
                return Routed("cancel", "wavespeed", self.ws.delete, {"task_id": t.group(1)})
            if method == "POST" and not sub.startswith(("predictions", "media")):
                return Routed("submit", "wavespeed", self.ws.submit, {"model": sub.strip("/")})
            return Routed("other", "wavespeed", None, {})
        if path.startswith("/_ws_upload/"):
            if method == "PUT":
                return Routed("upload", "wavespeed", self.ws.put_upload, {"token": path.split("/", 2)[2]})
            return Routed("other", "wavespeed", None, {})
        if path.startswith(("/_files/", "/_media/")) and method in ("GET", "HEAD"):
            space, name = path[1:].split("/", 1)
            return Routed(
                "download",
                "files",
                files_routes.serve,
                {"space": "files" if space == "_files" else "media", "name": name},
            )
        if path.startswith("/_sim/"):
            return Routed("sim", "sim", control.sim_endpoint, {"what": path[len("/_sim/") :].strip("/")})
        return Routed("other", "other", None, {})

    # -- ASGI --
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.engine.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        routed = self.classify(scope["method"], scope["path"])
        if routed.route != "sim":
            self.engine.requests[routed.route] += 1
        fault = None
        if routed.route not in ("sim", "other"):
            kinds = (
                HTTP_KINDS
                + (("accept_reset",) if routed.route == "submit" else ())
                + (("truncate",) if routed.route == "download" else ())
            )
            fault = self.faults.pick(routed.route, kinds)
        transport = _transport_of(send)
        if fault is not None:
            self.log(f"fault {routed.route}:{fault.kind} on {scope['method']} {scope['path']}")
            kind = fault.kind
            if kind == "reset":
                await _drain(receive)
                await _drop(transport)
                return
            if kind in ("429", "500", "502", "503"):
                headers = None
                if kind == "429":
                    headers = {"Retry-After": retry_after_value(fault.arg, self.engine.clock.wall())}
                await host_error(routed.host, int(kind), headers)(scope, receive, send)
                return
            if kind == "accept_reset":

                async def swallow(message) -> None:
                    return None

                await self._dispatch(routed, scope, receive, swallow)
                await _drop(transport)
                return
            if kind == "slow":
                send = _delayed(send, fault.float_arg(1.0))
            if kind == "truncate":
                send = _truncating(send, fault.float_arg(0.5), transport)
        await self._dispatch(routed, scope, receive, send)

    async def _dispatch(self, routed: Routed, scope, receive, send) -> None:
        request = Request(scope, receive)
        if routed.handler is None:
            response = not_found(routed.host, scope["path"])
        else:
            response = await routed.handler(self, request, routed.params)
        await response(scope, receive, send)


# ---- connection-level faults ---------------------------------------------------------------------
def _transport_of(send) -> asyncio.Transport | None:
    """uvicorn's `send` is a bound method of its per-request cycle, which holds the connection's
    transport: the only way an ASGI app can drop a connection without answering."""
    cycle = getattr(send, "__self__", None)
    return getattr(cycle, "transport", None)


async def _drop(transport: asyncio.Transport | None) -> None:
    if transport is None:
        # No socket under us (an in-process ASGI transport): the closest equivalent is an exception.
        raise ConnectionResetError("wanlab sim: connection reset (fault)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:  # linger 0: the kernel answers with RST, not FIN — a real reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, AttributeError):
            pass
    transport.abort()
    # abort() schedules connection_lost; let it run so uvicorn sees a disconnect, not a silent app
    for _ in range(3):
        await asyncio.sleep(0)


async def _drain(receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


def _delayed(send, seconds: float):
    state = {"waited": False}

    async def wrapped(message) -> None:
        if not state["waited"]:
            state["waited"] = True
            await asyncio.sleep(seconds)
        await send(message)

    return wrapped


class _TruncationState(TypedDict):
    total: int | None  # the announced Content-Length, once the response starts
    sent: int
    cut: bool


def _truncating(send, fraction: float, transport):
    """Announce the full Content-Length, send `fraction` of the body, then cut the connection."""
    state: _TruncationState = {"total": None, "sent": 0, "cut": False}

    async def wrapped(message) -> None:
        if state["cut"]:
            return
        if message["type"] == "http.response.start":
            for k, v in message.get("headers", []):
                if k.lower() == b"content-length":
                    state["total"] = int(v)
            await send(message)
            return
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            total = state["total"]
            if total is None or total == 0:
                await send(message)
                return
            allowed = max(0, int(total * fraction) - state["sent"])
            if len(body) <= allowed and message.get("more_body"):
                state["sent"] += len(body)
                await send(message)
                return
            chunk = body[:allowed]
            state["sent"] += len(chunk)
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            state["cut"] = True
            await asyncio.sleep(0.01)  # let the partial body leave before the reset
            if transport is None:
                raise ConnectionResetError("wanlab sim: download truncated (fault)")
            transport.abort()
            for _ in range(3):
                await asyncio.sleep(0)
            return
        await send(message)

    return wrapped
