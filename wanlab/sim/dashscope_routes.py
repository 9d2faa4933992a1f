"""DashScope (Alibaba Cloud Model Studio) as docs/WIRE.md §3 documents it. This module holds what every
DashScope route shares — the key check (keys bound to their region), the per-key rate windows, the 429,
the host's time format — and wires the routes by what they own: `dashscope_tasks.py` (submit, query,
cancel, list; snapshots and the three `usage` shapes), `dashscope_parse.py` (submit bodies, 2.7 media
and legacy protocols) and `dashscope_oss.py` (the getPolicy + OSS form-post upload flow)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from .dashscope_oss import OssUploads
from .dashscope_tasks import DashScopeTasks
from .engine import RateWindow, key_fingerprint
from .errors import DS_THROTTLED, ds_error

if TYPE_CHECKING:
    from .app import SimApp


class DashScopeRoutes:
    def __init__(self, app: SimApp):
        self.app = app
        s = app.settings
        self.submit_rate = RateWindow(s.dashscope_submits_per_s, 1.0)
        self.query_rate = RateWindow(s.dashscope_queries_per_s, 1.0)
        self.tasks = DashScopeTasks(self)
        self.uploads = OssUploads(self)

    def check_key(self, request: Request, region: str) -> tuple[str | None, Response | None]:
        key, why = self.app.auth(request)
        if why == "missing":
            return None, ds_error(401, "InvalidApiKey", "No API-key provided.")
        if why == "invalid":
            return None, ds_error(401, "InvalidApiKey", "Invalid API-key provided.")
        assert key is not None  # auth() answers (key, None) or (None, why)
        # keys are bound to their region; the host answers a key of another region exactly as a wrong key
        if self.app.key_regions.get(key, region) != region:
            return None, ds_error(401, "InvalidApiKey", "Invalid API-key provided.")
        return key, None

    def admit(self, request: Request, region: str, rate) -> tuple[str, Response | None]:
        """The key check, then the per-key rate window: (key fingerprint, refusal or None)."""
        key, denied = self.check_key(request, region)
        if denied:
            return "", denied
        assert key is not None  # check_key answers (key, None) or (None, refusal)
        fp = key_fingerprint(key)
        if not rate.allow(fp):
            return fp, self.throttled()
        return fp, None

    def throttled(self) -> Response:
        return ds_error(429, *DS_THROTTLED, {"Retry-After": _secs(self.app.settings.rate_limit_retry_after_s)})

    def host_time(self, ts: float | None) -> str | None:
        if ts is None:
            return None
        return datetime.fromtimestamp(ts, self.host_tz()).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    def host_tz(self) -> timezone:
        """The zone the host writes its times in (and reads list's start_time / end_time in)."""
        return timezone(timedelta(hours=self.app.settings.dashscope_utc_offset_h))


def _secs(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)
