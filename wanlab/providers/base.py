"""The shapes every wire protocol maps onto: an HTTP request to send, a response received, and the
normalised task snapshot. Sans-I/O: nothing here opens a socket."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..catalog import ModelSpec
from ..errors import ApiError, AuthError, NotFound, RateLimited, ServerError
from ..inputs import Media
from ..jobs import Status
from ..requests import Request
from ..retry import parse_retry_after


@dataclass(frozen=True)
class HttpRequest:
    """What to send. `auth` says whether the client adds the API key: never for upload targets and
    result downloads, which live on other hosts."""

    method: str
    url: str
    route: str  # submit | query | cancel | list | upload | download
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    params: Mapping[str, Any] | None = None
    data: Mapping[str, str] | None = None  # form fields (multipart with `files`)
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    content: bytes | None = None
    auth: bool = True


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


@dataclass(frozen=True)
class TaskSnapshot:
    """One look at a task, in wanlab's vocabulary. Raw host times are kept as strings: their time zone
    is not documented for every region, so the client's own clock is the reference."""

    task_id: str
    status: Status
    host_status: str = ""
    request_id: str = ""
    submit_time: str | None = None
    scheduled_time: str | None = None
    end_time: str | None = None
    video_url: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    seed: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def billed_seconds(self) -> float | None:
        return billed_seconds(self.usage)

    @property
    def output_seconds(self) -> float | None:
        return _first_number(self.usage, ("output_video_duration", "video_duration", "duration"))


def _first_number(usage: Mapping[str, Any] | None, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = (usage or {}).get(key)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def billed_seconds(usage: Mapping[str, Any] | None) -> float | None:
    """Seconds a host bills, from any of the three DashScope usage shapes (for r2v and edit on 2.7:
    input + output seconds)."""
    return _first_number(usage, ("duration", "video_duration", "output_video_duration"))


@dataclass(frozen=True)
class ListedTask:
    task_id: str
    status: Status
    model: str
    request_id: str
    created_ms: int | None


UploadFlow = Generator[HttpRequest, HttpResponse, str]


class Provider(Protocol):
    """A wire protocol. Every method is pure."""

    name: str
    base_url: str
    supports_cancel: bool
    supports_list: bool

    def describe(self) -> str: ...
    def submit(self, spec: ModelSpec, req: Request, urls: list[str]) -> HttpRequest: ...
    def parse_submit(self, resp: HttpResponse) -> TaskSnapshot: ...
    def query(self, task_id: str) -> HttpRequest: ...
    def parse_query(self, resp: HttpResponse, task_id: str) -> TaskSnapshot: ...
    def cancel(self, task_id: str) -> HttpRequest | None: ...
    def parse_cancel(self, resp: HttpResponse) -> None: ...
    def list_tasks(self, model: str | None, page_no: int = 1, status: Status | None = None) -> HttpRequest | None: ...
    def parse_list(self, resp: HttpResponse) -> tuple[list[ListedTask], bool]: ...
    def upload(self, media: Media, model: str) -> UploadFlow: ...
    def error(self, resp: HttpResponse, route: str) -> ApiError: ...


def typed_error(
    status: int, message: str, *, host: str, code: str = "", request_id: str = "", retry_after: str | None = None
) -> ApiError:
    """The ApiError subclass for an HTTP status."""
    cls: type[ApiError] = ApiError
    if status in (401, 403):
        cls = AuthError
    elif status == 404:
        cls = NotFound
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    return cls(
        message, host=host, status=status, code=code, request_id=request_id, retry_after=parse_retry_after(retry_after)
    )
