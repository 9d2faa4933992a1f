"""The seeded picture behind t2v (and wherever no input exists): a procedural still whose palette
follows the prompt and layout the seed, panned along a Lissajous path with a glowing orb."""

from __future__ import annotations

import colorsys
import hashlib
import math

import numpy as np
from PIL import Image, ImageDraw

from .planes import Canvas, Planes, copy_planes, even, rgb_to_yuv
from .spec import seeded_rng


def procedural_rgb(seed: int, width: int, height: int, prompt: str = "") -> np.ndarray:
    """Background: gradient + soft colour blobs + a few crisp shapes. The palette follows the prompt
    and the layout the seed, so a prompt × seed grid reads like a real one: rows differ in content,
    columns in composition."""
    rng = seeded_rng(seed, "background")
    tint = np.random.default_rng(
        int.from_bytes(hashlib.sha256(f"wanlab-sim|palette|{prompt}".encode()).digest()[:8], "big")
    )
    palette = []
    for _ in range(5):
        r, g, b = colorsys.hsv_to_rgb(tint.random(), 0.45 + 0.45 * tint.random(), 0.45 + 0.5 * tint.random())
        palette.append(np.array([r, g, b], np.float32) * 255.0)
    # Smooth content only needs low resolution; the upscale is one resize.
    lw, lh = max(16, width // 8), max(16, height // 8)
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    xx /= lw
    yy /= lh
    ang = rng.random() * 2.0 * math.pi
    g = xx * math.cos(ang) + yy * math.sin(ang)
    g = (g - g.min()) / max(1e-6, float(g.max() - g.min()))
    img = palette[0] * (1.0 - g[..., None]) + palette[1] * g[..., None]
    aspect = width / height
    for k in range(6):
        cx, cy = rng.random(), rng.random()
        r = 0.08 + 0.25 * rng.random()
        wgt = np.exp(-(((xx - cx) * aspect) ** 2 + (yy - cy) ** 2) / (r * r))[..., None]
        img = img * (1.0 - 0.85 * wgt) + palette[2 + k % 3] * (0.85 * wgt)
    pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    pic = pic.resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(pic)
    lw_px = max(2, height // 120)
    for k in range(7):
        col = tuple(int(c) for c in np.clip(palette[k % 5] * 0.6 + 110, 0, 255))
        x0, y0 = rng.random() * width, rng.random() * height
        s = (0.05 + 0.15 * rng.random()) * height
        if k % 3 == 0:
            draw.ellipse((x0 - s, y0 - s, x0 + s, y0 + s), outline=col, width=lw_px)
        elif k % 3 == 1:
            draw.rectangle((x0 - s, y0 - s * 0.6, x0 + s, y0 + s * 0.6), outline=col, width=lw_px)
        else:
            draw.ellipse((x0 - s / 3, y0 - s / 3, x0 + s / 3, y0 + s / 3), fill=col)
    return np.asarray(pic)


class Background:
    """Seeded moving background: a Lissajous crop path over an oversized canvas plus a
    glowing orb, so every frame moves even when no input is given."""

    def __init__(self, seed: int, width: int, height: int, prompt: str = "") -> None:
        self.w, self.h = width, height
        cw, ch = even(width * 1.16), even(height * 1.16)
        self.canvas = Canvas(rgb_to_yuv(procedural_rgb(seed, cw, ch, prompt), cw, ch))
        rng = seeded_rng(seed, "motion")
        self.periods = 5.0 + 4.0 * rng.random(4)
        self.phases = rng.random(4) * 2.0 * math.pi
        r = max(4, min(width, height) // 12)
        d = np.hypot(*np.mgrid[-r:r, -r:r].astype(np.float32)) / r
        self.orb = (np.clip(1.0 - d, 0.0, 1.0) ** 0.6 * 235.0).astype(np.uint8)

    def draw(self, tgt: Planes, t: float) -> None:
        p, ph = self.periods, self.phases
        c = self.canvas
        fx = 0.5 + 0.5 * math.sin(2 * math.pi * t / p[0] + ph[0])
        fy = 0.5 + 0.5 * math.sin(2 * math.pi * t / p[1] + ph[1])
        copy_planes(tgt, c.crop(int(fx * (c.w - self.w)), int(fy * (c.h - self.h)), self.w, self.h))
        y = tgt[0]
        r = self.orb.shape[0] // 2
        cx = int(self.w * (0.5 + 0.38 * math.sin(2 * math.pi * t / (p[2] * 0.6) + ph[2])))
        cy = int(self.h * (0.58 + 0.28 * math.sin(2 * math.pi * t / (p[3] * 0.5) + ph[3])))
        x0, y0 = max(0, cx - r), max(0, cy - r)
        x1, y1 = min(self.w, cx + r), min(self.h, cy + r)
        if x1 > x0 and y1 > y0:
            region = y[y0:y1, x0:x1]
            np.maximum(region, self.orb[y0 - (cy - r) : y1 - (cy - r), x0 - (cx - r) : x1 - (cx - r)], out=region)
