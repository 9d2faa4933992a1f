"""The only module that imports httpx: one AsyncClient per Lab, the key added at send time, the rate
limiters and the concurrent-job slots (all loop-bound, made lazily on the loop that uses them), and the
classification of transport errors the retry loop needs. The job's life is in `runner.py`."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterable, Generator, Mapping
from pathlib import Path
from typing import Any

import httpx

from ._transport import AiohttpTransport
from .limits import Limits, RateLimiter
from .providers.base import HttpRequest, HttpResponse
from .secret import Secret

# Transport errors that prove the request never reached the server: safe to re-send even a submit.
NOT_SENT: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport errors after which the body may have reached the host.
AMBIGUOUS: tuple[type[Exception], ...] = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
TransportError = httpx.TransportError


def is_transport(value: object) -> bool:
    """Whether `value` can carry a Lab's requests (tests pass httpx.MockTransport and recording wrappers)."""
    return isinstance(value, httpx.AsyncBaseTransport)


class _Bearer(httpx.Auth):
    """Adds the key at send time, so no request object of ours ever holds it."""

    def __init__(self, secret: Secret):
        self.secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.secret.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"_Bearer({self.secret!r})"


class _NoCookies(httpx.Cookies):
    """The hosts' APIs are stateless (the key says who is asking) and result URLs are pre-signed: nothing
    needs a cookie. Keeping them cost ~6 % of the client's CPU (httpx builds urllib shims around every
    response to look for one, bench/bench_client.py)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass


_NO_COOKIES = _NoCookies()


class _Client(httpx.AsyncClient):
    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: Any) -> None:
        pass  # httpx's __init__ sets an empty jar: nothing to keep


class Http:
    """Sends `HttpRequest`s; the key only on requests marked `auth` (the API host's), never on upload
    targets or result downloads."""

    def __init__(
        self,
        secret: Secret,
        limits: Limits,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = httpx.Timeout(30.0, connect=10.0),
        stats: dict[str, int] | None = None,
    ):
        self.limits = limits
        self.stats = stats if stats is not None else {"requests": 0}
        self._auth = _Bearer(secret)
        self._transport = transport
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._wire: AiohttpTransport | None = None  # the default transport, when no other was given
        self._direct_base: dict[str, str] | None = None
        self.submit_rate: RateLimiter | None = None
        self.query_rate: RateLimiter | None = None
        self.slots: asyncio.Semaphore | None = None

    def _direct_headers(self, headers: Mapping[str, str], auth: bool) -> dict[str, str]:
        """A request's headers on the direct path: the client's defaults but Accept-Encoding (nothing decodes
        there: the host answers uncompressed), the request's own, and the key when the request is the API
        host's (`auth`) — added here, at send time, as `_Bearer` does on the httpx path."""
        if self._direct_base is None:
            assert self._client is not None
            self._direct_base = {k: v for k, v in self._client.headers.items() if k != "accept-encoding"}
        out = dict(self._direct_base)
        out.update((k.lower(), v) for k, v in headers.items())
        if auth:
            out["authorization"] = f"Bearer {self._auth.secret.reveal()}"
        return out

    def ensure(self) -> httpx.AsyncClient:
        if self._client is None:
            if self._transport is None:  # ours: polls may skip httpx's objects (see `send`)
                self._wire = AiohttpTransport()
            self._client = _Client(
                transport=self._transport or self._wire,
                timeout=self._timeout,
                follow_redirects=True,
                trust_env=False,
            )
            # Hosts count requests in sliding windows of unpublished exactness: an even drip (burst 1),
            # under the published rate by the margin RateLimiter explains.
            self.submit_rate = RateLimiter(self.limits.submits_per_s, burst=1)
            self.query_rate = RateLimiter(self.limits.queries_per_s, burst=1)
            self.slots = asyncio.Semaphore(self.limits.concurrent_jobs)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, req: HttpRequest, timeout: float | None = None) -> HttpResponse:
        client = self.ensure()
        self.stats["requests"] = self.stats.get("requests", 0) + 1
        # Built here rather than by `client.request`, which parses the URL string again for every poll and
        # merges it with a base URL the Lab does not use: about half of httpx's own CPU per request.
        url = _url(req.url, tuple(req.params.items()) if req.params else ())
        kwargs: dict[str, Any] = {}
        if req.json is not None:
            kwargs["content"] = json.dumps(req.json).encode()
        elif req.files is not None:
            kwargs["data"], kwargs["files"] = req.data, req.files
        elif req.data is not None:
            kwargs["data"] = req.data
        elif req.content is not None:
            kwargs["content"] = req.content
        limit = client.timeout if timeout is None else httpx.Timeout(timeout, connect=min(10.0, timeout))
        if self._wire is not None and set(kwargs) <= {"content"}:  # a poll, a submit: straight to aiohttp
            headers_out = self._direct_headers(req.headers, req.auth)
            got = await self._wire.fetch(str(url), headers_out, limit.as_dict(), req.method, kwargs.get("content"))
            if not 300 <= got.status < 400 or req.method != "GET":
                # a submit is never sent twice, not even after a redirect (no host of ours answers one): the
                # caller reads the 3xx as not accepted
                return HttpResponse(got.status, got.headers, got.body)
            # a redirected GET: sent again below, through httpx, which follows it (and never to another host with
            # the key)
        headers = client.headers.copy()
        headers.update(req.headers)  # case-insensitive: the request's own replace the defaults
        request = httpx.Request(
            req.method,
            url,
            headers=headers,
            extensions={"timeout": limit.as_dict()},
            **kwargs,
        )
        resp = await client.send(request, auth=self._auth if req.auth else None)
        return HttpResponse(resp.status_code, dict(resp.headers), resp.content)

    async def fetch_into(self, url: str, part: Path) -> Fetched:
        """One pass of a resumable download into `part`: asks for the bytes after those already there,
        appends what arrives as it arrives (a cut keeps it). Never sends the key: result URLs are
        pre-signed, on another host."""
        client = self.ensure()
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        if self._wire is not None:  # the default wire: straight to aiohttp, as a poll (see `send`)
            timeout = client.timeout.as_dict()
            async with self._wire.stream(url, self._direct_headers(headers, auth=False), timeout) as got:
                if not 300 <= got.status < 400:
                    return await _save(got.status, got.headers, got.body, part, have)
            # a redirect: sent again below, through httpx, which follows it
        async with client.stream("GET", url, headers=headers) as resp:
            return await _save(resp.status_code, dict(resp.headers), resp.aiter_bytes(), part, have)


