"""WaveSpeed as docs/WIRE.md §4 documents it: model-path submit with a flat body, the
prediction result (two paths), DELETE, both upload flows, and the {"code","message","data"} envelope."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from ..catalog import CATALOG, ModelSpec
from .build import FieldReader, Invalid, Parsed, build_task, settle_duration, size_resolution
from .engine import RateWindow, Task, key_fingerprint
from .errors import SIGNATURE_MISMATCH, oss_error, ws_envelope, ws_error
from .jsonbody import loads_object
from .multipart import parse_multipart

if TYPE_CHECKING:
    from .app import SimApp

STATUS = {
    "PENDING": "created",
    "RUNNING": "processing",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELED": "cancelled",
    "DELETED": "deleted",
}
MEDIA_UNREACHABLE = ("1402", "Failed to download the input media: the URL is not reachable.")
CODE_MESSAGES = {
    1200: "The input or output was flagged by the content moderation system.",
    1400: "Missing required parameter.",
    1401: "Invalid parameter.",
    1402: "Failed to download the input media: the URL is not reachable.",
    1403: "Task failed.",
    1405: "Task failed.",
    5000: "Internal server error.",
    5003: "Service unavailable.",
    5004: "Task timed out.",
}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


class WaveSpeedRoutes:
    def __init__(self, app: SimApp):
        self.app = app
        self.submit_rate = RateWindow(app.settings.wavespeed_submits_per_min, 60.0)
        self.tickets: dict[str, dict] = {}

    def _key(self, request: Request) -> tuple[str | None, Response | None]:
        key, why = self.app.auth(request)
        if why:
            return None, ws_error(401, "Unauthorized: invalid or missing API key")
        return key, None

    # ---- submit ----
    async def submit(self, app: SimApp, request: Request, params: dict) -> Response:
        key, denied = self._key(request)
        if denied:
            return denied
        assert key is not None  # _key answers (key, None) or (None, refusal)
        fp = key_fingerprint(key)
        spec = CATALOG.get(params["model"])
        if spec is None or spec.host != "wavespeed":
            return ws_error(404, f"Model {params['model']} not found")
        if not self.submit_rate.allow(fp):
            return ws_error(
                429,
                "Too many requests: over the per-minute limit of your account level",
                {"Retry-After": str(int(app.settings.rate_limit_retry_after_s))},
            )
        try:
            body = loads_object(await request.body())
        except ValueError:
            return ws_error(400, "Invalid JSON body")
        try:
            parsed = parse_request(spec, body)
        except Invalid as exc:
            return ws_error(400, str(exc))
        except (TypeError, ValueError, AttributeError, OverflowError):
            # Parsing only reads the client's body: a type it did not expect is the client's 400,
            # never the sim's 500 (the explicit checks name the field when they can).
            return ws_error(400, CODE_MESSAGES[1401])
        task = build_task(
            app.engine,
            parsed,
            app.resolver(request),
            host="wavespeed",
            key_fp=fp,
            region="",
            label=app.settings.label,
            fps=app.settings.fps,
            unreachable=MEDIA_UNREACHABLE,
        )
        task.extra.update(base=app.base_url(request), webhook=request.query_params.get("webhook"))
        app.engine.start(task)
        if body.get("enable_sync_mode"):
            # the host holds the request until the task ends, up to 90 s [doc]
            deadline = asyncio.get_running_loop().time() + 90 * app.settings.time_scale
            while (
                task.status not in ("SUCCEEDED", "FAILED", "CANCELED", "DELETED")
                and asyncio.get_running_loop().time() < deadline
            ):
                await asyncio.sleep(min(0.05, 90 * app.settings.time_scale))
            data = self.snapshot(task)
            if task.status in ("PENDING", "RUNNING"):
                data["code"] = 5004
                data["error"] = "Sync mode timed out after 90 seconds, please query the result later."
            return ws_envelope(data)
        return ws_envelope(self.snapshot(task))

    def snapshot(self, task: Task) -> dict:
        base = task.extra.get("base") or self.app.public_url
        data: dict[str, Any] = {
            "id": task.id,
            "model": task.model.id,
            "outputs": [],
            "urls": {"get": f"{base}/api/v3/predictions/{task.id}/result"},
            "has_nsfw_contents": [],
            "status": STATUS.get(task.status, task.status.lower()),
            "created_at": _iso(task.submit_wall),
            "error": "",
            "timings": {"inference": task.inference_ms if task.status == "SUCCEEDED" else 0},
        }
        if task.status == "SUCCEEDED":
            data["outputs"] = [task.video_url]
            data["has_nsfw_contents"] = [False]
        elif task.status == "FAILED":
            code, msg = self.failure(task)
            data["code"] = code
            data["error"] = msg
            if task.moderation:
                data["has_nsfw_contents"] = [True]
        return data

    def failure(self, task: Task) -> tuple[int, str]:
        if task.moderation:
            return 1200, CODE_MESSAGES[1200]
        if "fault_fail" in task.extra:
            arg = task.extra["fault_fail"]
            code = int(arg) if arg.isdigit() else 5000
            return code, CODE_MESSAGES.get(code, CODE_MESSAGES[5000])
        if task.fail:
            code_s, msg = task.fail
            if code_s.isdigit():
                return int(code_s), msg
            return (1400 if msg.startswith("Field required") else 1401), msg
        return 5000, CODE_MESSAGES[5000]

    # ---- result / delete ----
    def _own_task(self, app: SimApp, request: Request, params: dict) -> tuple[Task | None, Response | None]:
        """The caller's prediction, or the answer to send instead (bad key, unknown id)."""
        key, denied = self._key(request)
        if denied:
            return None, denied
        assert key is not None  # _key answers (key, None) or (None, refusal)
        task = app.engine.get(params["task_id"], "wavespeed", key_fingerprint(key))
        if task is None:
            return None, ws_error(404, "Prediction not found")  # [unverified] body; the status is the docs' 404
        return task, None

    async def result(self, app: SimApp, request: Request, params: dict) -> Response:
        task, denied = self._own_task(app, request, params)
        if denied:
            return denied
        assert task is not None  # _own_task answers (task, None) or (None, refusal)
        return ws_envelope(self.snapshot(task))

    async def delete(self, app: SimApp, request: Request, params: dict) -> Response:
        task, denied = self._own_task(app, request, params)
        if denied:
            return denied
        assert task is not None  # _own_task answers (task, None) or (None, refusal)
        app.engine.cancel(task, "DELETED")
        return ws_envelope({"id": task.id, "status": "deleted"})

    # ---- uploads ----
    async def create_upload(self, app: SimApp, request: Request, params: dict) -> Response:
        key, denied = self._key(request)
        if denied:
            return denied
        try:
            body = loads_object(await request.body())
            filename, size = body["filename"], body.get("size", 0)
            if (
                not isinstance(filename, str)
                or not filename
                or isinstance(size, bool)
                or not isinstance(size, int)
                or size < 0
            ):
                raise ValueError
        except (ValueError, KeyError):
            return ws_error(400, "filename and size are required")
        if size > app.settings.max_upload_mb * 1024 * 1024:
            return ws_error(400, f"File size exceeds the {int(app.settings.max_upload_mb)} MB limit.")
        ctype = body.get("content_type") or "application/octet-stream"
        if not isinstance(ctype, str):
            return ws_error(400, "content_type must be a string")
        token = uuid.uuid4().hex
        name = f"{token[:12]}/{filename}"
        base = app.base_url(request)
        expires = int(app.engine.clock.wall() + 900)
        self.tickets[token] = {"name": name, "size": size, "content_type": ctype, "expires": expires}
        url = (
            f"{base}/_ws_upload/{token}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900"
            f"&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature={app.sign(token, expires)}"
        )
        return ws_envelope(
            {
                "download_url": f"{base}/_media/{quote(name)}",
                "upload": {"method": "PUT", "url": url, "headers": {"Content-Type": ctype}},
                "expires_at": _iso(expires),
            }
        )

    async def put_upload(self, app: SimApp, request: Request, params: dict) -> Response:
        token = params["token"]
        ticket = self.tickets.get(token)
        if request.headers.get("authorization"):
            # S3 refuses a presigned URL that also carries an Authorization header
            return oss_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                "query parameter, Signature query string parameter or the "
                "Authorization header should be specified",
            )
        if ticket is None or request.query_params.get("X-Amz-Signature") != app.sign(token, ticket["expires"]):
            return oss_error(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)
        if app.engine.clock.wall() > ticket["expires"]:
            return oss_error(403, "AccessDenied", "Request has expired")
        if request.headers.get("content-type", "") != ticket["content_type"]:
            return oss_error(
                403, "SignatureDoesNotMatch", f"{SIGNATURE_MISMATCH} (Content-Type differs from the signed one)"
            )
        data = await request.body()
        if ticket["size"] and len(data) != ticket["size"]:
            return oss_error(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            )
        app.store.put(
            "media",
            ticket["name"],
            data,
            ticket["content_type"],
            app.engine.clock.wall(),
            app.engine.clock.sim(),
            7 * 24 * 3600,
        )
        self.tickets.pop(token, None)
        return Response(b"", status_code=200, headers={"ETag": f'"{uuid.uuid4().hex}"'})

    async def upload_binary(self, app: SimApp, request: Request, params: dict) -> Response:
        key, denied = self._key(request)
        if denied:
            return denied
        ctype = request.headers.get("content-type", "")
        try:
            _, files = parse_multipart(await request.body(), ctype)
            filename, data, ftype = files["file"]
        except (ValueError, KeyError):
            return ws_error(400, "A multipart field 'file' is required")
        name = f"{uuid.uuid4().hex[:12]}/{filename or 'upload'}"
        app.store.put("media", name, data, ftype, app.engine.clock.wall(), app.engine.clock.sim(), 7 * 24 * 3600)
        kind = ftype.split("/")[0] if "/" in ftype else "file"
        return ws_envelope(
            {
                "type": kind,
                "download_url": f"{app.base_url(request)}/_media/{quote(name)}",
                "filename": filename,
                "size": len(data),
            }
        )


