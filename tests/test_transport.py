"""The default transport (aiohttp under httpx) classifies failures the way the money rules need: "never
sent" only when no connection was made; a request that may have reached the host is ambiguous, so a submit
is looked for, never re-sent blind. Raw asyncio servers play the host's failures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest

from wanlab._http import AMBIGUOUS, NOT_SENT, Http
from wanlab._transport import AiohttpTransport
from wanlab.limits import Limits
from wanlab.providers.base import HttpRequest
from wanlab.secret import Secret

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.AbstractServer, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _post(url: str, timeout: float = 5.0) -> httpx.Response:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(timeout)) as client:
        return await client.post(url + "/submit", json={"model": "wan2.7-t2v"})


async def _answer_with(head: bytes, body: bytes, seen: list[bytes]) -> Handler:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                seen.append(await _read_request(reader))
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            writer.write(head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    return answer


def test_refused_connection_is_never_sent():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(NOT_SENT):
        asyncio.run(_post(url))


def test_host_hangs_up_after_reading_the_request_is_ambiguous():
    seen: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        writer.close()

    async def main() -> None:
        server, url = await _serve(hang_up)
        async with server:
            await _post(url)

    with pytest.raises(AMBIGUOUS) as caught:
        asyncio.run(main())
    assert not isinstance(caught.value, NOT_SENT)  # the body arrived: re-sending it could pay twice
    assert seen and b'"wan2.7-t2v"' in seen[0]


def test_no_answer_within_the_read_timeout_is_ambiguous():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(30)

    async def main() -> None:
        server, url = await _serve(silent)
        async with server:
            await _post(url, timeout=0.2)

    with pytest.raises(AMBIGUOUS) as caught:
        asyncio.run(main())
    assert isinstance(caught.value, httpx.ReadTimeout)
    assert not isinstance(caught.value, NOT_SENT)


def test_answers_keep_their_bytes_headers_and_no_cookies():
    requests: list[bytes] = []
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: acw=1; Path=/\r\nX-Request-Id: r-1\r\n"

    async def main() -> list:
        server, url = await _serve(await _answer_with(head, b'{"output": {"task_status": "RUNNING"}}', requests))
        async with server:
            http = Http(Secret("sk-transport-test-1234"), Limits(submits_per_s=5, queries_per_s=20, concurrent_jobs=5))
            try:
                out = []
                for _ in range(2):
                    resp = await http.send(HttpRequest("GET", url + "/tasks/t-1", route="query"))
                    out.append(resp)
                return out
            finally:
                await http.aclose()

    first, second = asyncio.run(main())
    assert first.status == 200 and first.json() == {"output": {"task_status": "RUNNING"}}
    assert first.header("X-Request-Id") == "r-1"
    assert len(requests) == 2
    assert b"authorization: bearer sk-transport-test-1234" in requests[0].lower()
    assert b"cookie" not in requests[1].lower()  # a host's cookie is not carried to the next request


# -- the direct path: a Lab's polls and submits skip httpx's objects on the default transport ------------------

def _http(**kw) -> Http:
    return Http(Secret("sk-transport-test-1234"), Limits(submits_per_s=5, queries_per_s=20, concurrent_jobs=5), **kw)


SUBMIT_HEADERS = {"Content-Type": "application/json", "X-DashScope-Async": "enable"}


def _submit(url: str) -> HttpRequest:
    return HttpRequest("POST", url + "/submit", "submit", headers=SUBMIT_HEADERS, json={"model": "wan2.7-t2v"})


def test_a_request_answers_the_same_on_the_direct_path_as_through_httpx():
    """Status, headers (lower-case names, a repeated one joined as httpx joins it), body; the key only on a
    request marked `auth`; the same request headers but Accept-Encoding (nothing decodes on the direct path),
    and a submit's body byte for byte."""
    seen: list[bytes] = []
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: r-1\r\nVary: a\r\nVary: b\r\n"
            b"Retry-After: 3\r\n")
    body = '{"output": {"task_status": "RUNNING", "note": "ünï"}}'.encode()

    async def main() -> list:
        server, url = await _serve(await _answer_with(head, body, seen))
        async with server:
            direct, through = _http(), _http(transport=AiohttpTransport())   # an explicit transport: httpx's path
            try:
                out = []
                for http in (direct, through):
                    out.append(await http.send(HttpRequest("GET", url + "/tasks/t-1", route="query")))
                    out.append(await http.send(HttpRequest("GET", url + "/x", route="download", auth=False)))
                    out.append(await http.send(_submit(url)))
                return out
            finally:
                await direct.aclose()
                await through.aclose()

    got = asyncio.run(main())
    assert got[:3] == got[3:]                               # HttpResponse: status, headers, body
    assert got[0].headers["vary"] == "a, b" and got[0].header("Retry-After") == "3" and got[0].body == body
    lines = [{ln.split(b":", 1)[0].lower() for ln in r.split(b"\r\n")[1:] if b":" in ln} for r in seen]
    for direct, through in ((0, 3), (1, 4), (2, 5)):       # the direct path sends what httpx sends, but that
        assert lines[direct] | {b"accept-encoding"} == lines[through]
    for i in (0, 2, 3, 5):
        assert b"bearer sk-transport-test-1234" in seen[i].lower()
    assert b"authorization" not in seen[1].lower() and b"authorization" not in seen[4].lower()
    assert seen[2].startswith(b"POST /submit ") and b"x-dashscope-async: enable" in seen[2].lower()
    assert seen[2].split(b"\r\n\r\n", 1)[1] == seen[5].split(b"\r\n\r\n", 1)[1] == b'{"model": "wan2.7-t2v"}'


