"""Benchmark (not a test): client CPU per request on the request path alone — httpx on httpcore (httpx's own
transport), httpx on aiohttp (wanlab's `_transport.AiohttpTransport`, the default), the Lab's own `Http.send`
over it, and aiohttp alone — 50
concurrent callers GETting a task's status from the sim in another process (`_common.SimProcess`).

And a result download's CPU: a 20 MB file from a local `http.server` (another process) through
`Http.fetch_into`, aiohttp reading in 64 KiB pieces vs 1 MiB (wanlab's), interleaved rounds.

    python bench/bench_transport.py            # 3,000 requests per contender, 8 × 5 downloads per piece size
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, SimProcess, cpu_s, machine, write_json  # noqa: E402


async def _httpx(url: str, n: int, c: int, transport) -> float:
    import httpx

    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        async def worker() -> None:
            for _ in range(n // c):
                (await client.get(url, headers={"Authorization": "Bearer sk-bench"})).json()

        await worker()  # warm: connections, imports
        c0 = cpu_s()
        await asyncio.gather(*(worker() for _ in range(c)))
        return (cpu_s() - c0) / n * 1000


def _lab_http(concurrency: int):
    """The Lab's own `_http.Http` (the key added at send time) on its default transport, limits out of the way."""
    from wanlab._http import Http
    from wanlab.limits import Limits
    from wanlab.secret import Secret

    return Http(Secret("sk-bench-transport"),
                Limits(submits_per_s=200, queries_per_s=100_000, concurrent_jobs=concurrency))


async def _wanlab(url: str, n: int, c: int) -> float:
    """The Lab's own path: `Http.send` (its URL parsed once) on aiohttp."""
    from wanlab.providers.base import HttpRequest

    http = _lab_http(c)
    req = HttpRequest("GET", url, route="query")
    try:
        async def worker() -> None:
            for _ in range(n // c):
                (await http.send(req)).json()

        await worker()
        c0 = cpu_s()
        await asyncio.gather(*(worker() for _ in range(c)))
        return (cpu_s() - c0) / n * 1000
    finally:
        await http.aclose()


async def _download(url: str, part: Path, n: int, size: int) -> float:
    """CPU ms per download of `url` into `part` by the Lab's `Http.fetch_into` (after one warm-up)."""
    http = _lab_http(5)
    try:
        c0 = 0.0
        for i in range(n + 1):
            if i == 1:
                c0 = cpu_s()
            await http.fetch_into(url, part)
            assert part.stat().st_size == size
            part.unlink()
        return (cpu_s() - c0) / n * 1000
    finally:
        await http.aclose()


def download_rounds(rounds: int, per_round: int, mb: int) -> dict[str, list[float]]:
    import wanlab._transport as transport

    pieces = {"64 KiB pieces": 1 << 16, "1 MiB pieces (wanlab's)": 1 << 20}
    out: dict[str, list[float]] = {k: [] for k in pieces}
    default = transport._CHUNK
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "video.bin").write_bytes(os.urandom(mb * 1_000_000))
        server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", d],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            port = int(server.stdout.readline().split(" port ")[1].split()[0])
            url = f"http://127.0.0.1:{port}/video.bin"
            for _ in range(50):
                try:
                    urllib.request.urlopen(url, timeout=2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            for _ in range(rounds):
                for name, piece in pieces.items():
                    transport._CHUNK = piece  # read by the transport when it opens its session
                    out[name].append(asyncio.run(_download(url, Path(d) / "part", per_round, mb * 1_000_000)))
        finally:
            transport._CHUNK = default
            server.terminate()
            server.communicate()
    for name, v in out.items():
        print(f"  download {mb} MB, {name}: median {statistics.median(v):.1f} ms CPU", flush=True)
    return out


async def _aiohttp(url: str, n: int, c: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async def worker() -> None:
            for _ in range(n // c):
                async with session.get(url, headers={"Authorization": "Bearer sk-bench"}) as resp:
                    await resp.json()

        await worker()
        c0 = cpu_s()
        await asyncio.gather(*(worker() for _ in range(c)))
        return (cpu_s() - c0) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--download-mb", type=int, default=20)
    ap.add_argument("--download-rounds", type=int, default=8)
    ap.add_argument("--out", type=Path, default=RESULTS / "transport.json")
    args = ap.parse_args()
    from wanlab._transport import AiohttpTransport

    load0 = os.getloadavg()
    sim = SimProcess(time_scale=0.01, seed=1, dashscope_submits_per_s=None, dashscope_queries_per_s=None)
    try:
        url = sim.url + "/api/v1/tasks/no-such-task"  # the host's UNKNOWN answer: a small JSON body
        n, c = args.requests, args.concurrency
        rows = {
            "httpx on httpcore": asyncio.run(_httpx(url, n, c, None)),
            "httpx on aiohttp (wanlab's default)": asyncio.run(_httpx(url, n, c, AiohttpTransport())),
            "wanlab's Http.send (httpx on aiohttp, as a Lab sends)": asyncio.run(_wanlab(url, n, c)),
            "aiohttp alone": asyncio.run(_aiohttp(url, n, c)),
        }
    finally:
        sim.stop()
    base = rows["httpx on httpcore"]
    print(f"CPU per request, {args.requests} GETs from {args.concurrency} concurrent callers")
    print("| request path | CPU ms/request | ratio |")
    print("|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.3f} | {ms / base:.2f}× |")
    downloads = download_rounds(args.download_rounds, 5, args.download_mb)
    print(f"| result download, {args.download_mb} MB | CPU ms (median of {args.download_rounds} rounds) | ratio |")
    print("|---|---|---|")
    first = statistics.median(next(iter(downloads.values())))
    for name, v in downloads.items():
        print(f"| {name} | {statistics.median(v):.1f} | {statistics.median(v) / first:.2f}× |")
    write_json(args.out, {"benchmark": "client CPU per request by transport", "cpu_ms_per_request":
                          {k: round(v, 3) for k, v in rows.items()},
                          "download_cpu_ms": {k: [round(x, 2) for x in v] for k, v in downloads.items()},
                          "download_mb": args.download_mb, "requests": args.requests,
                          "concurrency": args.concurrency, "machine": machine(load0)})


if __name__ == "__main__":
    main()
