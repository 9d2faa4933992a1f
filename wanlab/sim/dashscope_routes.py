"""DashScope (Alibaba Cloud Model Studio) as ../../shared/WIRE.md §3 documents it: submit per mode with
the async header, task query / cancel / list, the getPolicy + OSS form-post upload flow, error JSON,
per-key limits, and the three `usage` shapes."""
from __future__ import annotations

import base64
import json
import math
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..catalog import CATALOG, ModelSpec
from .build import Invalid, Parsed, build_task, size_resolution
from .engine import RateWindow, Task, key_fingerprint
from .jsonbody import loads_object
from .media import parse_multipart

if TYPE_CHECKING:
    from .app import SimApp

REGION_IDS = {"singapore": "ap-southeast-1", "beijing": "cn-beijing", "virginia": "us-east-1"}
MEDIA_UNREACHABLE = ("InvalidParameter.DataInspection",
                     "Download the media resource timed out during the data inspection process.")
FAIL_MESSAGES = {
    "InternalError": "An internal error has occured, please try again later or contact service support.",
    "InternalError.Algo": "An internal error has occured during execution, please try again later or contact "
                          "service support.",
    "InternalError.Timeout": "An internal timeout error has occured during execution, please try again later or "
                             "contact service support.",
    "DataInspectionFailed": "Input data may contain inappropriate content.",
    "IPInfringementSuspect": "Input data is suspected of being involved in IP infringement.",
    "InvalidParameter": "The request parameter is invalid.",
}
I2V_COMBOS = {("first_frame",): "i2v", ("driving_audio", "first_frame"): "i2v",
              ("first_frame", "last_frame"): "flf2v", ("driving_audio", "first_frame", "last_frame"): "flf2v",
              ("first_clip",): "extend", ("first_clip", "last_frame"): "extend"}