def test_a_redirected_get_is_sent_again_through_httpx_and_the_key_stays_home():
    home_seen: list[bytes] = []
    away_seen: list[bytes] = []
    body = b'{"output": {"task_status": "SUCCEEDED"}}'

    async def main() -> object:
        away, away_url = await _serve(await _answer_with(b"HTTP/1.1 200 OK\r\n", body, away_seen))
        moved = f"HTTP/1.1 302 Found\r\nLocation: {away_url}/there\r\n".encode()
        home, home_url = await _serve(await _answer_with(moved, b"", home_seen))
        async with home, away:
            http = _http()
            try:
                return await http.send(HttpRequest("GET", home_url + "/tasks/t-1", route="query"))
            finally:
                await http.aclose()

    resp = asyncio.run(main())
    assert resp.status == 200 and resp.body == body
    assert len(home_seen) == 2                              # the direct GET, then httpx's, which followed …
    assert len(away_seen) == 1 and b"authorization" not in away_seen[0].lower()   # … without the key elsewhere


def test_a_redirected_submit_is_not_sent_again():
    seen: list[bytes] = []

    async def main() -> object:
        moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\n"
        server, url = await _serve(await _answer_with(moved, b"", seen))
        async with server:
            http = _http()
            try:
                return await http.send(_submit(url))
            finally:
                await http.aclose()

    resp = asyncio.run(main())
    assert resp.status == 307 and len(seen) == 1            # the body left once; the 3xx is the caller's to read


def test_the_direct_path_classifies_failures_as_the_transport_does():
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.close()

    async def send(url: str, submit: bool) -> object:
        http = _http()
        try:
            return await http.send(_submit(url) if submit else HttpRequest("GET", url + "/tasks/t-1", route="query"))
        finally:
            await http.aclose()

    async def hung(submit: bool) -> object:
        server, url = await _serve(hang_up)
        async with server:
            return await send(url, submit)

    for submit in (False, True):  # a submit that may have reached the host is looked for, never re-sent blind
        with pytest.raises(NOT_SENT):
            asyncio.run(send(f"http://127.0.0.1:{_free_port()}", submit))
        with pytest.raises(AMBIGUOUS) as caught:
            asyncio.run(hung(submit))
        assert not isinstance(caught.value, NOT_SENT)


