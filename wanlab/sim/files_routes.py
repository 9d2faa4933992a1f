"""Result videos and uploaded media: GET/HEAD of `/_files/…` and `/_media/…` with Range, signed expiring
links, OSS's XML refusals."""

from __future__ import annotations

import hashlib
import re
import time
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from .errors import SIGNATURE_MISMATCH, oss_error

if TYPE_CHECKING:
    from .app import SimApp


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


async def serve(app: SimApp, request: Request, params: dict) -> Response:
    name = unquote(params["name"])
    blob = app.store.get(params["space"], name)
    clock = app.engine.clock
    if blob is None:
        return oss_error(404, "NoSuchKey", "The specified key does not exist.")
    q = request.query_params
    if "Expires" in q or "Signature" in q:
        try:
            expires = int(q.get("Expires", "0"))
        except ValueError:
            expires = 0
        if q.get("Signature", "") != app.sign(name, expires):
            return oss_error(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)
        if clock.wall() > expires:
            return oss_error(
                403,
                "AccessDenied",
                "Request has expired.",
                f"  <Expires>{_iso(expires)}</Expires>\n  <ServerTime>{_iso(clock.wall())}</ServerTime>\n",
            )
    elif (
        params["space"] == "files"
        and blob.name
        and app.engine.tasks.get(name[:-4]) is not None
        and app.engine.tasks[name[:-4]].host == "dashscope"
    ):
        return oss_error(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
    if blob.expired(clock.sim()):
        return oss_error(403, "AccessDenied", "Request has expired.")
    data = blob.read()
    total = len(data)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{hash_etag(data)}"',
        "Last-Modified": formatdate(blob.created_wall, usegmt=True),
    }
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
        body = data[start : end + 1]
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{total}"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(b"", status_code=status, headers=headers, media_type=blob.content_type)
    return Response(body, status_code=status, headers=headers, media_type=blob.content_type)


def hash_etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()
