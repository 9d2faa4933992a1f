"""Known defects rendered on purpose, at a strength s in 0..1 (0 = clean; every effect grows with s),
so quality checks have ground truth. All of them work on the yuv420p planes of the frame being built
and draw their randomness from the spec's seed only (same spec -> same bytes):

``drift``    the picture moves away from its input: a zoom-in about the centre plus a hazy colour
             tint (seeded hue), already s x 0.5 of the full amount at frame 0 and the full amount
             on the last frame: zoom 1 + 0.35 s, tint up to 30 s chroma levels, contrast and
             saturation pulled 30 s % toward mid-grey. Applied to the
             picture, before the overlay (which stays put): the SSIM between an i2v/flf2v input
             image and the first frame falls as s grows, and more so at the end.
``flicker``  an independent seeded global luma offset per frame, uniform within +-40 s levels,
             over the whole frame (overlay included).
``blur``     a Gaussian blur (PIL's, a box approximation) with sigma 6 s px at 720 lines, scaled with
             the output height; luma and (at half sigma) chroma, overlay included.
``frozen``   round(s x frames) frames in the middle are one frame exactly -- the whole finished
             frame, counter included -- like a stalled decoder; the timeline resumes afterwards.
             (x264 at CRF 28 refines the first repeats a little: decoded, they are identical or
             within a few levels, never the ~170+ level counter change of a moving frame.)

The pipeline asks `make()` for a `Defects` once per render; a clean spec gets None and no per-frame
work at all.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from .planes import Planes, copy_planes
from .spec import RenderSpec, seeded_rng

FLICKER_LEVELS = 40.0  # luma levels of offset at s = 1
BLUR_SIGMA_720 = 6.0  # px of sigma at s = 1 and 720 output lines
DRIFT_ZOOM = 0.35  # zoom 1 + DRIFT_ZOOM at full drift
DRIFT_TINT = 30.0  # chroma levels at full drift
DRIFT_HAZE = 0.3  # contrast pulled toward mid-grey at full drift
DRIFT_START = 0.5  # share of the full drift already present at frame 0


class Defects:
    """Per-frame effects for one render; `picture` runs before the overlay, `finish` after it, and
    `held` frames get `hold` instead of either (the frozen span)."""

    def __init__(self, spec: RenderSpec, n: int, strengths: dict[str, float]) -> None:
        self.n = n
        self.drift = strengths.get("drift", 0.0)
        self.flicker = strengths.get("flicker", 0.0)
        self.blur = strengths.get("blur", 0.0)
        self.offsets: np.ndarray | None = None
        if self.flicker:
            rng = seeded_rng(spec.seed, "defect-flicker")
            self.offsets = np.round(rng.uniform(-1.0, 1.0, n) * FLICKER_LEVELS * self.flicker).astype(np.int16)
        self.sigma = BLUR_SIGMA_720 * self.blur * spec.height / 720.0
        self.tint = np.zeros(2)
        if self.drift:
            rng = seeded_rng(spec.seed, "defect-drift")
            t = rng.uniform(-1.0, 1.0, 2)
            self.tint = t / max(1e-6, float(np.abs(t).max()))  # (u, v) direction, one at full
        span = round(strengths.get("frozen", 0.0) * n)
        # A span of one frame repeats nothing.
        self.freeze = range(0) if span < 2 else range((n - span) // 2, (n - span) // 2 + span)
        self.frozen: Planes | None = None

    # ---- before the overlay ----
    def picture(self, tgt: Planes, i: int) -> None:
        if self.drift:
            self._drift(tgt, i)

    def _drift(self, tgt: Planes, i: int) -> None:
        t = i / max(1, self.n - 1)
        a = self.drift * (DRIFT_START + (1.0 - DRIFT_START) * t)
        z = 1.0 + DRIFT_ZOOM * a
        haze = DRIFT_HAZE * a
        x = np.arange(256, dtype=np.float32)
        luts = [x * (1.0 - haze) + 128.0 * haze]
        luts += [x * (1.0 - haze) + 128.0 * haze + DRIFT_TINT * a * float(c) for c in self.tint]
        for plane, lut in zip(tgt, luts, strict=True):
            h, w = plane.shape
            # A zoom-in about the centre: the middle 1/z of the picture, scaled back up (PIL's
            # separable resize with a float box; an affine transform costs ~4x as much).
            mx, my = w * (1.0 - 1.0 / z) / 2.0, h * (1.0 - 1.0 / z) / 2.0
            img = Image.fromarray(np.ascontiguousarray(plane))
            img = img.resize((w, h), Image.Resampling.BILINEAR, box=(mx, my, w - mx, h - my))
            img = img.point(np.clip(np.round(lut), 0, 255).astype(np.uint8).tolist())
            np.copyto(plane, np.asarray(img))

    # ---- after the overlay ----
    def finish(self, tgt: Planes, i: int) -> None:
        if self.offsets is not None and self.offsets[i]:
            # Saturating add in place: clamp first so the uint8 add/subtract cannot wrap.
            o, y = int(self.offsets[i]), tgt[0]
            if o > 0:
                np.minimum(y, 255 - o, out=y)
                np.add(y, o, out=y)
            else:
                np.maximum(y, -o, out=y)
                np.subtract(y, -o, out=y)
        if self.sigma > 0:
            for k, plane in enumerate(tgt):
                sigma = self.sigma if k == 0 else self.sigma / 2.0
                np.copyto(plane, np.asarray(_gaussian(Image.fromarray(np.ascontiguousarray(plane)), sigma)))
        if self.freeze and i == self.freeze.start:
            self.frozen = (tgt[0].copy(), tgt[1].copy(), tgt[2].copy())

    # ---- the frozen span ----
    def held(self, i: int) -> bool:
        """Frame i repeats the frozen frame (the first frame of the span is rendered normally)."""
        return self.frozen is not None and i in self.freeze

    def hold(self, tgt: Planes) -> None:
        assert self.frozen is not None
        copy_planes(tgt, self.frozen)


def _gaussian(img: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur of an 'L' picture. Past sigma 2 it runs at reduced size (box down by sigma/1.5,
    blur, bilinear up; the inner sigma makes up the variance those two add): ~3x faster at 720P."""
    if sigma <= 2.0:
        return img.filter(ImageFilter.GaussianBlur(sigma))
    w, h = img.size
    sw, sh = max(1, round(w * 1.5 / sigma)), max(1, round(h * 1.5 / sigma))
    step = w / sw  # output pixels per small pixel
    # box (var step^2/12) + bilinear up (var step^2/6) + inner blur = sigma^2, in output pixels
    inner = (max(0.0, sigma * sigma - step * step / 4.0)) ** 0.5 / step
    small = img.resize((sw, sh), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(inner))
    return small.resize((w, h), Image.Resampling.BILINEAR)


def make(spec: RenderSpec, n: int) -> Defects | None:
    """The spec's defects for an n-frame render, or None when it has none (or only zero strengths)."""
    strengths = {name: float(s) for name, s in spec.defects if s > 0}
    return Defects(spec, n, strengths) if strengths else None
