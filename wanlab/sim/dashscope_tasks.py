"""DashScope's task routes (docs/WIRE.md §3): submit with the async header, query, cancel and list, the
task snapshot a query answers, failure codes, and the three `usage` shapes."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..catalog import CATALOG
from .build import Invalid, build_task
from .dashscope_parse import parse_request
from .engine import Task
from .errors import ds_error, request_id
from .jsonbody import loads_object

if TYPE_CHECKING:
    from .app import SimApp
    from .dashscope_routes import DashScopeRoutes

REGION_IDS = {"singapore": "ap-southeast-1", "beijing": "cn-beijing", "virginia": "us-east-1"}
MEDIA_UNREACHABLE = (
    "InvalidParameter.DataInspection",
    "Download the media resource timed out during the data inspection process.",
)
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


class DashScopeTasks:
    def __init__(self, routes: DashScopeRoutes):
        self.routes = routes

    async def submit(self, app: SimApp, request: Request, params: dict) -> Response:
        region = params["region"]
        fp, denied = self.routes.admit(request, region, self.routes.submit_rate)
        if denied:
            return denied
        if request.headers.get("x-dashscope-async", "").lower() != "enable":
            return ds_error(
                app.settings.dashscope_sync_error_status,
                app.settings.dashscope_sync_error_code,
                "current user api does not support synchronous calls",
            )
        try:
            body = loads_object(await request.body())
        except ValueError:
            return ds_error(400, "InvalidParameter", "The request body is not a valid JSON object.")
        model_id = body.get("model")
        spec = CATALOG.get(model_id) if isinstance(model_id, str) else None
        if not model_id:
            return ds_error(400, "InvalidParameter", "Field required: model")
        if spec is None or spec.host != "dashscope" or region not in spec.regions:
            return ds_error(400, "InvalidParameter", "Model not exist.")
        raw_inp, raw_par = body.get("input"), body.get("parameters")
        inp = raw_inp if isinstance(raw_inp, dict) else {}
        par = raw_par if isinstance(raw_par, dict) else {}
        try:
            parsed = parse_request(spec, inp, par)
        except Invalid as exc:
            return ds_error(400, "InvalidParameter", str(exc))
        except (TypeError, ValueError, AttributeError, OverflowError):
            # Parsing only reads the client's body: a type it did not expect is the client's 400,
            # never the sim's 500 (the explicit checks above name the field when they can).
            return ds_error(400, "InvalidParameter", FAIL_MESSAGES["InvalidParameter"])
        urls = parsed.images + parsed.videos
        if (
            any(isinstance(u, str) and u.startswith("oss://") for u in urls)
            and request.headers.get("x-dashscope-ossresourceresolve", "").lower() != "enable"
        ):
            return ds_error(
                400,
                "InvalidParameter",
                "The provided URL does not appear to be valid. Ensure it is correctly formatted. "
                "(oss:// URLs need the header X-DashScope-OssResourceResolve: enable)",
            )
        task = build_task(
            app.engine,
            parsed,
            app.resolver(request),
            host="dashscope",
            key_fp=fp,
            region=region,
            label=app.settings.label,
            fps=app.settings.fps,
            unreachable=MEDIA_UNREACHABLE,
        )
        task.request_id = request_id()
        task.extra.update(
            base=app.base_url(request),
            size=parsed.size,
            prompt_extend=bool(par.get("prompt_extend", True)),
            negative_prompt=inp.get("negative_prompt"),
        )
        app.engine.start(task)
        return JSONResponse({"request_id": task.request_id, "output": {"task_status": "PENDING", "task_id": task.id}})

    # ---- query / cancel / list ----
    def _lookup(self, app: SimApp, request: Request, params: dict) -> tuple[Task | None, Response | None]:
        """(the caller's task in this region, or None; a refusal to send instead)."""
        fp, denied = self.routes.admit(request, params["region"], self.routes.query_rate)
        if denied:
            return None, denied
        task = app.engine.get(params["task_id"], "dashscope", fp)
        return (task if task is not None and task.region == params["region"] else None), None

    async def query(self, app: SimApp, request: Request, params: dict) -> Response:
        task, denied = self._lookup(app, request, params)
        if denied:
            return denied
        if task is None:
            return JSONResponse(
                {"request_id": request_id(), "output": {"task_id": params["task_id"], "task_status": "UNKNOWN"}}
            )
        return JSONResponse(self.snapshot(task))

    def snapshot(self, task: Task) -> dict:
        status = task.status
        out: dict = {"task_id": task.id, "task_status": status, "submit_time": self.routes.host_time(task.submit_wall)}
        if task.scheduled_wall is not None:
            out["scheduled_time"] = self.routes.host_time(task.scheduled_wall)
        if status in ("SUCCEEDED", "FAILED", "CANCELED"):
            out["end_time"] = self.routes.host_time(task.end_wall)
        body: dict = {"request_id": request_id(), "output": out}
        if status == "SUCCEEDED":
            out["orig_prompt"] = task.prompt
            if task.model.version in ("2.5", "2.2", "2.1") and task.extra.get("prompt_extend", True):
                out["actual_prompt"] = task.prompt  # the sim does not rewrite prompts
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

    async def cancel(self, app: SimApp, request: Request, params: dict) -> Response:
        task, denied = self._lookup(app, request, params)
        if denied:
            return denied
        if task is None:
            return ds_error(400, "UnsupportedOperation", "The operation is unsupported on the referee object.")
        if task.status != "PENDING":
            return ds_error(
                400,
                "UnsupportedOperation",
                "Failed to cancel the task, please confirm if the task is in PENDING status.",
            )
        app.engine.cancel(task)
        return JSONResponse({"request_id": request_id()})

    async def list(self, app: SimApp, request: Request, params: dict) -> Response:
        fp, denied = self.routes.admit(request, params["region"], self.routes.query_rate)
        if denied:
            return denied
        q = request.query_params
        try:
            page_no = max(1, int(q.get("page_no", 1)))
            page_size = min(100, max(1, int(q.get("page_size", 10))))
            start = self._parse_list_time(q.get("start_time"))
            end = self._parse_list_time(q.get("end_time"))
        except ValueError as exc:
            return ds_error(400, "InvalidParameter", str(exc))
        now = app.engine.clock.wall()
        end = end if end is not None else now
        start = start if start is not None else end - 24 * 3600
        if end - start > 24 * 3600:
            return ds_error(
                400, "InvalidParameter", "The time range between start_time and end_time must be within 24 hours."
            )
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
            if (want_status := q.get("status")) and t.status != want_status.upper():
                continue
            rows.append(t)
        rows.sort(key=lambda t: t.submit_wall, reverse=True)
        page = rows[(page_no - 1) * page_size : page_no * page_size]
        ms = lambda ts: int(ts * 1000) if ts is not None else None  # noqa: E731
        data = [
            {
                "api_key_id": fp,
                "task_id": t.id,
                "status": t.status,
                "model_name": t.model.id,
                "region": REGION_IDS[t.region],
                "request_id": t.request_id,
                "gmt_create": ms(t.submit_wall),
                "start_time": ms(t.scheduled_wall),
                "end_time": ms(t.end_wall),
            }
            for t in page
        ]
        return JSONResponse(
            {
                "request_id": request_id(),
                "total": len(rows),
                "total_page": max(1, math.ceil(len(rows) / page_size)),
                "page_no": page_no,
                "page_size": page_size,
                "data": data,
            }
        )

    def _parse_list_time(self, value: str | None) -> float | None:
        if not value:
            return None
        try:
            dt = datetime.strptime(value, "%Y%m%d%H%M%S")
        except ValueError:
            raise ValueError(f"The time {value!r} is invalid: use YYYYMMDDhhmmss.") from None
        return dt.replace(tzinfo=self.routes.host_tz()).timestamp()


def usage(task: Task) -> dict:
    out_s = task.duration
    out_i = int(out_s) if float(out_s).is_integer() else out_s
    sr = int(task.resolution.rstrip("Pp"))
    size = f"{task.width}*{task.height}"
    if task.model.usage_shape == "2.7":
        # r2v and videoedit bill input video seconds too [doc]; other modes bill the output only
        bills_input = task.mode in ("ref2v", "grid9", "edit")
        total = round(task.input_video_s + out_s, 2) if (bills_input and task.input_video_s) else out_i
        return {
            "duration": total,
            "input_video_duration": task.input_video_s or 0,
            "output_video_duration": out_i,
            "video_count": 1,
            "ratio": task.ratio,
            "SR": sr,
        }
    if task.model.usage_shape == "2.6":
        return {
            "duration": out_i,
            "size": size,
            "input_video_duration": task.input_video_s or 0,
            "output_video_duration": out_i,
            "video_count": 1,
            "SR": sr,
        }
    return {"video_duration": out_i, "video_ratio": size, "video_count": 1}
