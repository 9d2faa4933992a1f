"""DashScope (Alibaba Cloud Model Studio) video-synthesis protocol, sans-I/O.

Two body shapes share one endpoint: WAN 2.7's `input.media` list, and the legacy fields of 2.6 and
older (`img_url`, `first_frame_url`/`last_frame_url`, `reference_urls`, `parameters.size`).
"""

from __future__ import annotations

from typing import Any

from ..catalog import REGIONS, ModelSpec, output_size
from ..errors import ApiError, ConfigError
from ..inputs import Media
from ..requests import Request
from .base import HttpRequest, HttpResponse, ListedTask, Status, TaskSnapshot, UploadFlow, typed_error

SUBMIT_PATH = "/services/aigc/video-generation/video-synthesis"
_STATUSES = {s.value: s for s in Status}


class DashScope:
    name = "dashscope"
    supports_cancel = True
    supports_list = True

    def __init__(self, region: str = "singapore", base_url: str | None = None):
        if region not in REGIONS:
            raise ConfigError(
                f"region={region!r} is not a DashScope region; use one of {', '.join(REGIONS)} "
                f"(keys are bound to the region whose console issued them)"
            )
        self.region = region
        self.base_url = (base_url or REGIONS[region]).rstrip("/")

    def describe(self) -> str:
        return f"DashScope {self.region} ({self.base_url})"

    def __repr__(self) -> str:
        return f"DashScope(region={self.region!r}, base_url={self.base_url!r})"

    # -- submit ----------------------------------------------------------------------------------
    def submit(self, spec: ModelSpec, req: Request, urls: list[str]) -> HttpRequest:
        """`urls` are the request's media (req.media() order) as URLs the host can fetch."""
        roles = [role for role, _ in req.media()]
        if len(urls) != len(roles):
            raise ValueError(f"{len(urls)} URLs for {len(roles)} media inputs")
        body_input: dict[str, Any] = {"prompt": req.wire_prompt()}
        if req.negative_prompt:
            body_input["negative_prompt"] = req.negative_prompt
        params: dict[str, Any] = {"duration": req.duration}
        if req.seed is not None:
            params["seed"] = req.seed
        if spec.protocol == "media":
            media = [{"type": role, "url": url} for role, url in zip(roles, urls, strict=True) if role != "audio_url"]
            if media:
                body_input["media"] = media
            for role, url in zip(roles, urls, strict=True):
                if role == "audio_url":
                    body_input["audio_url"] = url
            params["resolution"] = req.resolution
            ratio = getattr(req, "ratio", None)
            if ratio and req.mode in ("t2v", "grid9", "ref2v", "edit"):
                params["ratio"] = ratio
            if req.mode == "edit":
                params["audio_setting"] = getattr(req, "audio_setting", "auto")
        else:
            self._legacy_input(req, roles, urls, body_input, params)
        for key, value in req.extra.items():
            if key.startswith("input."):
                body_input[key[len("input.") :]] = value
            else:
                params[key] = value
        headers = {"Content-Type": "application/json", "X-DashScope-Async": "enable"}
        if any(u.startswith("oss://") for u in urls):
            headers["X-DashScope-OssResourceResolve"] = "enable"
        return HttpRequest(
            "POST",
            self.base_url + SUBMIT_PATH,
            "submit",
            headers=headers,
            json={"model": spec.id, "input": body_input, "parameters": params},
        )

    @staticmethod
    def _legacy_input(req: Request, roles: list[str], urls: list[str], body_input: dict, params: dict) -> None:
        by_role: dict[str, list[str]] = {}
        for role, url in zip(roles, urls, strict=True):
            by_role.setdefault(role, []).append(url)
        if req.mode == "i2v":
            body_input["img_url"] = by_role["first_frame"][0]
        elif req.mode == "flf2v":
            body_input["first_frame_url"] = by_role["first_frame"][0]
            body_input["last_frame_url"] = by_role["last_frame"][0]
        elif req.mode == "ref2v":
            body_input["reference_urls"] = by_role.get("reference_video", []) + by_role.get("reference_image", [])
        if "audio_url" in by_role or "driving_audio" in by_role:
            body_input["audio_url"] = (by_role.get("audio_url") or by_role["driving_audio"])[0]
        if req.mode in ("t2v", "ref2v"):
            w, h = output_size(req.resolution, getattr(req, "ratio", None))
            params["size"] = f"{w}*{h}"
        else:
            params["resolution"] = req.resolution

    def parse_submit(self, resp: HttpResponse) -> TaskSnapshot:
        body = resp.json()
        if resp.status != 200 or not isinstance(body, dict) or "output" not in body:
            raise self.error(resp, "submit")
        return self._snapshot(body)

    # -- query / cancel / list -------------------------------------------------------------------
    def query(self, task_id: str) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}/tasks/{task_id}", "query")

    def parse_query(self, resp: HttpResponse, task_id: str) -> TaskSnapshot:
        body = resp.json()
        if resp.status != 200 or not isinstance(body, dict) or "output" not in body:
            raise self.error(resp, "query")
        return self._snapshot(body, task_id)

    def cancel(self, task_id: str) -> HttpRequest:
        return HttpRequest("POST", f"{self.base_url}/tasks/{task_id}/cancel", "cancel")

    def parse_cancel(self, resp: HttpResponse) -> None:
        if resp.status != 200:
            raise self.error(resp, "cancel")

    def list_tasks(self, model: str | None, page_no: int = 1, status: Status | None = None) -> HttpRequest:
        # No start/end: the host's default window is the last 24 h, and the time zone of those
        # parameters is not documented for every region; wanlab filters on gmt_create (epoch ms).
        params: dict[str, str | int] = {"page_no": page_no, "page_size": 100}
        if model:
            params["model_name"] = model
        if status is not None:
            params["status"] = status.value
        return HttpRequest("GET", f"{self.base_url}/tasks", "list", params=params)

    def parse_list(self, resp: HttpResponse) -> tuple[list[ListedTask], bool]:
        body = resp.json()
        if resp.status != 200 or not isinstance(body, dict):
            raise self.error(resp, "list")
        out = []
        for item in body.get("data") or []:
            created = item.get("gmt_create")
            out.append(
                ListedTask(
                    task_id=item.get("task_id", ""),
                    status=_STATUSES.get(str(item.get("status", "")).upper(), Status.UNKNOWN),
                    model=item.get("model_name", ""),
                    request_id=item.get("request_id", ""),
                    created_ms=int(created) if str(created or "").isdigit() else None,
                )
            )
        more = int(body.get("page_no") or 1) < int(body.get("total_page") or 1)
        return out, more

    # -- upload ----------------------------------------------------------------------------------
    def upload(self, media: Media, model: str) -> UploadFlow:
        """getPolicy, then a form POST to the OSS host it names (no API key there); yields `oss://key`,
        valid 48 h."""
        resp = yield HttpRequest(
            "GET", f"{self.base_url}/uploads", "upload", params={"action": "getPolicy", "model": model}
        )
        body = resp.json()
        policy = (body.get("data") or body.get("output")) if isinstance(body, dict) else None
        if resp.status != 200 or not isinstance(policy, dict):
            raise self.error(resp, "upload")
        key = f"{policy['upload_dir'].rstrip('/')}/{media.sha256[:16]}-{media.name or 'input'}"
        form = {
            "OSSAccessKeyId": policy["oss_access_key_id"],
            "Signature": policy["signature"],
            "policy": policy["policy"],
            "key": key,
            "x-oss-object-acl": policy.get("x_oss_object_acl", "private"),
            "x-oss-forbid-overwrite": policy.get("x_oss_forbid_overwrite", "true"),
            "success_action_status": "200",
        }
        assert media.data is not None
        resp = yield HttpRequest(
            "POST",
            policy["upload_host"],
            "upload",
            data=form,
            files={"file": (media.name or "input", media.data, media.mime)},
            auth=False,
        )
        if resp.status not in (200, 204):
            raise ApiError(
                f"OSS upload of {media.describe()} refused: {resp.body[:200]!r}",
                host="dashscope-oss",
                status=resp.status,
            )
        return f"oss://{key}"

    # -- answers ---------------------------------------------------------------------------------
    def _snapshot(self, body: dict, task_id: str = "") -> TaskSnapshot:
        out = body.get("output") or {}
        raw_status = str(out.get("task_status", "UNKNOWN")).upper()
        status = _STATUSES.get(raw_status, Status.UNKNOWN)
        seed = out.get("seed")
        return TaskSnapshot(
            task_id=out.get("task_id") or task_id,
            status=status,
            host_status=raw_status,
            request_id=body.get("request_id", ""),
            submit_time=out.get("submit_time"),
            scheduled_time=out.get("scheduled_time"),
            end_time=out.get("end_time"),
            video_url=out.get("video_url"),
            usage=body.get("usage") or {},
            error_code=out.get("code", "") or "",
            error_message=out.get("message", "") or "",
            seed=int(seed) if isinstance(seed, int) else None,
            raw=body,
        )

    def error(self, resp: HttpResponse, route: str) -> ApiError:
        body = resp.json()
        body = body if isinstance(body, dict) else {}
        code = str(body.get("code") or "")
        message = str(body.get("message") or resp.body[:200].decode("utf-8", "replace") or f"HTTP {resp.status}")
        if resp.status == 401 or code == "InvalidApiKey":
            message = (
                f"{message} DashScope keys are bound to a region: this call went to {self.region} "
                f"({self.base_url}). A key issued in another region's console fails here; set region= "
                f"(or DASHSCOPE_REGION) to the key's region."
            )
        elif resp.status == 404 or message == "Model not exist.":
            message += " The model ID may be stale or not served in this region; see wanlab.catalog.models()."
        err = typed_error(
            resp.status,
            message,
            host=f"dashscope/{self.region}",
            code=code,
            request_id=str(body.get("request_id") or ""),
            retry_after=resp.header("Retry-After"),
        )
        return err
