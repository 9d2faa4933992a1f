"""Benchmark (not a test): client CPU per request on the request path alone — httpx on httpcore (httpx's own
transport), httpx on aiohttp (wanlab's `_transport.AiohttpTransport`, the default), the Lab's own `Http.send`
over it, and aiohttp alone — 50
concurrent callers GETting a task's status from the sim in another process (`_common.SimProcess`).

    python bench/bench_transport.py            # 3,000 requests per contender
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
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


async def _wanlab(url: str, n: int, c: int) -> float:
    """The Lab's own path: `_http.Http.send` (the key added at send time, its URL parsed once) on aiohttp."""
    from wanlab._http import Http
    from wanlab.limits import Limits
    from wanlab.providers.base import HttpRequest
    from wanlab.secret import Secret

    http = Http(Secret("sk-bench-transport"), Limits(submits_per_s=200, queries_per_s=100_000, concurrent_jobs=c))
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
    write_json(args.out, {"benchmark": "client CPU per request by transport", "cpu_ms_per_request":
                          {k: round(v, 3) for k, v in rows.items()}, "requests": args.requests,
                          "concurrency": args.concurrency, "machine": machine(load0)})


if __name__ == "__main__":
    main()