async def _save(status: int, headers: dict[str, str], body: AsyncIterable[bytes], part: Path, have: int) -> Fetched:
    """A download's answer into `part`: appended after `have` bytes when the server honoured the Range, else
    written anew. `headers`: lower-case names."""
    if status >= 400:
        text = b""
        async for chunk in body:
            text += chunk
            if len(text) >= 300:
                break
        return Fetched(status, headers, text[:300].decode("utf-8", "replace"), None)
    total: int | None = None
    if status == 206 and have:
        mode = "ab"
        crange = headers.get("content-range", "")
        if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
            total = int(crange.rsplit("/", 1)[1])
    else:
        mode = "wb"  # the server ignored Range: start over
        if headers.get("content-length", "").isdigit():
            total = int(headers["content-length"])
    with open(part, mode) as fh:
        async for chunk in body:
            fh.write(chunk)
    return Fetched(status, headers, "", total)


@functools.lru_cache(maxsize=1024)
def _url(text: str, params: tuple[tuple[str, Any], ...] = ()) -> httpx.URL:
    """A parsed URL with its query (immutable): a job's poll URL, or the task list's, is built once, not at every
    request."""
    url = httpx.URL(text)
    return url.copy_merge_params(dict(params)) if params else url


class Fetched:
    """What one download pass got: the status, headers, an error body (first 300 characters) or the
    announced total size."""

    __slots__ = ("status", "headers", "body", "total")

    def __init__(self, status: int, headers: dict[str, str], body: str, total: int | None):
        self.status, self.headers, self.body, self.total = status, headers, body, total
