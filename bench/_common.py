"""Helpers the bench scripts share (not a benchmark). Import it after putting bench/ on sys.path:

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import ROOT, ScaledTime, machine  # also puts the checkout's root on sys.path

`python bench/_common.py --serve '{...SimServer kwargs...}'` runs a sim in its own process (`SimProcess`).
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class ScaledTime:
    """Stands in for the `time` module inside an SDK module: `sleep(s)` sleeps `s × scale` real seconds."""

    def __init__(self, scale: float):
        self.scale = scale

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) * self.scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def photo_jpeg(width: int = 1920, height: int = 1080) -> bytes:
    """A deterministic photo-like input image (smooth colour field + fine noise), as JPEG: the stand-in
    for a user's photo in bench_render.py and bench_quality.py."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    low = (rng.random((height // 16, width // 16, 3)) * 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(low).resize((width, height), Image.BICUBIC)).astype(np.int16)
    img = np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile, p in [0, 1]."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p * len(xs))) - 1))]


def time_runs(fn: Any, runs: int) -> list[float]:
    """Wall seconds (perf_counter) of `runs` calls of fn()."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    vals = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            vals[line.split(":")[0]] = int(line.split()[1]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def cpu_s() -> float:
    """User + system CPU seconds of this process."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def cpu_by_thread() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread of this process, by thread name with trailing numbers
    dropped ("asyncio_3" → "asyncio": the to_thread pool), summed per name. Linux /proc; tick resolution
    (10 ms), so take it over many jobs. Threads that ended are missing: take it while they live."""
    import re
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = re.sub(r"[-_ ]?\d+$", "", names.get(int(tid), "other")).split(" ")[0]
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def machine(loadavg_at_start: tuple[float, ...] | None = None, **extra: Any) -> dict:
    """The machine block of a result JSON: load average at the start (pass `os.getloadavg()` taken before
    the run) and at the end, so a figure measured on a busy machine says so."""
    return {"cpus": os.cpu_count(), "loadavg_at_start": loadavg_at_start, "loadavg_at_end": os.getloadavg(),
            "python": platform.python_version(), "platform": platform.platform(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


def write_json(path: Path, result: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")


class SimProcess:
    """A `SimServer(**settings)` in a separate process (so only the client's CPU counts in this one)."""

    def __init__(self, **settings: Any):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", json.dumps(settings)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("URL "):
            self.proc.kill()
            raise RuntimeError(f"sim did not start: {line!r}")
        self.url = line.split()[1]

    def stats(self) -> dict:
        import httpx
        return httpx.get(self.url.rsplit("/api/v1", 1)[0] + "/_sim/stats", timeout=30).json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _serve(settings_json: str) -> None:
    from wanlab.sim import SimServer

    sim = SimServer(**json.loads(settings_json))
    sim.bind()
    print(f"URL {sim.dashscope_url()}", flush=True)
    sim.serve_forever("warning")


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--serve":
    _serve(sys.argv[2])