def _err(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    from .app import ds_error
    return ds_error(status, code, message, headers)


class DashScopeRoutes:
    def __init__(self, app: "SimApp"):
        self.app = app
        s = app.settings
        self.submit_rate = RateWindow(s.dashscope_submits_per_s, 1.0)
        self.query_rate = RateWindow(s.dashscope_queries_per_s, 1.0)
        self.policies: dict[str, dict] = {}     # signature → policy issued (the OSS post must match one)

    # ---- common checks ----
    def _check_key(self, request: Request, region: str) -> tuple[str | None, Response | None]:
        key, why = self.app.auth(request)
        if why == "missing":
            return None, _err(401, "InvalidApiKey", "No API-key provided.")
        if why == "invalid":
            return None, _err(401, "InvalidApiKey", "Invalid API-key provided.")
        bound = self.app.key_regions.get(key)
        if bound is not None and bound != region:
            # keys are bound to their region; the host answers exactly as for a wrong key
            return None, _err(401, "InvalidApiKey", "Invalid API-key provided.")
        return key, None

    def _admit(self, request: Request, region: str, rate) -> tuple[str, Response | None]:
        """The key check, then the per-key rate window: (key fingerprint, refusal or None)."""
        key, denied = self._check_key(request, region)
        if denied:
            return "", denied
        fp = key_fingerprint(key)
        if not rate.allow(fp):
            return fp, self._throttled()
        return fp, None

    def _throttled(self) -> Response:
        return _err(429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.",
                    {"Retry-After": _secs(self.app.settings.rate_limit_retry_after_s)})

    def _time(self, ts: float | None) -> str | None:
        if ts is None:
            return None
        tz = timezone(timedelta(hours=self.app.settings.dashscope_utc_offset_h))
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    # ---- submit ----
    async def submit(self, app: "SimApp", request: Request, params: dict) -> Response:
        region = params["region"]
        fp, denied = self._admit(request, region, self.submit_rate)
        if denied:
            return denied
        if request.headers.get("x-dashscope-async", "").lower() != "enable":
            return _err(app.settings.dashscope_sync_error_status, app.settings.dashscope_sync_error_code,
                        "current user api does not support synchronous calls")
        try:
            body = loads_object(await request.body())
        except ValueError:
            return _err(400, "InvalidParameter", "The request body is not a valid JSON object.")
        model_id = body.get("model")
        spec = CATALOG.get(model_id) if isinstance(model_id, str) else None
        if not model_id:
            return _err(400, "InvalidParameter", "Field required: model")
        if spec is None or spec.host != "dashscope" or region not in spec.regions:
            return _err(400, "InvalidParameter", "Model not exist.")
        inp = body.get("input") if isinstance(body.get("input"), dict) else {}
        par = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        try:
            parsed = parse_request(spec, inp, par)
        except Invalid as exc:
            return _err(400, "InvalidParameter", str(exc))
        except (TypeError, ValueError, AttributeError, OverflowError):
            # Parsing only reads the client's body: a type it did not expect is the client's 400,
            # never the sim's 500 (the explicit checks above name the field when they can).
            return _err(400, "InvalidParameter", FAIL_MESSAGES["InvalidParameter"])
        urls = parsed.images + parsed.videos
        if any(isinstance(u, str) and u.startswith("oss://") for u in urls) and \
                request.headers.get("x-dashscope-ossresourceresolve", "").lower() != "enable":
            return _err(400, "InvalidParameter",
                        "The provided URL does not appear to be valid. Ensure it is correctly formatted. "
                        "(oss:// URLs need the header X-DashScope-OssResourceResolve: enable)")
        task = build_task(app.engine, parsed, app.resolver(request), host="dashscope", key_fp=fp, region=region,
                          label=app.settings.label, fps=app.settings.fps, unreachable=MEDIA_UNREACHABLE)
        task.request_id = str(uuid.uuid4())
        task.extra.update(base=app.base_url(request), size=parsed.size,
                          prompt_extend=bool(par.get("prompt_extend", True)),
                          negative_prompt=inp.get("negative_prompt"))
        app.engine.start(task)
        return JSONResponse({"request_id": task.request_id,
                             "output": {"task_status": "PENDING", "task_id": task.id}})

    # ---- query / cancel / list ----
    def _lookup(self, app: "SimApp", request: Request, params: dict) -> tuple[Task | None, Response | None]:
        """(the caller's task in this region, or None; a refusal to send instead)."""
        fp, denied = self._admit(request, params["region"], self.query_rate)
        if denied:
            return None, denied
        task = app.engine.get(params["task_id"], "dashscope", fp)
        return (task if task is not None and task.region == params["region"] else None), None

    async def query(self, app: "SimApp", request: Request, params: dict) -> Response:
        task, denied = self._lookup(app, request, params)
        if denied:
            return denied
        if task is None:
            return JSONResponse({"request_id": str(uuid.uuid4()),
                                 "output": {"task_id": params["task_id"], "task_status": "UNKNOWN"}})
        return JSONResponse(self.snapshot(task))

    def snapshot(self, task: Task) -> dict:
        status = task.status
        out: dict = {"task_id": task.id, "task_status": status, "submit_time": self._time(task.submit_wall)}
        if task.scheduled_wall is not None:
            out["scheduled_time"] = self._time(task.scheduled_wall)
        if status in ("SUCCEEDED", "FAILED", "CANCELED"):
            out["end_time"] = self._time(task.end_wall)
        body: dict = {"request_id": str(uuid.uuid4()), "output": out}
        if status == "SUCCEEDED":
            out["orig_prompt"] = task.prompt
            if task.model.version in ("2.5", "2.2", "2.1") and task.extra.get("prompt_extend", True):
                out["actual_prompt"] = task.prompt   # the sim does not rewrite prompts
            out["video_url"] = task.video_url
            body["usage"] = usage(task)
        elif status == "FAILED":
            out["code"], out["message"] = self.failure(task)
        return body

    def failure(self, task: Task) -> tuple[str, str]:
        if task.moderation:
            return "DataInspectionFailed", FAIL_MESSAGES["DataInspectionFailed"]
        if "fault_fail" in task.extra:
            code = task.extra["fault_fail"] or "InternalError"
            return code, FAIL_MESSAGES.get(code, FAIL_MESSAGES["InternalError"])
        if task.fail:
            return task.fail
        return "InternalError", FAIL_MESSAGES["InternalError"]

    async def cancel(self, app: "SimApp", request: Request, params: dict) -> Response:
        task, denied = self._lookup(app, request, params)
        if denied:
            return denied
        if task is None:
            return _err(400, "UnsupportedOperation", "The operation is unsupported on the referee object.")
        if task.status != "PENDING":
            return _err(400, "UnsupportedOperation",
                        f"Failed to cancel the task, please confirm if the task is in PENDING status.")
        app.engine.cancel(task)
        return JSONResponse({"request_id": str(uuid.uuid4())})

    async def list(self, app: "SimApp", request: Request, params: dict) -> Response:
        fp, denied = self._admit(request, params["region"], self.query_rate)
        if denied:
            return denied
        q = request.query_params
        try:
            page_no = max(1, int(q.get("page_no", 1)))
            page_size = min(100, max(1, int(q.get("page_size", 10))))
            start = self._parse_list_time(q.get("start_time"))
            end = self._parse_list_time(q.get("end_time"))
        except ValueError as exc:
            return _err(400, "InvalidParameter", str(exc))
        now = app.engine.clock.wall()
        end = end if end is not None else now
        start = start if start is not None else end - 24 * 3600
        if end - start > 24 * 3600:
            return _err(400, "InvalidParameter", "The time range between start_time and end_time must be "
                                                 "within 24 hours.")
        rows = []
        for t in app.engine.tasks.values():
            if t.host != "dashscope" or t.key_fp != fp or t.region != params["region"]:
                continue
            if app.engine.get(t.id, "dashscope", fp) is None:
                continue
            if not start <= t.submit_wall <= end:
                continue
            if q.get("task_id") and t.id != q.get("task_id"):
                continue
            if q.get("model_name") and t.model.id != q.get("model_name"):
                continue
            if q.get("status") and t.status != q.get("status").upper():
                continue
            rows.append(t)
        rows.sort(key=lambda t: t.submit_wall, reverse=True)
        page = rows[(page_no - 1) * page_size: page_no * page_size]
        ms = lambda ts: int(ts * 1000) if ts is not None else None  # noqa: E731
        data = [{"api_key_id": fp, "task_id": t.id, "status": t.status, "model_name": t.model.id,
                 "region": REGION_IDS[t.region], "request_id": t.request_id, "gmt_create": ms(t.submit_wall),
                 "start_time": ms(t.scheduled_wall), "end_time": ms(t.end_wall)} for t in page]
        return JSONResponse({"request_id": str(uuid.uuid4()), "total": len(rows),
                             "total_page": max(1, math.ceil(len(rows) / page_size)), "page_no": page_no,
                             "page_size": page_size, "data": data})

    def _parse_list_time(self, value: str | None) -> float | None:
        if not value:
            return None
        try:
            dt = datetime.strptime(value, "%Y%m%d%H%M%S")
        except ValueError:
            raise ValueError(f"The time {value!r} is invalid: use YYYYMMDDhhmmss.") from None
        tz = timezone(timedelta(hours=self.app.settings.dashscope_utc_offset_h))
        return dt.replace(tzinfo=tz).timestamp()

    # ---- uploads ----
    async def get_policy(self, app: "SimApp", request: Request, params: dict) -> Response:
        key, denied = self._check_key(request, params["region"])
        if denied:
            return denied
        q = request.query_params
        if q.get("action") != "getPolicy":
            return _err(400, "InvalidParameter", "The action parameter is invalid.")
        if not q.get("model"):
            return _err(400, "InvalidParameter", "Field required: model")
        now = app.engine.clock.wall()
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        upload_dir = f"dashscope-instant/{key_fingerprint(key)[4:]}/{day}/{uuid.uuid4()}"
        policy = base64.b64encode(json.dumps({
            "expiration": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now + 300)),
            "conditions": [["content-length-range", 0, int(app.settings.max_upload_mb * 1024 * 1024)],
                           ["starts-with", "$key", upload_dir]]}).encode()).decode()
        signature = base64.b64encode(app.sign(policy, 0).encode()[:20]).decode()
        self.policies[signature] = {"policy": policy, "upload_dir": upload_dir, "expires": now + 300}
        return JSONResponse({"request_id": str(uuid.uuid4()), "data": {
            "policy": policy, "signature": signature, "upload_dir": upload_dir,
            "upload_host": f"{app.base_url(request)}/_oss", "expire_in_seconds": 300,
            "max_file_size_mb": int(app.settings.max_upload_mb), "capacity_limit_mb": 999999999,
            "oss_access_key_id": "LTAI5tSimWanlabOffline", "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true"}})

    async def oss_post(self, app: "SimApp", request: Request, params: dict) -> Response:
        from .files_routes import _oss_error
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return _oss_error(400, "InvalidArgument", "The body of your POST request is not well-formed "
                                                      "multipart/form-data.")
        try:
            fields, files = parse_multipart(await request.body(), ctype)
        except ValueError:
            return _oss_error(400, "InvalidArgument", "The body of your POST request is not well-formed "
                                                      "multipart/form-data.")
        pol = self.policies.get(fields.get("Signature", ""))
        if pol is None or fields.get("policy") != pol["policy"] or \
                fields.get("OSSAccessKeyId") != "LTAI5tSimWanlabOffline":
            return _oss_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                                                            "the signature you provided.")
        if app.engine.clock.wall() > pol["expires"]:
            return _oss_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        key = fields.get("key", "")
        if not key.startswith(pol["upload_dir"]) or "file" not in files:
            return _oss_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: "
                                                   "[\"starts-with\", \"$key\", ...]")
        if fields.get("x-oss-forbid-overwrite") == "true" and app.store.get("oss", key) is not None:
            return _oss_error(409, "FileAlreadyExists", "The object you specified already exists and can not be "
                                                        "overwritten.")
        _, data, ftype = files["file"]
        app.store.put("oss", key, data, fields.get("x-oss-content-type") or ftype, app.engine.clock.wall(),
                      app.engine.clock.sim(), app.settings.oss_ttl_s)
        # OSS, like S3, answers 204 for any success_action_status other than 200 or 201.
        status = {"200": 200, "201": 201}.get(fields.get("success_action_status", "").strip(), 204)
        return Response(b"", status_code=status)