_fields = FieldReader(lambda name, expected: f"{name} must be {expected}")
_integer, _url, _urls = _fields.integer, _fields.url, _fields.urls


def parse_request(spec: ModelSpec, body: dict) -> Parsed:
    raw_prompt = body.get("prompt")
    prompt = raw_prompt if isinstance(raw_prompt, str) else ""
    seed = _integer(body.get("seed", -1), "seed")
    if seed != -1 and not 0 <= seed <= 2147483647:
        raise Invalid("seed must be -1 (random) or within [0, 2147483647]")
    size = None
    if body.get("size"):
        resolution, size = size_resolution(str(body["size"]), spec)
    else:
        resolution = str(body.get("resolution", "720p")).upper()
        if resolution not in spec.resolutions:
            raise Invalid(
                f"resolution {body.get('resolution')!r} is not supported; use one of "
                f"{', '.join(r.lower() for r in spec.resolutions)}"
            )
    ratio = body.get("aspect_ratio")
    if ratio is not None and (not isinstance(ratio, str) or ratio not in spec.ratios):
        raise Invalid(f"aspect_ratio {ratio!r} is not supported; use one of {', '.join(spec.ratios)}")
    duration = body.get("duration")
    if duration is not None:
        duration = _integer(duration, "duration")
    parsed = Parsed(
        model=spec,
        mode=spec.modes[0],
        prompt=prompt,
        resolution=resolution,
        ratio=ratio,
        duration=duration,
        seed=None if seed == -1 else seed,
        size=size,
    )
    path = spec.id.rsplit("/", 1)[-1]
    has_video = False

    def need(field: str) -> NoReturn:
        raise Invalid(f"{field} is required")

    if path == "text-to-video":
        if not prompt:
            need("prompt")
    elif path.startswith("image-to-video") or path.startswith("i2v"):
        image, last = _url(body.get("image"), "image"), _url(body.get("last_image"), "last_image")
        if not image:
            need("image")
        parsed.images = [image] + ([last] if last else [])
        parsed.mode = "flf2v" if last else "i2v"
        parsed.aspect_from, parsed.ratio = ("image0" if size is None else None), None
    elif path.startswith("t2v"):
        if not prompt:
            need("prompt")
    elif path == "reference-to-video":
        imgs = _urls(body.get("reference_images"), "reference_images") or _urls(body.get("images"), "images")
        vids = _urls(body.get("videos"), "videos")
        if not imgs and not vids:
            need("reference_images or videos")
        if len(imgs) + len(vids) > spec.max_refs:
            raise Invalid(f"at most {spec.max_refs} reference images and videos in total")
        has_video = bool(vids)
        grid = len(imgs) == 1 and not vids and "shot 1" in prompt.lower()
        parsed.mode, parsed.images, parsed.videos = ("grid9" if grid else "ref2v"), imgs, vids
    elif path == "video-edit":
        video = _url(body.get("video"), "video")
        if not video:
            need("video")
        imgs = _urls(body.get("images"), "images")
        if len(imgs) > spec.max_edit_images:
            raise Invalid(f"at most {spec.max_edit_images} images")
        parsed.mode, parsed.videos, parsed.images = "edit", [video], imgs
        parsed.aspect_from = "video0" if ratio is None else None
        parsed.edit_whole = duration in (None, 0)
        has_video = True
    elif path == "video-extend":
        # `duration` is the total length, clip included; the output follows the clip's aspect
        video = _url(body.get("video"), "video")
        if not video:
            need("video")
        if not prompt:
            need("prompt")
        parsed.mode, parsed.videos, parsed.aspect_from, parsed.ratio = "extend", [video], "video0", None
    return settle_duration(
        parsed,
        has_video,
        lambda model_id, duration, allowed: (
            f"duration {duration} is not supported by {model_id}; use one of {', '.join(str(d) for d in allowed)}"
        ),
    )