def test_a_given_transport_sees_every_get():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    async def main() -> object:
        http = _http(transport=httpx.MockTransport(handler))
        try:
            return await http.send(HttpRequest("GET", "http://host.test/tasks/t-1", route="query"))
        finally:
            await http.aclose()

    assert asyncio.run(main()).json() == {"ok": True}
    assert len(seen) == 1 and seen[0].headers["authorization"] == "Bearer sk-transport-test-1234"


# -- downloads: streamed to disk on the direct path too ----------------------------------------------------------

def _fetch(url: str, part, **kw):
    async def main():
        http = _http(**kw)
        try:
            return await http.fetch_into(url, part)
        finally:
            await http.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("path", ["direct", "httpx"])
def test_a_download_resumes_with_range_and_reads_the_same_on_both_paths(tmp_path, path):
    seen: list[bytes] = []
    video = bytes(range(256)) * 40
    kw = {} if path == "direct" else {"transport": AiohttpTransport()}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await _read_request(reader)
        seen.append(req)
        start = int(req.lower().split(b"range: bytes=")[1].split(b"-")[0]) if b"range:" in req.lower() else 0
        head = (b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\n" % (start, len(video) - 1, len(video))
                if start else b"HTTP/1.1 200 OK\r\n")
        part = video[start:]
        writer.write(head + b"Content-Length: %d\r\n\r\n" % len(part) + part)
        await writer.drain()
        writer.close()

    async def serve():
        server, url = await _serve(answer)
        async with server:
            http = _http(**kw)
            try:
                target = tmp_path / "v.part"
                target.write_bytes(video[:1000])                  # a cut pass left 1000 bytes
                return await http.fetch_into(url + "/result.mp4?Signature=s", target), target
            finally:
                await http.aclose()

    got, target = asyncio.run(serve())
    assert got.status == 206 and got.total == len(video) and target.read_bytes() == video
    assert b"range: bytes=1000-" in seen[0].lower()
    assert b"authorization" not in seen[0].lower()             # a result URL never gets the key


def test_a_download_error_keeps_its_headers_under_lower_case_names_on_both_paths(tmp_path):
    """The download's retry reads Retry-After from these (it looked for "Retry-After" in a dict with lower-case
    names, so a host's 503 with Retry-After was retried on the backoff instead)."""
    head = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Type: text/plain\r\n"

    async def main(kw):
        server, url = await _serve(await _answer_with(head, b"slow down " * 50, []))
        async with server:
            http = _http(**kw)
            try:
                return await http.fetch_into(url + "/result.mp4", tmp_path / "x.part")
            finally:
                await http.aclose()

    for kw in ({}, {"transport": AiohttpTransport()}):
        got = asyncio.run(main(kw))
        assert got.status == 503 and got.headers["retry-after"] == "7"
        assert got.body == ("slow down " * 50)[:300] and got.total is None
        assert not (tmp_path / "x.part").exists()               # an error answer writes nothing


def test_a_redirected_download_is_followed_through_httpx(tmp_path):
    away_seen: list[bytes] = []
    video = b"\x00\x00\x00\x18ftypmp42" * 100

    async def main():
        away, away_url = await _serve(await _answer_with(b"HTTP/1.1 200 OK\r\n", video, away_seen))
        moved = f"HTTP/1.1 302 Found\r\nLocation: {away_url}/there.mp4\r\n".encode()
        home, home_url = await _serve(await _answer_with(moved, b"", []))
        async with home, away:
            http = _http()
            try:
                return await http.fetch_into(home_url + "/result.mp4", tmp_path / "r.part")
            finally:
                await http.aclose()

    got = asyncio.run(main())
    assert got.status == 200 and (tmp_path / "r.part").read_bytes() == video and len(away_seen) == 1