def _secs(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def usage(task: Task) -> dict:
    out_s = task.duration
    out_i = int(out_s) if float(out_s).is_integer() else out_s
    sr = int(task.resolution.rstrip("Pp"))
    size = f"{task.width}*{task.height}"
    if task.model.usage_shape == "2.7":
        # r2v and videoedit bill input video seconds too [doc]; other modes bill the output only
        bills_input = task.mode in ("ref2v", "grid9", "edit")
        total = round(task.input_video_s + out_s, 2) if (bills_input and task.input_video_s) else out_i
        return {"duration": total, "input_video_duration": task.input_video_s or 0,
                "output_video_duration": out_i, "video_count": 1, "ratio": task.ratio, "SR": sr}
    if task.model.usage_shape == "2.6":
        return {"duration": out_i, "size": size, "input_video_duration": task.input_video_s or 0,
                "output_video_duration": out_i, "video_count": 1, "SR": sr}
    return {"video_duration": out_i, "video_ratio": size, "video_count": 1}


def _int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise Invalid(f"The parameter {name} is invalid: expected an integer.")
    try:
        f = float(v)
    except ValueError:
        raise Invalid(f"The parameter {name} is invalid: expected an integer.") from None
    if not f.is_integer():
        raise Invalid(f"The parameter {name} is invalid: expected an integer.")
    return int(f)


def _url(value, name: str) -> str | None:
    """A media URL field: absent/empty (None) or a string; anything else is the client's error."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(f"The parameter {name} is invalid: expected a URL string.")
    return value


def _urls(value, name: str) -> list[str]:
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise Invalid(f"The parameter {name} is invalid: expected a list of URL strings.")
    return [u for k, v in enumerate(value) if (u := _url(v, f"{name}[{k}]")) is not None]


def parse_request(spec: ModelSpec, inp: dict, par: dict) -> Parsed:
    """Validate a DashScope body against the catalog and map it to a render mode."""
    prompt = inp.get("prompt")
    prompt = prompt if isinstance(prompt, str) else ""
    seed = par.get("seed")
    if seed is not None:
        seed = _int(seed, "seed")
        if not 0 <= seed <= 2147483647:
            raise Invalid("The parameter seed is invalid: it must be within [0, 2147483647].")
    duration = par.get("duration")
    if duration is not None:
        duration = _int(duration, "duration")
    ratio = par.get("ratio")
    size = None
    if spec.protocol == "media":
        if "size" in par and par.get("size") is not None and "resolution" not in par:
            raise Invalid(f"The parameter size is not supported by {spec.id}: use resolution and ratio.")
        resolution = str(par.get("resolution", "1080P")).upper()
        if resolution not in spec.resolutions:
            raise Invalid(f"The parameter resolution is invalid: {resolution} is not supported by {spec.id}; "
                          f"supported: {', '.join(spec.resolutions)}.")
    else:
        if par.get("size"):
            resolution, size = size_resolution(str(par["size"]), spec)
        else:
            resolution = str(par.get("resolution", spec.resolutions[-1])).upper()
            if resolution not in spec.resolutions:
                raise Invalid(f"The parameter resolution is invalid: {resolution} is not supported by {spec.id}; "
                              f"supported: {', '.join(spec.resolutions)}.")
    if ratio is not None and (not isinstance(ratio, str) or ratio not in spec.ratios):
        raise Invalid(f"The parameter ratio is invalid: {ratio!r}; supported: {', '.join(spec.ratios)}.")

    parsed = Parsed(model=spec, mode=spec.modes[0], prompt=prompt, resolution=resolution, ratio=ratio,
                    duration=duration, seed=seed, size=size)
    has_video = False
    if spec.protocol == "media":
        media = inp.get("media") or []
        if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
            raise Invalid("The parameter input.media is invalid: expected a list of {type, url} objects.")
        by_type: dict[str, list[str]] = {}
        for k, m in enumerate(media):
            url = _url(m.get("url"), f"input.media[{k}].url") or \
                _url(m.get("reference_voice"), f"input.media[{k}].reference_voice") or ""
            by_type.setdefault(str(m.get("type")), []).append(url)
        kind = spec.id.split("-")[1] if "-" in spec.id else ""
        if kind == "t2v":
            if not prompt:
                parsed.missing = "input.prompt"
        elif kind == "i2v":
            if not media:
                parsed.missing = "input.media"
            else:
                if any(len(v) > 1 for v in by_type.values()):
                    raise Invalid("The parameter input.media is invalid: each media type may appear only once.")
                combo = tuple(sorted(by_type))
                if combo not in I2V_COMBOS:
                    raise Invalid(f"The parameter input.media is invalid: the combination {list(combo)} is not "
                                  f"supported by {spec.id}.")
                parsed.mode = I2V_COMBOS[combo]
                if parsed.mode == "extend":
                    parsed.videos = by_type["first_clip"]
                    parsed.images = by_type.get("last_frame", [])
                    parsed.aspect_from = "video0"
                else:
                    parsed.images = by_type["first_frame"] + by_type.get("last_frame", [])
                    parsed.aspect_from = "image0"
                parsed.ratio = None   # i2v follows the image
        elif kind == "r2v":
            imgs, vids = by_type.get("reference_image", []), by_type.get("reference_video", [])
            first = by_type.get("first_frame", [])
            if not imgs and not vids:
                parsed.missing = "input.media"
            elif len(imgs) + len(vids) > spec.max_refs:
                raise Invalid(f"The parameter input.media is invalid: at most {spec.max_refs} reference images "
                              f"and videos in total.")
            has_video = bool(vids)
            grid = len(imgs) == 1 and not vids and not first and "shot 1" in prompt.lower()
            parsed.mode = "grid9" if grid else "ref2v"
            parsed.images = (first + imgs) if not grid else imgs
            parsed.videos = vids
            if first:
                parsed.aspect_from, parsed.ratio = "image0", None
        elif kind == "videoedit":
            vids = by_type.get("video", [])
            imgs = by_type.get("reference_image", [])
            if len(vids) != 1:
                if not vids:
                    parsed.missing = "input.media"
                else:
                    raise Invalid("The parameter input.media is invalid: exactly one video is required.")
            if len(imgs) > spec.max_edit_images:
                raise Invalid(f"The parameter input.media is invalid: at most {spec.max_edit_images} reference "
                              f"images.")
            parsed.mode, parsed.videos, parsed.images = "edit", vids, imgs
            if ratio is None:
                parsed.aspect_from = "video0"
            if duration == 0:
                parsed.edit_whole = True
            has_video = True
    else:   # legacy protocol: img_url / first_frame_url / last_frame_url / reference_urls / size
        mode = spec.modes[0]
        if mode == "t2v" and not prompt:
            parsed.missing = "input.prompt"
        elif mode == "i2v":
            img = _url(inp.get("img_url"), "input.img_url")
            if not img:
                parsed.missing = "input.img_url"
            else:
                parsed.images, parsed.aspect_from = [img], ("image0" if size is None else None)
        elif mode == "flf2v":
            first = _url(inp.get("first_frame_url"), "input.first_frame_url")
            last = _url(inp.get("last_frame_url"), "input.last_frame_url")
            if not first:
                parsed.missing = "input.first_frame_url"
            else:
                parsed.images = [first] + ([last] if last else [])
                parsed.mode = "flf2v" if last else "i2v"
                parsed.aspect_from = "image0" if size is None else None
        elif mode == "ref2v":
            ref_videos = _urls(inp.get("reference_video_urls"), "input.reference_video_urls")
            refs = _urls(inp.get("reference_urls"), "input.reference_urls") + ref_videos
            if not refs:
                parsed.missing = "input.reference_urls"
            elif len(refs) > spec.max_refs:
                raise Invalid(f"The parameter input.reference_urls is invalid: at most {spec.max_refs} references.")
            parsed.images = refs   # sorted into images / videos by content once fetched
            has_video = bool(ref_videos)
    if duration is not None and not parsed.edit_whole:
        allowed = spec.duration_range(has_video)
        if duration not in allowed:
            lo, hi = min(allowed), max(allowed)
            choices = f"[{lo}, {hi}]" if len(allowed) == hi - lo + 1 else ", ".join(str(d) for d in allowed)
            raise Invalid(f"The parameter duration is invalid: {duration} is not supported by {spec.id}; "
                          f"supported: {choices}.")
    elif duration is None and 5 not in spec.durations:
        parsed.duration = float(spec.durations[0])
    return parsed
