"""Benchmark the simulator renderer (wanlab.sim.render).

Times render() for t2v and i2v at 832x480, 1280x720 and 1920x1080 (5 s) and
1920x1080 x 15 s: best and median of N runs, plus the realtime ratio
(seconds of video per second of wall time, from the best run), and t2v 720P x 5 s
with a 2,500-character prompt without spaces (text layout must stay linear).  For contrast it
also times, once, the "obvious" approach at 720P x 5 s: every frame drawn as an
RGB picture with PIL (background crop + per-frame text) and converted to
yuv420p by PyAV/swscale before encoding with the same x264 settings.

Usage:  python bench/bench_render.py [--runs 3] [--out bench/results/render.json]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, photo_jpeg, time_runs, write_json  # noqa: E402

from wanlab.sim import render as R  # noqa: E402

CASES: list[tuple[int, int, float]] = [
    (832, 480, 5.0),
    (1280, 720, 5.0),
    (1920, 1080, 5.0),
    (1920, 1080, 15.0),
]
MODES = ("t2v", "i2v")
PROMPT = ("A red fox trots across a snowy forest clearing at dawn, breath visible in the cold "
          "air, soft golden backlight, shallow depth of field, cinematic tracking shot")


LONG_PROMPT = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2500))


def spec(mode: str, width: int, height: int, duration: float, image: bytes) -> R.RenderSpec:
    return R.RenderSpec(mode=mode, prompt=PROMPT, seed=42, width=width, height=height,
                        duration=duration, model="wan2.5-bench",
                        images=(image,) if mode == "i2v" else ())


def render_rgb_baseline(width: int, height: int, duration: float, fps: int = 30) -> bytes:
    """The approach render.py avoids: full-frame PIL drawing + RGB->YUV per frame."""
    n = round(duration * fps)
    cw, ch = int(width * 1.16) // 2 * 2, int(height * 1.16) // 2 * 2
    background = R._procedural_rgb(42, cw, ch)  # same content as t2v, for a fair comparison
    body = ImageFont.load_default(size=max(9, round(min(width, height) / 34)))
    title = ImageFont.load_default(size=round(max(9, round(min(width, height) / 34)) * 1.7))
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        st = c.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.options = {"preset": "ultrafast", "crf": str(R._CRF), "threads": str(R._X264_THREADS)}
        for i in range(n):
            t = i / fps
            ox = int((cw - width) * (0.5 + 0.5 * np.sin(t / 1.3)))
            oy = int((ch - height) * (0.5 + 0.5 * np.sin(t / 1.7)))
            img = Image.fromarray(background[oy:oy + height, ox:ox + width])
            draw = ImageDraw.Draw(img, "RGBA")
            draw.rectangle((0, 0, width, height // 6), fill=(0, 0, 0, 128))
            draw.text((10, 8), "SIMULATION", font=title, fill=(255, 255, 255))
            draw.text((10, 8 + title.size * 1.3), f"seed 42 | {width}x{height} | {duration:g}s",
                      font=body, fill=(255, 255, 255))
            draw.text((10, 8 + title.size * 1.3 + body.size * 1.3), "prompt: " + PROMPT[:80],
                      font=body, fill=(255, 255, 255))
            draw.rectangle((0, height - 40, 200, height), fill=(0, 0, 0, 128))
            draw.text((10, height - 32), f"frame {i + 1}/{n}", font=body, fill=(255, 255, 255))
            frame = av.VideoFrame.from_image(img)  # PyAV converts rgb24 -> yuv420p on encode
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            c.mux(st.encode(frame))
        c.mux(st.encode(None))
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "render.json")
    args = ap.parse_args()
    load0 = os.getloadavg()

    image = photo_jpeg()
    R.render(spec("t2v", 320, 240, 0.5, image))  # warm-up: imports, font cache, x264 init

    rows = []
    for width, height, duration in CASES:
        for mode in MODES:
            s = spec(mode, width, height, duration, image)
            data = R.render(s)
            info = R.probe(data)
            assert (info["width"], info["height"], info["frames"]) == \
                (width, height, round(duration * 30)), info
            times = time_runs(lambda: R.render(s), args.runs)
            best, median = min(times), statistics.median(times)
            rows.append({"mode": mode, "width": width, "height": height, "duration_s": duration,
                         "frames": info["frames"], "best_s": round(best, 4),
                         "median_s": round(median, 4), "runs_s": [round(t, 4) for t in times],
                         "realtime_x": round(duration / best, 2), "mp4_bytes": len(data)})
            print(f"  {mode:4} {width}x{height} {duration:>4g}s  best {best:.3f}s", flush=True)

    # Alternative approach, one run at 720P x 5 s, next to render()'s t2v figure.
    t0 = time.perf_counter()
    alt = render_rgb_baseline(1280, 720, 5.0)
    alt_s = time.perf_counter() - t0
    assert R.probe(alt)["frames"] == 150
    for row in rows:
        if (row["mode"], row["width"], row["height"], row["duration_s"]) == ("t2v", 1280, 720, 5.0):
            row["alt_rgb_pil_s"] = round(alt_s, 4)
            row["alt_over_yuv"] = round(alt_s / row["best_s"], 2)

    # A 2,500-character prompt without spaces: the text layout once made this ~45 s; now it should
    # cost what the short prompt does (the banner shows only what fits).
    long_spec = R.RenderSpec(mode="t2v", prompt=LONG_PROMPT, seed=42, width=1280, height=720,
                             duration=5.0, model="wan2.5-bench")
    long_times = time_runs(lambda: R.render(long_spec), args.runs)
    long_row = {"case": "t2v 1280x720 5 s, 2,500-char unspaced prompt",
                "best_s": round(min(long_times), 4), "median_s": round(statistics.median(long_times), 4)}
    print(f"  long prompt (2,500 chars, no spaces) t2v 1280x720 5s  best {min(long_times):.3f}s", flush=True)

    header = (f"{'mode':5} {'size':>10} {'dur':>5} {'frames':>6} {'best s':>8} {'median s':>9} "
              f"{'x realtime':>10} {'alt RGB s':>10} {'alt/yuv':>8}")
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        alt_col = f"{r['alt_rgb_pil_s']:>10.3f} {r['alt_over_yuv']:>7.2f}x" \
            if "alt_rgb_pil_s" in r else f"{'':>10} {'':>8}"
        print(f"{r['mode']:5} {str(r['width']) + 'x' + str(r['height']):>10} "
              f"{r['duration_s']:>5g} {r['frames']:>6} {r['best_s']:>8.3f} "
              f"{r['median_s']:>9.3f} {r['realtime_x']:>9.2f}x {alt_col}")

    result = {
        "benchmark": "wanlab.sim.render",
        "runs_per_case": args.runs,
        "machine": machine(load0, av=av.__version__, numpy=np.__version__, x264_threads=R._X264_THREADS),
        "alternative": {"approach": "per-frame PIL RGB drawing, PyAV rgb24->yuv420p",
                        "case": "t2v-like 1280x720 x 5 s, one run", "seconds": round(alt_s, 4)},
        "results": rows,
        "long_prompt": long_row,
    }
    write_json(args.out, result)


if __name__ == "__main__":
    main()
