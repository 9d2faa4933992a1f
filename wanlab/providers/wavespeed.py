"""WaveSpeed's protocol, sans-I/O: a flat JSON body posted to the model's path, predictions polled by id,
every answer wrapped in `{"code", "message", "data"}`."""

from __future__ import annotations

from typing import Any

from ..catalog import ModelSpec, output_size
from ..errors import ApiError
from ..inputs import Media
from ..requests import Request
from .base import HttpRequest, HttpResponse, ListedTask, Status, TaskSnapshot, UploadFlow, typed_error

BASE_URL = "https://api.wavespeed.ai"
_STATUSES = {
    "created": Status.PENDING,
    "processing": Status.RUNNING,
    "completed": Status.SUCCEEDED,
    "failed": Status.FAILED,
    "timeout": Status.FAILED,
    "cancelled": Status.CANCELED,
    "canceled": Status.CANCELED,
    "deleted": Status.CANCELED,
}
# WaveSpeed task codes (data.code) → names that read like DashScope's, so one log column serves both.
TASK_CODES = {
    1200: "ContentModeration",
    1400: "MissingParameter",
    1401: "InvalidParameter",
    1402: "MediaNotReachable",
    1403: "TaskFailed",
    1405: "TaskFailed",
    5000: "InternalError",
    5003: "ServiceUnavailable",
    5004: "Timeout",
}


