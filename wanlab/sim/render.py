"""Deterministic MP4 renderer for the local WAN simulator (``wanlab sim``).

The simulator must answer every generation request with a *real*, playable
H.264 MP4 that visibly says "SIMULATION", shows what was asked for (prompt,
seed, resolution, duration, model) and makes use of the inputs (first/last
frame, grid picture, reference media, the video to edit or extend).  It also
has to be fast (a 720P x 5 s clip in well under a second on two cores) and
byte-for-byte reproducible, so that notebooks and tests can compare hashes.

Why frames are built directly as yuv420p planes
-----------------------------------------------
The obvious implementation -- draw every frame as an RGB picture with PIL and
let PyAV convert it -- spends most of its time outside the encoder: a full
frame PIL draw plus an RGB->YUV conversion (swscale) costs several
milliseconds per 1080P frame, which is as much as libx264 ``ultrafast``
needs to encode that frame.  Instead:

* every picture (seeded background, input image, grid tile, decoded video
  frame) is converted to yuv420p *once*, at slightly more than the output
  size, and motion is produced by moving an integer crop window over it
  (a slice, i.e. free) before one memcpy into the encoder's frame buffer;
* the numpy views we write into *are* the ``av.VideoFrame`` planes (their
  ``line_size`` padding is respected), so there is no extra copy;
* all text is rasterised once with PIL into small grayscale masks and
  composited into the Y plane with two cheap uint8 operations per frame; the
  frame counter is assembled from ten pre-rendered digit glyphs;
* frame synthesis runs in a producer thread while the encoder (which releases
  the GIL) runs in the caller's thread, so both cores are busy.

Determinism comes from a fixed x264 thread count (x264 is deterministic for
a fixed count), no wall-clock metadata in the container (``creation_time``
is never set, so ``mvhd``/``tkhd`` carry zero), and randomness that is only
ever drawn from generators seeded by sha256 of (salt, seed) -- never Python's
per-process salted ``hash()``.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import numbers
import queue
import re
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageDraw, ImageFont, ImageOps

__all__ = ["MODES", "RenderSpec", "render", "probe"]

MODES: tuple[str, ...] = ("t2v", "i2v", "flf2v", "grid9", "ref2v", "edit", "extend")

# x264 output is bit-exact for a *fixed* thread count (it is only non-deterministic
# with --non-deterministic), so pin it rather than letting it follow the core count.
# Two threads measured ~25-35% faster than one on the 2-core target, even with frame
# synthesis running concurrently in the producer thread.
_X264_THREADS = 2
_CRF = 28
_MAX_FRAMES = 36_000  # 20 min at 30 fps: far beyond any WAN request, guards typos.

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RenderSpec:
    mode: str  # "t2v" | "i2v" | "flf2v" | "grid9" | "ref2v" | "edit" | "extend"
    prompt: str
    seed: int
    width: int
    height: int
    duration: float  # seconds of output (may be fractional, e.g. 2.0..15.0)
    fps: int = 30
    model: str = ""
    # encoded image files (PNG/JPEG/WEBP/BMP) in order: i2v [first]; flf2v [first, last];
    # grid9 [one grid picture]; ref2v reference images; edit reference images
    images: tuple[bytes, ...] = ()
    # encoded video files (MP4) in order: ref2v reference videos; edit [the input video];
    # extend [first clip]
    videos: tuple[bytes, ...] = ()
    label: str = "SIMULATION"  # banner text


# --------------------------------------------------------------------------- helpers


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def _seed_int(seed: int, salt: str) -> int:
    # sha256 rather than hash(): hash() of str is salted per process.
    digest = hashlib.sha256(f"wanlab-sim|{salt}|{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _rng(seed: int, salt: str) -> np.random.Generator:
    return np.random.default_rng(_seed_int(seed, salt))


def _smooth(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def _n_frames(spec: RenderSpec) -> int:
    return max(1, round(spec.duration * spec.fps))


def _validate(spec: RenderSpec) -> None:
    if spec.mode not in MODES:
        raise ValueError(f"unknown mode {spec.mode!r}; expected one of {MODES}")
    for name in ("width", "height"):
        v = getattr(spec, name)
        if not isinstance(v, numbers.Integral) or v < 16 or v > 8192 or v % 2:
            raise ValueError(f"{name} must be an even integer in 16..8192, got {v!r}")
    if not isinstance(spec.fps, numbers.Integral) or not 1 <= spec.fps <= 240:
        raise ValueError(f"fps must be an integer in 1..240, got {spec.fps!r}")
    if not (isinstance(spec.duration, numbers.Real) and math.isfinite(spec.duration)
            and spec.duration > 0):
        raise ValueError(f"duration must be a positive number, got {spec.duration!r}")
    if _n_frames(spec) > _MAX_FRAMES:
        raise ValueError(f"too many frames: {_n_frames(spec)} > {_MAX_FRAMES}")


def _frame_planes(frame: av.VideoFrame) -> Planes:
    """Writable numpy views of a yuv420p frame's planes, padding cut off."""
    w, h = frame.width, frame.height
    views = []
    for k, plane in enumerate(frame.planes):
        pw, ph = (w, h) if k == 0 else ((w + 1) // 2, (h + 1) // 2)
        views.append(np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:ph, :pw])
    return views[0], views[1], views[2]


def _copy_planes(dst: Planes, src: Planes) -> None:
    for d, s in zip(dst, src):
        np.copyto(d, s)


