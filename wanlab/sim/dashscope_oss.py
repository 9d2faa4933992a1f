"""DashScope's upload flow (docs/WIRE.md §3): `GET {base}/uploads?action=getPolicy` issues a signed OSS
policy, then the client's multipart form `POST {upload_host}` (the sim's `/_oss`) must match one."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .engine import key_fingerprint
from .errors import SIGNATURE_MISMATCH, ds_error, oss_error, request_id
from .multipart import parse_multipart

if TYPE_CHECKING:
    from .app import SimApp
    from .dashscope_routes import DashScopeRoutes


class OssUploads:
    def __init__(self, routes: DashScopeRoutes):
        self.routes = routes
        self.policies: dict[str, dict] = {}  # signature → policy issued (the OSS post must match one)

    async def get_policy(self, app: SimApp, request: Request, params: dict) -> Response:
        key, denied = self.routes.check_key(request, params["region"])
        if denied:
            return denied
        assert key is not None  # check_key answers (key, None) or (None, refusal)
        q = request.query_params
        if q.get("action") != "getPolicy":
            return ds_error(400, "InvalidParameter", "The action parameter is invalid.")
        if not q.get("model"):
            return ds_error(400, "InvalidParameter", "Field required: model")
        now = app.engine.clock.wall()
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        upload_dir = f"dashscope-instant/{key_fingerprint(key)[4:]}/{day}/{uuid.uuid4()}"
        policy = base64.b64encode(
            json.dumps(
                {
                    "expiration": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now + 300)),
                    "conditions": [
                        ["content-length-range", 0, int(app.settings.max_upload_mb * 1024 * 1024)],
                        ["starts-with", "$key", upload_dir],
                    ],
                }
            ).encode()
        ).decode()
        signature = base64.b64encode(app.sign(policy, 0).encode()[:20]).decode()
        self.policies[signature] = {"policy": policy, "upload_dir": upload_dir, "expires": now + 300}
        return JSONResponse(
            {
                "request_id": request_id(),
                "data": {
                    "policy": policy,
                    "signature": signature,
                    "upload_dir": upload_dir,
                    "upload_host": f"{app.base_url(request)}/_oss",
                    "expire_in_seconds": 300,
                    "max_file_size_mb": int(app.settings.max_upload_mb),
                    "capacity_limit_mb": 999999999,
                    "oss_access_key_id": "LTAI5tSimWanlabOffline",
                    "x_oss_object_acl": "private",
                    "x_oss_forbid_overwrite": "true",
                },
            }
        )

    async def oss_post(self, app: SimApp, request: Request, params: dict) -> Response:
        ctype = request.headers.get("content-type", "")
        try:
            if not ctype.startswith("multipart/form-data"):
                raise ValueError(ctype)
            fields, files = parse_multipart(await request.body(), ctype)
        except ValueError:
            return oss_error(
                400, "InvalidArgument", "The body of your POST request is not well-formed multipart/form-data."
            )
        pol = self.policies.get(fields.get("Signature", ""))
        if (
            pol is None
            or fields.get("policy") != pol["policy"]
            or fields.get("OSSAccessKeyId") != "LTAI5tSimWanlabOffline"
        ):
            return oss_error(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)
        if app.engine.clock.wall() > pol["expires"]:
            return oss_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        key = fields.get("key", "")
        if not key.startswith(pol["upload_dir"]) or "file" not in files:
            return oss_error(
                403,
                "AccessDenied",
                'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", ...]',
            )
        if fields.get("x-oss-forbid-overwrite") == "true" and app.store.get("oss", key) is not None:
            return oss_error(
                409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten."
            )
        _, data, ftype = files["file"]
        app.store.put(
            "oss",
            key,
            data,
            fields.get("x-oss-content-type") or ftype,
            app.engine.clock.wall(),
            app.engine.clock.sim(),
            app.settings.oss_ttl_s,
        )
        # OSS, like S3, answers 204 for any success_action_status other than 200 or 201.
        status = {"200": 200, "201": 201}.get(fields.get("success_action_status", "").strip(), 204)
        return Response(b"", status_code=status)
