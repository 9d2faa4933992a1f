"""The default transport under the Lab's `httpx.AsyncClient`: aiohttp's connection pool and C HTTP parser.

Why not httpx's own (httpcore): measured on this project's sim (bench/bench_client.py), httpcore spent
~2 ms of CPU per request — its pool is scanned for every request and every idle connection is probed
through anyio — against ~0.6 ms through this transport; a job is a submit, a few polls and a download, so
the transport was most of a job's client CPU. httpx stays the API (requests, auth, redirects, timeouts,
`MockTransport` in tests); only the wire changes — and a Lab's GETs (its polls, most of its requests, and its
downloads) skip httpx's request and response objects on this default wire (`get`, `stream`): 0.37–0.45
against 0.62–0.66 ms of loop CPU per poll in a sequential probe against the sim.

Why not the `httpx-aiohttp` package: its error map turns every `aiohttp.ClientConnectionError` — a server
that hung up after reading a request, a read timeout — into `httpx.ConnectTimeout`, which says "never
sent". For a submit that would mean sending a paid request twice. Here an error is "not sent" only when
aiohttp could not open the connection (`ClientConnectorError`, a connect or pool timeout); everything
after that is ambiguous (`httpx.ReadError`, `ReadTimeout`, `RemoteProtocolError`) and the submit path
finds out instead of guessing (see `_runner.JobRunner._submit`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from typing import NamedTuple

import aiohttp
import httpx

# A result video is read in pieces of up to 1 MiB (aiohttp's buffer per connection, 2 MiB at most before it
# stops reading the socket): 0.80–0.87× the CPU of 64 KiB pieces per 20 MB download (bench/bench_transport.py,
# interleaved rounds); each piece still goes to disk as it arrives
_CHUNK = 1 << 20


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """aiohttp's errors as the httpx errors the retry and submit logic classify (`_http.NOT_SENT` /
    `_http.AMBIGUOUS`). Order matters: the connect-time classes are subclasses of the later ones."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # connecting, or waiting for a pooled connection
        raise httpx.ConnectTimeout(f"{what}: {exc or 'connect timeout'}") from exc
    except aiohttp.ClientConnectorError as exc:  # DNS, refused, TLS handshake: nothing was sent
        raise httpx.ConnectError(f"{what}: {exc}") from exc
    except (aiohttp.ServerTimeoutError, TimeoutError) as exc:  # the request may have arrived
        raise httpx.ReadTimeout(f"{what}: {exc or 'read timeout'}") from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(f"{what}: {exc or 'server disconnected'}") from exc
    except (aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
        raise httpx.ReadError(f"{what}: {exc}") from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(f"{what}: {exc}") from exc
    except aiohttp.ClientError as exc:  # anything else after connecting: may have been sent
        raise httpx.RemoteProtocolError(f"{what}: {type(exc).__name__}: {exc}") from exc


class Streamed(NamedTuple):
    """A GET's answer whose body is still to be read: the status, headers (as in `Got`) and the body's pieces."""

    status: int
    headers: dict[str, str]
    body: AsyncIterable[bytes]


class Got(NamedTuple):
    """A GET's answer, read whole: the status, headers (lower-case names, repeated ones joined by ", ", as
    httpx gives them) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


@functools.lru_cache(maxsize=64)
def _timeout(
    pool: float | None = None, connect: float | None = None, read: float | None = None, write: float | None = None
) -> aiohttp.ClientTimeout:
    """httpx's timeout (its extension's dict) as aiohttp's: one object per distinct setting."""
    return aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)


def _joined(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        k = k.lower()
        out[k] = f"{out[k]}, {v}" if k in out else v
    return out


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]


class _Body(httpx.AsyncByteStream):
    def __init__(self, resp: aiohttp.ClientResponse, what: str):
        self._resp, self._what = resp, what

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._what):
            async for chunk in self._resp.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._resp.release()  # back to the pool (or closed, when the body was not read to the end)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session, made on the loop of the first request (a Lab's loop thread) and closed with
    the client. `keepalive_s` matches httpx's default expiry: hosts close idle connections on their own
    schedule, and a request on a connection the host just closed is an ambiguous failure."""

    def __init__(self, *, max_connections: int = 100, keepalive_s: float = 5.0):
        self._max, self._keepalive = max_connections, keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max, keepalive_timeout=self._keepalive, ssl=httpx.create_ssl_context()
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # no state between requests: each says who it is
                read_bufsize=_CHUNK,
                auto_decompress=False,  # httpx decodes, as with its own transport
                skip_auto_headers=("User-Agent", "Accept-Encoding"),  # httpx sets its own
                trust_env=False,
            )
        return self._session

    async def _open(
        self, method: str, url: str, headers: dict[str, str], timeout: dict[str, float | None], body: bytes | None
    ) -> tuple[aiohttp.ClientResponse, str]:
        """A request sent, its status and headers read; redirects not followed: the caller sends a redirected
        request again through httpx, which follows it and drops the key on another host. Errors map as in
        `handle_async_request` (a submit's never-sent / ambiguous split depends on it)."""
        what = f"{method} {_host(url)}"
        with _mapped(what):
            resp = await self._ensure().request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=_timeout(**timeout),
                compress=None,
            )
        return resp, what

    async def fetch(
        self,
        url: str,
        headers: dict[str, str],
        timeout: dict[str, float | None],
        method: str = "GET",
        body: bytes | None = None,
    ) -> Got:
        """A request whose body is bytes (or none), its answer read whole, without httpx's request and response
        objects around it: the Lab's polls, submits and cancels (`_http.Http.send`; ~0.2 ms of CPU less per
        request, bench/README.md)."""
        resp, what = await self._open(method, url, headers, timeout, body)
        try:
            with _mapped(what):
                body = await resp.read()
        finally:
            resp.release()
        return Got(resp.status, _joined(resp.headers), body)

    @contextlib.asynccontextmanager
    async def stream(
        self, url: str, headers: dict[str, str], timeout: dict[str, float | None]
    ) -> AsyncIterator[Streamed]:
        """A GET whose body is read as it arrives, without httpx's objects around it: a result download
        (`_http.Http.fetch_into`)."""
        resp, what = await self._open("GET", url, headers, timeout, None)
        try:
            yield Streamed(resp.status, _joined(resp.headers), _Body(resp, what))
        finally:
            resp.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._ensure()
        timeout = _timeout(**request.extensions.get("timeout", {}))
        what = f"{request.method} {request.url.host}"
        body = await request.aread()  # uploads are built in memory (`inputs.py`): nothing to stream
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"]
        with _mapped(what):
            resp = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,  # httpx follows them (and drops the key on another host)
                timeout=timeout,
                compress=None,
            )
        return httpx.Response(
            resp.status,
            headers=resp.raw_headers,
            stream=_Body(resp, what),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (resp.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
