"""Every error body the sim answers with, in one place: DashScope's JSON `{"request_id","code","message"}`,
WaveSpeed's envelope `{"code","message","data"}` (its success shape too), OSS/S3's XML for signed URLs
and uploads, the fault layer's 429/5xx per host, the 404 for a path no route knows, and the sim's own
`{"error"}` for `/_sim/*` control requests. Shapes and texts: docs/WIRE.md §3–4 and docs/SIM.md."""

from __future__ import annotations

import uuid

from starlette.responses import JSONResponse, Response

# The same words whether the key's rate window or a `429` fault refuses the request.
DS_THROTTLED = ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")
SIGNATURE_MISMATCH = "The request signature we calculated does not match the signature you provided."


def request_id() -> str:
    """A DashScope request id (every DashScope body carries one, errors included)."""
    return str(uuid.uuid4())


def ds_error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"request_id": request_id(), "code": code, "message": message}, status_code=status, headers=headers
    )


def ws_envelope(data, status: int = 200, message: str = "success", headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "message": message, "data": data}, status_code=status, headers=headers)


def ws_error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    # WaveSpeed's error envelope for non-200 answers is [unverified]: the success envelope's shape.
    return ws_envelope(None, status, message, headers)


def oss_error(status: int, code: str, message: str, extra: str = "") -> Response:
    """OSS (and S3, for WaveSpeed's presigned PUT) answer signed-URL and upload problems with XML like this."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
        f"  <RequestId>{uuid.uuid4().hex[:24].upper()}</RequestId>\n"
        f"  <HostId>wanlab-sim.oss.local</HostId>\n{extra}</Error>\n"
    )
    return Response(body, status_code=status, media_type="application/xml")


def sim_error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


_FAULT_TEXT: dict[str, dict[int, tuple[str | None, str]]] = {
    "dashscope": {
        429: DS_THROTTLED,
        500: ("InternalError", "An internal error has occured, please try again later or contact service support."),
        502: ("InternalError", "Bad gateway, please try again later."),
        503: ("ServiceUnavailable", "Service is temporarily unavailable, please try again later."),
    },
    "wavespeed": {
        429: (None, "Too many requests, please try again later."),
        500: (None, "Internal server error"),
        502: (None, "Bad gateway"),
        503: (None, "Service unavailable"),
    },
}


def host_error(host: str, status: int, headers: dict | None = None) -> Response:
    """The answer of an injected 429/500/502/503 fault, in the host's own shape."""
    code, msg = _FAULT_TEXT.get(host, _FAULT_TEXT["dashscope"])[status]
    if host == "wavespeed":
        return ws_error(status, msg, headers)
    if host == "dashscope":
        assert code is not None  # every DashScope fault text has a code
        return ds_error(status, code, msg, headers)
    return Response(msg, status_code=status, headers=headers, media_type="text/plain")


def not_found(host: str, path: str) -> Response:
    """A path (or method) no route of that host knows."""
    if host == "wavespeed":
        return ws_error(404, "Not Found")
    if host == "dashscope":
        return ds_error(404, "NotFound", f"Path {path} not found.")
    return Response("Not Found", status_code=404, media_type="text/plain")