def _rgb_to_yuv(rgb: np.ndarray, width: int, height: int,
                reformatter: VideoReformatter | None = None) -> Planes:
    """Scale an RGB array to (width, height) and convert to yuv420p in one swscale pass."""
    src = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    fmt = reformatter or VideoReformatter()
    out = fmt.reformat(src, width=width, height=height, format="yuv420p",
                       interpolation="BICUBIC")
    y, u, v = _frame_planes(out)
    return y.copy(), u.copy(), v.copy()


class _Canvas:
    """A yuv420p picture at least as large as the output; motion = moving crop window."""

    def __init__(self, planes: Planes) -> None:
        self.y, self.u, self.v = planes
        self.h, self.w = self.y.shape

    def crop(self, ox: int, oy: int, width: int, height: int) -> Planes:
        # Even offsets keep the half-resolution chroma window aligned with luma.
        ox = min(max(0, ox - ox % 2), self.w - width)
        oy = min(max(0, oy - oy % 2), self.h - height)
        cx, cy = ox // 2, oy // 2
        return (self.y[oy:oy + height, ox:ox + width],
                self.u[cy:cy + height // 2, cx:cx + width // 2],
                self.v[cy:cy + height // 2, cx:cx + width // 2])

    def pan(self, t: float, start: tuple[float, float], end: tuple[float, float],
            width: int, height: int) -> Planes:
        """Crop along a straight eased path; start/end are fractions of the free margin."""
        e = _smooth(t)
        fx = start[0] + (end[0] - start[0]) * e
        fy = start[1] + (end[1] - start[1]) * e
        return self.crop(int(round(fx * (self.w - width))), int(round(fy * (self.h - height))),
                         width, height)


def _cover_crop(img: Image.Image, width: int, height: int) -> Image.Image:
    """Centre-crop to the target aspect ratio at the source resolution (cheap)."""
    sw, sh = img.size
    target = width / height
    if sw / sh > target:
        cw = max(1, round(sh * target))
        x0 = (sw - cw) // 2
        return img.crop((x0, 0, x0 + cw, sh))
    ch = max(1, round(sw / target))
    y0 = (sh - ch) // 2
    return img.crop((0, y0, sw, y0 + ch))


def _image_canvas(img: Image.Image, width: int, height: int, scale: float) -> _Canvas:
    cw, ch = _even(width * scale), _even(height * scale)
    cropped = _cover_crop(img, cw, ch)
    return _Canvas(_rgb_to_yuv(np.asarray(cropped.convert("RGB")), cw, ch))


def _placeholder_image(data: bytes, what: str, width: int = 16, height: int = 9
                       ) -> Image.Image:
    """Deterministic stand-in for an input that does not decode: colours from its sha256.

    Built at the output aspect ratio so the cover-crop never cuts its caption off."""
    digest = hashlib.sha256(data).digest()
    if width >= height:
        pw, ph = 480, max(64, round(480 * height / width))
    else:
        pw, ph = max(160, round(480 * width / height)), 480
    cells = np.frombuffer(digest * 2, np.uint8)[:48].reshape(4, 4, 3)
    # Lift the palette so the placeholder is clearly a pattern, not a black frame.
    cells = (cells // 2 + 64).astype(np.uint8)
    arr = np.array(Image.fromarray(cells, "RGB").resize((pw, ph), Image.NEAREST))
    yy, xx = np.mgrid[0:ph, 0:pw]
    arr[((xx + yy) // 16) % 2 == 0] //= 2  # diagonal stripes: unmistakably synthetic
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    font = _font(15)
    y0 = ph // 2 - 24
    draw.rectangle((0, y0, pw, y0 + 48), fill=(0, 0, 0))
    draw.text((8, y0 + 4), f"undecodable {what}", fill=(255, 255, 255), font=font)
    draw.text((8, y0 + 24), f"sha256 {digest.hex()[:16]}", fill=(255, 255, 255), font=font)
    return img


def _load_image(data: bytes, width: int, height: int, what: str) -> tuple[Image.Image, bool]:
    """Decode an image file to RGB; (placeholder, False) when it does not decode."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            # draft() lets JPEG decode straight at a reduced scale: big phone photos
            # would otherwise dominate the render time.
            im.draft("RGB", (width * 2, height * 2))
            img = ImageOps.exif_transpose(im).convert("RGB")
            img.load()
        if img.width < 2 or img.height < 2:
            raise ValueError("image too small")
        return img, True
    except Exception:  # noqa: BLE001 - any decoder failure means "use the placeholder"
        return _placeholder_image(data, what, width, height), False


def _procedural_rgb(seed: int, width: int, height: int, prompt: str = "") -> np.ndarray:
    """Background: gradient + soft colour blobs + a few crisp shapes. The palette follows the prompt
    and the layout the seed, so a prompt × seed grid reads like a real one: rows differ in content,
    columns in composition."""
    rng = _rng(seed, "background")
    tint = np.random.default_rng(int.from_bytes(
        hashlib.sha256(f"wanlab-sim|palette|{prompt}".encode()).digest()[:8], "big"))
    palette = []
    for _ in range(5):
        r, g, b = colorsys.hsv_to_rgb(tint.random(), 0.45 + 0.45 * tint.random(),
                                      0.45 + 0.5 * tint.random())
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
    pic = pic.resize((width, height), Image.BICUBIC)
    draw = ImageDraw.Draw(pic)
    lw_px = max(2, height // 120)
    for k in range(7):
        col = tuple(int(c) for c in np.clip(palette[k % 5] * 0.6 + 110, 0, 255))
        x0, y0 = rng.random() * width, rng.random() * height
        s = (0.05 + 0.15 * rng.random()) * height
        if k % 3 == 0:
            draw.ellipse((x0 - s, y0 - s, x0 + s, y0 + s), outline=col, width=lw_px)
        elif k % 3 == 1:
            draw.rectangle((x0 - s, y0 - s * 0.6, x0 + s, y0 + s * 0.6), outline=col,
                           width=lw_px)
        else:
            draw.ellipse((x0 - s / 3, y0 - s / 3, x0 + s / 3, y0 + s / 3), fill=col)
    return np.asarray(pic)


class _Background:
    """Seeded moving background: a Lissajous crop path over an oversized canvas plus a
    glowing orb, so every frame moves even when no input is given."""

    def __init__(self, seed: int, width: int, height: int, prompt: str = "") -> None:
        self.w, self.h = width, height
        cw, ch = _even(width * 1.16), _even(height * 1.16)
        self.canvas = _Canvas(_rgb_to_yuv(_procedural_rgb(seed, cw, ch, prompt), cw, ch))
        rng = _rng(seed, "motion")
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
        _copy_planes(tgt, c.crop(int(fx * (c.w - self.w)), int(fy * (c.h - self.h)),
                                 self.w, self.h))
        y = tgt[0]
        r = self.orb.shape[0] // 2
        cx = int(self.w * (0.5 + 0.38 * math.sin(2 * math.pi * t / (p[2] * 0.6) + ph[2])))
        cy = int(self.h * (0.58 + 0.28 * math.sin(2 * math.pi * t / (p[3] * 0.5) + ph[3])))
        x0, y0 = max(0, cx - r), max(0, cy - r)
        x1, y1 = min(self.w, cx + r), min(self.h, cy + r)
        if x1 > x0 and y1 > y0:
            region = y[y0:y1, x0:x1]
            np.maximum(region, self.orb[y0 - (cy - r):y1 - (cy - r),
                                        x0 - (cx - r):x1 - (cx - r)], out=region)


# --------------------------------------------------------------------------- video input


class _VideoSource:
    """An input clip decoded lazily, frame by frame, into cover-fit output-size planes.

    Holding a decoded 1080P clip in memory would cost ~3 MB per frame, so frames are
    pulled from the decoder only as the output reaches them (indices are usually
    monotonic; going backwards re-opens the decoder)."""

    def __init__(self, data: bytes, width: int, height: int, blur: bool = False) -> None:
        self.data, self.w, self.h, self.blur = data, width, height, blur
        self.ok = False
        self.count = 0
        self.fps = 0.0
        self.src_size = (width, height)
        try:
            with av.open(io.BytesIO(data), "r") as c:
                vs = c.streams.video[0]
                self.fps = float(vs.average_rate or vs.guessed_rate or 0)
                count = vs.frames
                if count <= 0:
                    count = sum(1 for pkt in c.demux(vs) if pkt.size)
                    c.seek(0)
                first = next(c.decode(vs))
                self.src_size = (first.width, first.height)
                self.count = max(1, count)
                self.ok = first.width > 0 and first.height > 0
        except Exception:  # noqa: BLE001 - unplayable input -> placeholder
            self.ok = False
        if not self.fps or not math.isfinite(self.fps):
            self.fps = 30.0

    def _convert(self, frame: av.VideoFrame, fmt: VideoReformatter,
                 up: VideoReformatter) -> Planes:
        sw, sh = self.src_size
        s = max(self.w / sw, self.h / sh)
        iw, ih = max(self.w, _even(math.ceil(sw * s))), max(self.h, _even(math.ceil(sh * s)))
        if self.blur:
            # Area-average down then bilinear up: a box blur done inside swscale,
            # far cheaper than numpy cumulative sums at 1080P.
            frame = fmt.reformat(frame, width=_even(iw / 10), height=_even(ih / 10),
                                 format="yuv420p", interpolation="AREA")
            out = up.reformat(frame, width=iw, height=ih, format="yuv420p",
                              interpolation="BILINEAR")
        else:
            out = fmt.reformat(frame, width=iw, height=ih, format="yuv420p",
                               interpolation="BILINEAR")
        y, u, v = _frame_planes(out)
        ox, oy = ((iw - self.w) // 4) * 2, ((ih - self.h) // 4) * 2
        # Copy: the next reformat may reuse `out`'s buffers, and callers (extend's
        # cross-fade) hold a frame across calls.
        return (y[oy:oy + self.h, ox:ox + self.w].copy(),
                u[oy // 2:(oy + self.h) // 2, ox // 2:(ox + self.w) // 2].copy(),
                v[oy // 2:(oy + self.h) // 2, ox // 2:(ox + self.w) // 2].copy())

    def frames(self, indices: Iterable[int]) -> Iterator[Planes]:
        """Yield planes for each requested source frame index; past the end (or after a
        decode error) the last good frame is repeated."""
        # One reformatter per direction so swscale contexts are reused across frames.
        fmt, up = VideoReformatter(), VideoReformatter()
        container = None
        decoder: Iterator[av.VideoFrame] | None = None
        cur = -1  # index of the most recently decoded frame
        raw: av.VideoFrame | None = None
        planes: Planes | None = None
        planes_idx = -2
        exhausted = False
        try:
            for j in indices:
                if decoder is None or j < cur:
                    if container is not None:
                        container.close()
                    container = av.open(io.BytesIO(self.data), "r")
                    vs = container.streams.video[0]
                    vs.thread_type = "AUTO"
                    decoder = container.decode(vs)
                    cur, planes_idx, exhausted = -1, -2, False
                while cur < j and not exhausted:
                    try:
                        raw = next(decoder)
                        cur += 1
                    except StopIteration:
                        exhausted = True
                    except Exception:  # noqa: BLE001 - corrupt tail: hold last frame
                        exhausted = True
                if raw is not None and planes_idx != cur:
                    planes = self._convert(raw, fmt, up)
                    planes_idx = cur
                if planes is None:
                    raise ValueError("no decodable frame")
                yield planes
        finally:
            if container is not None:
                container.close()


# --------------------------------------------------------------------------- text overlay

# FreeType faces must not be used by two threads at once (measuring included). Rather than a
# process-wide lock -- which let one slow layout stall every other render -- each thread gets its
# own font objects: loading one costs ~0.1 ms and the glyph data is identical, so the output does
# not depend on which thread drew it.
_THREAD_FONTS = threading.local()

# No overlay shows more than a few hundred characters; cleaning megabytes of prompt only to throw
# them away would be the slow part, so text is clipped first, and says so.
_MAX_TEXT = 4096
_ELLIPSIS = "..."


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    fonts = getattr(_THREAD_FONTS, "by_size", None)
    if fonts is None:
        fonts = _THREAD_FONTS.by_size = {}
    font = fonts.get(size)
    if font is None:
        font = fonts[size] = ImageFont.load_default(size=size)
    return font


def _clean(text: str) -> str:
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + " " + _ELLIPSIS
    return re.sub(r"\s+", " ", "".join(ch if ch.isprintable() else " " for ch in text)).strip()


class _Advances:
    """Advance widths of single characters, each distinct one measured once per layout.

    A line's width is then a running sum (what FreeType's basic layout computes) instead of a
    re-measure of the whole line per candidate; `_fit` still checks each finished line once with
    the real measure, in case a font kerns."""

    def __init__(self, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> None:
        self.font = font
        self._cache: dict[str, float] = {}

    def char(self, ch: str) -> float:
        w = self._cache.get(ch)
        if w is None:
            w = self._cache[ch] = float(self.font.getlength(ch))
        return w

    def prefix(self, text: str, limit: float) -> tuple[int, float]:
        """(longest k with width(text[:k]) <= limit, that width); stops at the first misfit, so
        the cost is what fits, not the length of `text`."""
        total = 0.0
        for k, ch in enumerate(text):
            w = self.char(ch)
            if total + w > limit:
                return k, total
            total += w
        return len(text), total


def _fit(adv: _Advances, line: str, width: int, suffix: str = "", keep: int = 1) -> str:
    """Trim `line` until line + suffix really measures <= width (a no-op unless the font kerns)."""
    while len(line) > keep and adv.font.getlength(line + suffix) > width:
        line = line[:-1]
    return line


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int,
          max_lines: int) -> list[str]:
    """Greedy word wrap by rendered width; the last line is truncated with '...'.

    Linear in the text laid out, and layout stops once `max_lines` are full. (It used to
    re-measure every candidate prefix of an over-long word: a 2,500-character prompt without
    spaces took ~45 s.)"""
    adv = _Advances(font)
    words = _clean(text).split(" ") if text.strip() else [""]
    space = adv.char(" ")
    lines: list[str] = []
    line, line_w = "", 0.0
    for word in words:
        if len(lines) >= max_lines:
            break  # `line` holds more text: the last line gets the ellipsis
        k, word_w = adv.prefix(word, width - line_w - space if line else width)
        if line and k == len(word):
            line, line_w = f"{line} {word}", line_w + space + word_w
            continue
        if line:
            lines.append(line)
        line, line_w = _split_long(adv, word, width, lines, max_lines)
    lines.append(line)
    more = len(lines) > max_lines  # the pending line is never drawn: it only says "there is more"
    lines = [_fit(adv, ln, width) for ln in lines[:max_lines]]
    if more:
        lines[-1] = _ellipsize(adv, lines[-1], width)
    return lines


def _split_long(adv: _Advances, word: str, width: int, lines: list[str],
                max_lines: int) -> tuple[str, float]:
    """Break a word wider than the line where it stops fitting (at least one character per
    line), appending full lines; returns the remainder and its width."""
    while len(lines) < max_lines:
        k, w = adv.prefix(word, width)
        if k == len(word):
            return word, w
        if len(word) == 1:  # one glyph wider than the line: it gets a line of its own
            return word, adv.char(word)
        k = max(1, k)
        lines.append(word[:k])
        word = word[k:]
    return word, 0.0  # lines are full: the remainder only says "there is more"


def _ellipsize(adv: _Advances, last: str, width: int) -> str:
    k, _ = adv.prefix(last, width - adv.prefix(_ELLIPSIS, math.inf)[1])
    return _fit(adv, last[:k], width, _ELLIPSIS, keep=0).rstrip() + _ELLIPSIS


def _mask(width: int, height: int,
          items: list[tuple[int, int, str, ImageFont.FreeTypeFont | ImageFont.ImageFont]]
          ) -> np.ndarray:
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for x, y, text, font in items:
        draw.text((x, y), text, fill=255, font=font)
    return np.array(img, dtype=np.uint8)


def _panel(tgt: Planes, x0: int, y0: int, mask: np.ndarray) -> None:
    """Half-darken + desaturate a box and max-in white text: two uint8 ops per plane."""
    fh, fw = tgt[0].shape
    x0, y0 = max(0, x0 - x0 % 2), max(0, y0 - y0 % 2)
    # Clip to the frame (tiny outputs) keeping even sizes so chroma stays aligned.
    h = min(mask.shape[0], fh - y0) & ~1
    w = min(mask.shape[1], fw - x0) & ~1
    if h <= 0 or w <= 0:
        return
    y = tgt[0][y0:y0 + h, x0:x0 + w]
    np.right_shift(y, 1, out=y)
    np.maximum(y, mask[:h, :w], out=y)
    for c in tgt[1:]:
        region = c[y0 // 2:(y0 + h) // 2, x0 // 2:(x0 + w) // 2]
        np.right_shift(region, 1, out=region)
        np.add(region, 64, out=region)


class _Overlay:
    """Banner, frame counter and caption, rasterised once and composited per frame."""

    def __init__(self, spec: RenderSpec, n: int) -> None:
        w, h = spec.width, spec.height
        self.w, self.h, self.n = w, h, n
        s = max(9, round(min(w, h) / 34))
        self.body = _font(s)
        title = _font(round(s * 1.7))
        self.pad = pad = max(4, s // 2)
        self.lh = lh = round(s * 1.3)
        tlh = round(s * 1.7 * 1.2)
        inner = w - 2 * pad
        label = _clean(spec.label) or "SIMULATION"
        label_w = int(title.getlength(label + "  "))
        head = _wrap(f"{spec.mode} | model {_clean(spec.model) or '-'}", self.body,
                     max(1, inner - label_w), 1)[0]
        info = (f"seed {spec.seed} | {w}x{h} | {spec.duration:g}s | {spec.fps} fps | "
                f"{n} frames")
        info = _wrap(info, self.body, inner, 1)[0]
        prompt_lines = _wrap("prompt: " + (_clean(spec.prompt) or "(empty)"), self.body,
                             inner, 3 if h > w else 2)
        bh = min(_even(h * 0.6), _even(pad * 2 + tlh + lh * (1 + len(prompt_lines))))
        items = [(pad, pad, label, title),
                 (pad + label_w, pad + tlh - lh, head, self.body),
                 (pad, pad + tlh, info, self.body)]
        items += [(pad, pad + tlh + lh * (k + 1), line, self.body)
                  for k, line in enumerate(prompt_lines)]
        self.banner = _mask(w, bh, items)

        # Frame counter: "frame " plus ten digit glyphs and the "/N" suffix, all rendered
        # once; per frame only a few tiny patches are copied.
        self.ndig = len(str(n))
        cell = max(int(math.ceil(self.body.getlength(d))) for d in "0123456789")
        prefix, suffix = "frame ", f"/{n}"
        pw = int(math.ceil(self.body.getlength(prefix)))
        sw = int(math.ceil(self.body.getlength(suffix))) + 1
        ch = _even(lh + pad)
        # Natural width even on tiny frames: _panel() clips, the patches must fit.
        cw = _even(2 * pad + pw + cell * self.ndig + sw)
        ty = (ch - lh) // 2
        self.counter = _mask(cw, ch, [(pad, ty, prefix, self.body)])
        self.digit_x = pad + pw
        self.cell = cell
        self.glyphs = [_mask(cell, ch, [(0, ty, d, self.body)]) for d in "0123456789"]
        self.suffix = _mask(sw, ch, [(0, ty, suffix, self.body)])
        self.counter_xy = (pad + pad % 2, h - ch - _even(pad))
        self._captions: dict[str, np.ndarray] = {}

    def _caption(self, text: str) -> np.ndarray:
        mask = self._captions.get(text)
        if mask is None:
            mask = self._captions[text] = self._caption_mask(text)
        return mask

    def _caption_mask(self, text: str) -> np.ndarray:
        pad, lh = self.pad, self.lh
        room = max(1, self.w - self.counter.shape[1] - 6 * pad)
        lines = _wrap(text, self.body, room, 2)
        cw = min(_even(self.w - 2 * pad),
                 _even(2 * pad + max(self.body.getlength(line) for line in lines)))
        ch = _even(pad + lh * len(lines))
        return _mask(cw, ch, [(pad, pad // 2 + k * lh, line, self.body)
                              for k, line in enumerate(lines)])

    def apply(self, tgt: Planes, i: int, caption: str | None) -> None:
        _panel(tgt, 0, 0, self.banner)
        cnt = self.counter
        x = self.digit_x
        cnt[:, x:] = 0
        for d in str(i + 1):
            cnt[:, x:x + self.cell] = self.glyphs[ord(d) - 48]
            x += self.cell
        cnt[:, x:x + self.suffix.shape[1]] = self.suffix
        cx, cy = self.counter_xy
        _panel(tgt, cx, cy, cnt)
        if caption:
            cap = self._caption(caption)
            x = max(0, self.w - cap.shape[1] - self.counter_xy[0])
            y = self.h - cap.shape[0] - (self.h - cy - cnt.shape[0])
            _panel(tgt, x - x % 2, max(0, y - y % 2), cap)


# --------------------------------------------------------------------------- modes
# Each mode is a generator: for every output frame it fills `tgt.planes` (the encoder
# frame being built, swapped by the producer before each step) and yields a caption.


class _Target:
    __slots__ = ("planes",)

    def __init__(self) -> None:
        self.planes: Planes = (np.empty(0), np.empty(0), np.empty(0))


Frames = Iterator[str | None]

_CORNERS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))


def _kenburns_path(seed: int, salt: str) -> tuple[tuple[float, float], tuple[float, float]]:
    k = _seed_int(seed, salt) % 4
    start = _CORNERS[k]
    return start, (1.0 - start[0], 1.0 - start[1])


def _still(spec: RenderSpec, n: int, tgt: _Target, canvas: _Canvas, caption: str | None,
           salt: str, frames: range | None = None) -> Frames:
    start, end = _kenburns_path(spec.seed, salt)
    rng = frames if frames is not None else range(n)
    span = max(1, len(rng) - 1)
    for k, _ in enumerate(rng):
        _copy_planes(tgt.planes, canvas.pan(k / span, start, end, spec.width, spec.height))
        yield caption


def _mode_t2v(spec: RenderSpec, n: int, tgt: _Target) -> Frames:
    bg = _Background(spec.seed, spec.width, spec.height, spec.prompt)
    for i in range(n):
        bg.draw(tgt.planes, i / spec.fps)
        yield None


def _mode_i2v(spec: RenderSpec, n: int, tgt: _Target) -> Frames:
    data = spec.images[0] if spec.images else b""
    img, ok = _load_image(data, spec.width, spec.height, "first frame")
    caption = None if ok and spec.images else "first frame: placeholder"
    canvas = _image_canvas(img, spec.width, spec.height, 1.15)
    yield from _still(spec, n, tgt, canvas, caption, "i2v")


def _mode_flf2v(spec: RenderSpec, n: int, tgt: _Target) -> Frames:
    w, h = spec.width, spec.height
    first, _ = _load_image(spec.images[0] if spec.images else b"", w, h, "first frame")
    last, _ = _load_image(spec.images[1] if len(spec.images) > 1 else b"", w, h, "last frame")
    a = _image_canvas(first, w, h, 1.12)
    b = _image_canvas(last, w, h, 1.12)
    # Precomputed difference: per frame the blend is A + (D*w >> 7), all in int16,
    # instead of two float multiplies per pixel.
    a16 = [p.astype(np.int16) for p in (a.y, a.u, a.v)]
    d16 = [q.astype(np.int16) - p for p, q in zip(a16, (b.y, b.u, b.v))]
    a_c, d_c = _Canvas(tuple(a16)), _Canvas(tuple(d16))  # type: ignore[arg-type]
    tmp = [np.empty(shape, np.int16) for shape in ((h, w), (h // 2, w // 2), (h // 2, w // 2))]
    start, end = _kenburns_path(spec.seed, "flf2v")
    span = max(1, n - 1)
    for i in range(n):
        t = i / span
        # Hold each end briefly so both keyframes are actually seen.
        wgt = int(round(128 * _smooth((t - 0.15) / 0.7)))
        if wgt == 0:
            _copy_planes(tgt.planes, a.pan(t, start, end, w, h))
        elif wgt == 128:
            _copy_planes(tgt.planes, b.pan(t, start, end, w, h))
        else:
            ai = a_c.pan(t, start, end, w, h)
            di = d_c.pan(t, start, end, w, h)
            for out, ap, dp, tb in zip(tgt.planes, ai, di, tmp):
                np.multiply(dp, wgt, out=tb)
                np.right_shift(tb, 7, out=tb)
                np.add(tb, ap, out=tb)
                np.copyto(out, tb, casting="unsafe")
        yield "first -> last frame"


def _mode_grid9(spec: RenderSpec, n: int, tgt: _Target) -> Frames:
    w, h = spec.width, spec.height
    grid, ok = _load_image(spec.images[0] if spec.images else b"", w, h, "grid picture")
    gw, gh = grid.size
    for k in range(9):
        r, c = divmod(k, 3)
        frames = range(k * n // 9, (k + 1) * n // 9)
        if not len(frames):
            continue
        tile = grid.crop((c * gw // 3, r * gh // 3, (c + 1) * gw // 3, (r + 1) * gh // 3))
        # One canvas at a time: nine 1080P canvases would be ~40 MB for nothing.
        canvas = _image_canvas(tile, w, h, 1.1)
        caption = f"shot {k + 1}/9" + ("" if ok else " (placeholder grid)")
        yield from _still(spec, n, tgt, canvas, caption, f"grid9-{k}", frames)


def _mode_ref2v(spec: RenderSpec, n: int, tgt: _Target) -> Frames:
    w, h = spec.width, spec.height
    refs: list[tuple[str, bytes]] = [(f"Video {k + 1}", v) for k, v in enumerate(spec.videos)]
    refs += [(f"Image {k + 1}", im) for k, im in enumerate(spec.images)]
    if not refs:
        bg = _Background(spec.seed, w, h, spec.prompt)
        for i in range(n):
            bg.draw(tgt.planes, i / spec.fps)
            yield "no references"
        return
    m = len(refs)
    for k, (name, data) in enumerate(refs):
        frames = range(k * n // m, (k + 1) * n // m)
        if not len(frames):
            continue
        caption = f"{name} ({k + 1}/{m})"
        if name.startswith("Video"):
            src = _VideoSource(data, w, h)
            if src.ok:
                # Native speed from the start, looping if the segment outlasts the clip.
                idx = (int(j * src.fps / spec.fps) % src.count for j in range(len(frames)))
                for planes in src.frames(idx):
                    _copy_planes(tgt.planes, planes)
                    yield caption
                continue
            img = _placeholder_image(data, name, w, h)
        else:
            img, _ = _load_image(data, w, h, name)
        canvas = _image_canvas(img, w, h, 1.12)
        yield from _still(spec, n, tgt, canvas, caption, f"ref2v-{k}", frames)


_EDIT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("black & white", ("black and white", "black & white", "black-and-white", "b&w",
                       "grayscale", "greyscale", "monochrome")),
    ("mirror", ("mirror", "flip")),
    ("slow motion", ("slow",)),
    ("brighter", ("bright",)),
    ("darker", ("dark",)),
    ("inverted", ("invert", "negative")),
    ("blur", ("blur",)),
)


def _edit_effects(instruction: str) -> list[str]:
    text = instruction.lower()
    return [name for name, keys in _EDIT_RULES if any(k in text for k in keys)]


def _luts(effects: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Compose the per-pixel effects into one luma and one chroma lookup table."""
    x = np.arange(256, dtype=np.float32)
    y = x.copy()
    c = x.copy()
    if "brighter" in effects:
        y = y * 1.1 + 45
    if "darker" in effects:
        y = y * 0.5
    if "inverted" in effects:
        y = 251 - y  # 16+235: inverts within the limited (video) range
        c = 256 - c
    ylut = np.clip(np.round(y), 0, 255).astype(np.uint8)
    clut = np.clip(np.round(c), 0, 255).astype(np.uint8)
    return (None if np.array_equal(ylut, x) else ylut,
            None if np.array_equal(clut, x) else clut)


def _mode_edit(spec: RenderSpec, n: int, tgt: _Target) -> Frames:
    w, h = spec.width, spec.height
    effects = _edit_effects(spec.prompt)
    caption = ("edit: " + " + ".join(effects)) if effects else \
        f"instruction: {_clean(spec.prompt) or '(empty)'}"
    data = spec.videos[0] if spec.videos else b""
    src = _VideoSource(data, w, h, blur="blur" in effects)
    if not src.ok:
        canvas = _image_canvas(_placeholder_image(data, "input video", w, h), w, h, 1.1)
        src_frames: Iterator[Planes] = (canvas.crop(0, 0, w, h) for _ in range(n))
    else:
        # Resample the whole clip onto the output length; "slow" covers only its first half.
        div = 2 * n if "slow motion" in effects else n
        src_frames = src.frames(i * src.count // div for i in range(n))
    ylut, clut = _luts(effects)
    gray = "black & white" in effects
    mirror = "mirror" in effects
    # Reference thumbnails get the same colour edit once, so e.g. a black-and-white
    # result really has no chroma anywhere.
    thumbs = [(x, y, (ylut[ty] if ylut is not None else ty,
                      np.full_like(tu, 128) if gray else (clut[tu] if clut is not None else tu),
                      np.full_like(tv, 128) if gray else (clut[tv] if clut is not None else tv)))
              for x, y, (ty, tu, tv) in _thumbnails(spec.images, w, h)]
    for planes in src_frames:
        if mirror:
            planes = tuple(p[:, ::-1] for p in planes)  # type: ignore[assignment]
        ty, tu, tv = tgt.planes
        if ylut is not None:
            np.take(ylut, planes[0], out=ty)
        else:
            np.copyto(ty, planes[0])
        if gray:
            tu.fill(128)
            tv.fill(128)
        elif clut is not None:
            np.take(clut, planes[1], out=tu)
            np.take(clut, planes[2], out=tv)
        else:
            np.copyto(tu, planes[1])
            np.copyto(tv, planes[2])
        _paste_thumbs(tgt.planes, thumbs)
        yield caption


def _thumbnails(images: tuple[bytes, ...], width: int, height: int
                ) -> list[tuple[int, int, Planes]]:
    """Small previews of edit reference images along the right edge."""
    out: list[tuple[int, int, Planes]] = []
    if not images:
        return out
    tw, th = _even(width / 8), _even(height / 8)
    y = _even(height * 0.3)
    for k, data in enumerate(images[:4]):
        img, _ = _load_image(data, tw, th, f"reference {k + 1}")
        planes = _rgb_to_yuv(np.asarray(_cover_crop(img, tw, th)), tw, th)
        x = width - tw - _even(width / 60)
        if y + th > height:
            break
        out.append((x, y, planes))
        y += th + _even(height / 60)
    return out


def _paste_thumbs(tgt: Planes, thumbs: list[tuple[int, int, Planes]]) -> None:
    for x, y, (ty, tu, tv) in thumbs:
        h, w = ty.shape
        tgt[0][y:y + h, x:x + w] = ty
        tgt[1][y // 2:y // 2 + h // 2, x // 2:x // 2 + w // 2] = tu
        tgt[2][y // 2:y // 2 + h // 2, x // 2:x // 2 + w // 2] = tv


def _mode_extend(spec: RenderSpec, n: int, tgt: _Target) -> Frames:
    w, h = spec.width, spec.height
    data = spec.videos[0] if spec.videos else b""
    src = _VideoSource(data, w, h)
    last: Planes
    if src.ok:
        clip_n = min(n, max(1, round(src.count * spec.fps / src.fps)))
        idx = (min(src.count - 1, int(i * src.fps / spec.fps)) for i in range(clip_n))
        planes = None
        for planes in src.frames(idx):
            _copy_planes(tgt.planes, planes)
            yield "input clip"
        assert planes is not None
        last = planes
    else:
        clip_n = min(n, max(1, n // 2))
        canvas = _image_canvas(_placeholder_image(data, "input clip", w, h), w, h, 1.0)
        last = canvas.crop(0, 0, w, h)
        for _ in range(clip_n):
            _copy_planes(tgt.planes, last)
            yield "input clip (placeholder)"
    if clip_n >= n:
        return
    bg = _Background(spec.seed, w, h, spec.prompt)
    fade = min(spec.fps // 2, n - clip_n)
    last16 = [p.astype(np.int16) for p in last]
    for i in range(clip_n, n):
        bg.draw(tgt.planes, i / spec.fps)
        k = i - clip_n
        if k < fade:
            # Short cross-fade so the continuation visibly grows out of the clip.
            wgt = int(round(128 * (k + 1) / (fade + 1)))
            for out, lp in zip(tgt.planes, last16):
                mix = (lp * (128 - wgt) + out.astype(np.int16) * wgt) >> 7
                np.copyto(out, mix, casting="unsafe")
        yield "extension"


_MODE_FUNCS = {
    "t2v": _mode_t2v, "i2v": _mode_i2v, "flf2v": _mode_flf2v, "grid9": _mode_grid9,
    "ref2v": _mode_ref2v, "edit": _mode_edit, "extend": _mode_extend,
}


# --------------------------------------------------------------------------- encoding


def _faststart(data: bytes) -> bytes:
    """Move ``moov`` in front of ``mdat`` (what ``-movflags +faststart`` does).

    FFmpeg's own faststart re-opens the output file, which fails for in-memory
    output, so we relocate the box here and shift the chunk offsets (stco/co64)."""

    def boxes(buf: bytes | bytearray, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
        found = []
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", buf, pos)
            hdr = 8
            if size == 1:
                if pos + 16 > end:
                    raise ValueError("truncated box")
                size = struct.unpack_from(">Q", buf, pos + 8)[0]
                hdr = 16
            elif size == 0:
                size = end - pos
            if size < hdr or pos + size > end:
                raise ValueError("bad box size")
            found.append((kind, pos, hdr, size))
            pos += size
        return found

    def patch(buf: bytearray, start: int, end: int, shift: int) -> None:
        for kind, pos, hdr, size in boxes(buf, start, end):
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                patch(buf, pos + hdr, pos + size, shift)
            elif kind in (b"stco", b"co64"):
                count = struct.unpack_from(">I", buf, pos + hdr + 4)[0]
                dt = np.dtype(">u4" if kind == b"stco" else ">u8")
                off = pos + hdr + 8
                arr = np.frombuffer(bytes(buf[off:off + count * dt.itemsize]), dt)
                new = arr.astype(np.uint64) + shift
                if kind == b"stco" and count and int(new.max()) >= 2**32:
                    raise ValueError("stco overflow")
                buf[off:off + count * dt.itemsize] = new.astype(dt).tobytes()

    try:
        top = boxes(data, 0, len(data))
        moov = next(b for b in top if b[0] == b"moov")
        mdat = next(b for b in top if b[0] == b"mdat")
        if moov[1] < mdat[1]:
            return data
        mv = bytearray(data[moov[1]:moov[1] + moov[3]])
        patch(mv, 0, len(mv), len(mv))
    except (ValueError, StopIteration, struct.error):
        return data
    # Right after ftyp, like FFmpeg (so the result matches its +faststart byte for byte).
    at = top[0][1] + top[0][3] if top[0][0] == b"ftyp" else mdat[1]
    return b"".join((data[:at], bytes(mv), data[at:moov[1]], data[moov[1] + moov[3]:]))


def _encode(spec: RenderSpec, n: int, produce: Iterator[av.VideoFrame]) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": str(_CRF),
                          "threads": str(_X264_THREADS)}
        for frame in produce:
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return _faststart(buf.getvalue())


def _frames(spec: RenderSpec, n: int) -> Iterator[av.VideoFrame]:
    """Synthesize the n output frames (runs in the producer thread)."""
    tgt = _Target()
    overlay = _Overlay(spec, n)
    steps = _MODE_FUNCS[spec.mode](spec, n, tgt)
    tb = Fraction(1, spec.fps)
    for i in range(n):
        frame = av.VideoFrame(spec.width, spec.height, "yuv420p")
        tgt.planes = _frame_planes(frame)
        try:
            caption = next(steps)
        except StopIteration:
            # Safety net: modes yield exactly n frames, but a short mode must never
            # produce a short file.
            tgt.planes[0].fill(64)
            tgt.planes[1].fill(128)
            tgt.planes[2].fill(128)
            caption = "(end of input)"
        overlay.apply(tgt.planes, i, caption)
        frame.pts = i
        frame.time_base = tb
        yield frame


def _threaded(gen: Iterator[av.VideoFrame], depth: int = 6) -> Iterator[av.VideoFrame]:
    """Run `gen` in a helper thread; numpy and the encoder both release the GIL."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def worker() -> None:
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            q.put(exc)

    thread = threading.Thread(target=worker, name="wanlab-sim-render", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def render(spec: RenderSpec) -> bytes:
    """Render `spec` to a complete, deterministic H.264 MP4 file in memory."""
    _validate(spec)
    n = _n_frames(spec)
    return _encode(spec, n, _threaded(_frames(spec, n)))


# --------------------------------------------------------------------------- probe


def probe(data: bytes) -> dict:
    """Describe an MP4: {"width","height","fps","frames","duration","codec"}.

    Raises ValueError when the data is not a playable video (one frame must decode)."""
    if not data:
        raise ValueError("empty video data")
    try:
        with av.open(io.BytesIO(bytes(data)), "r") as c:
            if not c.streams.video:
                raise ValueError("no video stream")
            fmt = c.format.name
            if fmt == "image2" or fmt.endswith("_pipe"):
                # FFmpeg happily "plays" a PNG/JPEG as a one-frame stream; a still
                # image is not an acceptable video for the simulator.
                raise ValueError(f"not a video: still image ({fmt})")
            vs = c.streams.video[0]
            fps = float(vs.average_rate or vs.guessed_rate or 0)
            frames = int(vs.frames or 0)
            if frames <= 0:
                frames = sum(1 for pkt in c.demux(vs) if pkt.size)
                c.seek(0)
            if vs.duration and vs.time_base:
                duration = float(vs.duration * vs.time_base)
            elif c.duration:
                duration = c.duration / 1_000_000
            else:
                duration = frames / fps if fps else 0.0
            first = next(c.decode(vs))
            return {"width": int(first.width), "height": int(first.height),
                    "fps": fps, "frames": frames, "duration": duration,
                    "codec": vs.codec_context.name}
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any demux/decode failure = unplayable
        raise ValueError(f"unplayable video: {exc}") from exc