class WaveSpeed:
    name = "wavespeed"
    region = ""
    # DELETE removes a prediction and its outputs; no doc says it stops a running one or its billing,
    # so wanlab cancels WaveSpeed jobs locally only.
    supports_cancel = False
    supports_list = False

    def __init__(self, base_url: str | None = None):
        self.base_url = (base_url or BASE_URL).rstrip("/")

    def describe(self) -> str:
        return f"WaveSpeed ({self.base_url})"

    def __repr__(self) -> str:
        return f"WaveSpeed(base_url={self.base_url!r})"

    def submit(self, spec: ModelSpec, req: Request, urls: list[str]) -> HttpRequest:
        roles = [role for role, _ in req.media()]
        if len(urls) != len(roles):
            raise ValueError(f"{len(urls)} URLs for {len(roles)} media inputs")
        body: dict[str, Any] = {
            "prompt": req.wire_prompt(),
            "duration": req.duration,
            "seed": -1 if req.seed is None else req.seed,
        }
        if req.negative_prompt:
            body["negative_prompt"] = req.negative_prompt
        if spec.version == "2.6" and req.mode == "t2v":
            w, h = output_size(req.resolution, getattr(req, "ratio", None))
            body["size"] = f"{w}*{h}"
        else:
            body["resolution"] = req.resolution.lower()
        ratio = getattr(req, "ratio", None)
        if ratio and req.mode in ("t2v", "grid9", "ref2v", "edit"):
            body["aspect_ratio"] = ratio
        pairs = list(zip(roles, urls, strict=True))
        field = {
            "first_frame": "image",
            "last_frame": "last_image",
            "audio_url": "audio",
            "driving_audio": "audio",
            "video": "video",
            "first_clip": "video",  # alibaba/wan-2.7/video-extend takes the clip as `video`
        }
        for role, url in pairs:
            if role in field:
                body[field[role]] = url
        if req.mode in ("grid9", "ref2v"):
            body["reference_images"] = [u for r, u in pairs if r == "reference_image"]
            videos = [u for r, u in pairs if r == "reference_video"]
            if videos:
                body["videos"] = videos
            first = [u for r, u in pairs if r == "first_frame"]
            if first:
                body["image"] = first[0]
        elif req.mode == "edit":
            images = [u for r, u in pairs if r == "reference_image"]
            if images:
                body["images"] = images
        extra = dict(req.extra)
        if "prompt_extend" in extra:
            body["enable_prompt_expansion"] = bool(extra.pop("prompt_extend"))
        body.update(extra)
        return HttpRequest(
            "POST",
            f"{self.base_url}/api/v3/{spec.id}",
            "submit",
            headers={"Content-Type": "application/json"},
            json=body,
        )

    def parse_submit(self, resp: HttpResponse) -> TaskSnapshot:
        return self._snapshot(resp, "submit", "")

    def query(self, task_id: str) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}/api/v3/predictions/{task_id}/result", "query")

    def parse_query(self, resp: HttpResponse, task_id: str) -> TaskSnapshot:
        return self._snapshot(resp, "query", task_id)

    def cancel(self, task_id: str) -> HttpRequest | None:
        return None

    def parse_cancel(self, resp: HttpResponse) -> None:
        return None

    def list_tasks(self, model: str | None, page_no: int = 1, status: Status | None = None) -> HttpRequest | None:
        return None

    def parse_list(self, resp: HttpResponse) -> tuple[list[ListedTask], bool]:
        return [], False

    def upload(self, media: Media, model: str) -> UploadFlow:
        """POST /media/uploads for a presigned PUT (sent with exactly its headers and no API key);
        yields the download URL."""
        assert media.data is not None
        resp = yield HttpRequest(
            "POST",
            f"{self.base_url}/api/v3/media/uploads",
            "upload",
            headers={"Content-Type": "application/json"},
            json={"filename": media.name or "input", "size": len(media.data), "content_type": media.mime},
        )
        body = resp.json()
        data = body.get("data") if isinstance(body, dict) else None
        if resp.status != 200 or not isinstance(data, dict) or "upload" not in data:
            raise self.error(resp, "upload")
        put = data["upload"]
        resp = yield HttpRequest(
            put.get("method", "PUT"),
            put["url"],
            "upload",
            headers=dict(put.get("headers") or {}),
            content=media.data,
            auth=False,
        )
        if resp.status not in (200, 201, 204):
            raise ApiError(
                f"upload of {media.describe()} refused: {resp.body[:200]!r}",
                host="wavespeed-upload",
                status=resp.status,
            )
        return data["download_url"]

    def _snapshot(self, resp: HttpResponse, route: str, task_id: str) -> TaskSnapshot:
        body = resp.json()
        data = body.get("data") if isinstance(body, dict) else None
        if resp.status != 200 or not isinstance(data, dict):
            raise self.error(resp, route)
        raw_status = str(data.get("status", "")).lower()
        status = _STATUSES.get(raw_status, Status.UNKNOWN)
        outputs = data.get("outputs") or []
        code = data.get("code")
        error = data.get("error") or ""
        if data.get("has_nsfw_contents") and any(data["has_nsfw_contents"]) and status is Status.FAILED:
            code = code or 1200
        usage: dict[str, Any] = {}
        timings = data.get("timings") or {}
        if timings.get("inference") is not None:
            usage["inference_ms"] = timings["inference"]
        error_code, error_message = "", ""
        if status is not Status.SUCCEEDED:
            error_message = str(error)
            if code not in (None, "", 200, "200"):
                error_code = TASK_CODES.get(code, str(code)) if isinstance(code, int) else str(code)
        return TaskSnapshot(
            task_id=data.get("id") or task_id,
            status=status,
            host_status=raw_status,
            request_id=str(data.get("id") or ""),
            submit_time=data.get("created_at"),
            video_url=outputs[0] if outputs and status is Status.SUCCEEDED else None,
            usage=usage,
            error_code=error_code,
            error_message=error_message,
            raw=body,
        )

    def error(self, resp: HttpResponse, route: str) -> ApiError:
        body = resp.json()
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or resp.body[:200].decode("utf-8", "replace") or f"HTTP {resp.status}")
        if resp.status == 401:
            message += (
                " WaveSpeed answers 401 for a wrong key and for an account that was never topped up; "
                "check WAVESPEED_API_KEY and the account balance."
            )
        elif resp.status == 404 and route == "submit":
            message += " The model path may be stale; see wanlab.catalog.models(host='wavespeed')."
        code = str(body.get("code") or "")
        return typed_error(
            resp.status,
            message,
            host="wavespeed",
            code=code if code != str(resp.status) else "",
            retry_after=resp.header("Retry-After"),
        )
