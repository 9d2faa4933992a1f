"""How each mode uses its inputs: t2v (seeded background), i2v (a pan that starts on the first frame), flf2v
(first -> last cross-fade), grid9 (nine shots of one grid picture), ref2v (each reference in turn),
edit (the input video with the instruction's effects) and extend (the clip, then a continuation from its
last frame).

Each mode is a generator: for every output frame it fills `tgt.planes` (the encoder
frame being built, swapped by the producer before each step) and yields a caption."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

from .background import Background
from .images import cover_crop, image_canvas, load_image, placeholder_image
from .planes import Canvas, Planes, copy_planes, even, planes_rgb, rgb_to_yuv, smooth
from .spec import RenderSpec, seed_int
from .text import clean_text
from .video import VideoSource


class Target:
    __slots__ = ("planes",)

    def __init__(self) -> None:
        self.planes: Planes = (np.empty(0), np.empty(0), np.empty(0))


Frames = Iterator[str | None]

_CORNERS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))


def _kenburns_path(seed: int, salt: str) -> tuple[tuple[float, float], tuple[float, float]]:
    k = seed_int(seed, salt) % 4
    start = _CORNERS[k]
    return start, (1.0 - start[0], 1.0 - start[1])


def _still(
    spec: RenderSpec, n: int, tgt: Target, canvas: Canvas, caption: str | None, salt: str, frames: range | None = None
) -> Frames:
    start, end = _kenburns_path(spec.seed, salt)
    rng = frames if frames is not None else range(n)
    span = max(1, len(rng) - 1)
    for k, _ in enumerate(rng):
        copy_planes(tgt.planes, canvas.pan(k / span, start, end, spec.width, spec.height))
        yield caption


def _mode_t2v(spec: RenderSpec, n: int, tgt: Target) -> Frames:
    bg = Background(spec.seed, spec.width, spec.height, spec.prompt)
    for i in range(n):
        bg.draw(tgt.planes, i / spec.fps)
        yield None


def _mode_i2v(spec: RenderSpec, n: int, tgt: Target) -> Frames:
    data = spec.images[0] if spec.images else b""
    img, ok = load_image(data, spec.width, spec.height, "first frame")
    caption = None if ok and spec.images else "first frame: placeholder"
    canvas = image_canvas(img, spec.width, spec.height, 1.15, anchor=_kenburns_path(spec.seed, "i2v")[0])
    yield from _still(spec, n, tgt, canvas, caption, "i2v")


def _mode_flf2v(spec: RenderSpec, n: int, tgt: Target) -> Frames:
    w, h = spec.width, spec.height
    first, _ = load_image(spec.images[0] if spec.images else b"", w, h, "first frame")
    last, _ = load_image(spec.images[1] if len(spec.images) > 1 else b"", w, h, "last frame")
    start, end = _kenburns_path(spec.seed, "flf2v")
    a = image_canvas(first, w, h, 1.12, anchor=start)  # the video starts on the first frame, ends on the last
    b = image_canvas(last, w, h, 1.12, anchor=end)
    # Precomputed difference: per frame the blend is A + (D*w >> 7), all in int16,
    # instead of two float multiplies per pixel.
    a16 = [p.astype(np.int16) for p in (a.y, a.u, a.v)]
    d16 = [q.astype(np.int16) - p for p, q in zip(a16, (b.y, b.u, b.v), strict=True)]
    a_c, d_c = Canvas(tuple(a16)), Canvas(tuple(d16))  # type: ignore[arg-type]
    tmp = [np.empty(shape, np.int16) for shape in ((h, w), (h // 2, w // 2), (h // 2, w // 2))]
    span = max(1, n - 1)
    for i in range(n):
        t = i / span
        # Hold each end briefly so both keyframes are actually seen.
        wgt = int(round(128 * smooth((t - 0.15) / 0.7)))
        if wgt == 0:
            copy_planes(tgt.planes, a.pan(t, start, end, w, h))
        elif wgt == 128:
            copy_planes(tgt.planes, b.pan(t, start, end, w, h))
        else:
            ai = a_c.pan(t, start, end, w, h)
            di = d_c.pan(t, start, end, w, h)
            for out, ap, dp, tb in zip(tgt.planes, ai, di, tmp, strict=True):
                np.multiply(dp, wgt, out=tb)
                np.right_shift(tb, 7, out=tb)
                np.add(tb, ap, out=tb)
                np.copyto(out, tb, casting="unsafe")
        yield "first -> last frame"


def _mode_grid9(spec: RenderSpec, n: int, tgt: Target) -> Frames:
    w, h = spec.width, spec.height
    grid, ok = load_image(spec.images[0] if spec.images else b"", w, h, "grid picture")
    gw, gh = grid.size
    for k in range(9):
        r, c = divmod(k, 3)
        frames = range(k * n // 9, (k + 1) * n // 9)
        if not len(frames):
            continue
        tile = grid.crop((c * gw // 3, r * gh // 3, (c + 1) * gw // 3, (r + 1) * gh // 3))
        # One canvas at a time: nine 1080P canvases would be ~40 MB for nothing.
        canvas = image_canvas(tile, w, h, 1.1)
        caption = f"shot {k + 1}/9" + ("" if ok else " (placeholder grid)")
        yield from _still(spec, n, tgt, canvas, caption, f"grid9-{k}", frames)


def _mode_ref2v(spec: RenderSpec, n: int, tgt: Target) -> Frames:
    w, h = spec.width, spec.height
    refs: list[tuple[str, bytes]] = [(f"Video {k + 1}", v) for k, v in enumerate(spec.videos)]
    refs += [(f"Image {k + 1}", im) for k, im in enumerate(spec.images)]
    if not refs:
        bg = Background(spec.seed, w, h, spec.prompt)
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
            src = VideoSource(data, w, h)
            if src.ok:
                # Native speed from the start, looping if the segment outlasts the clip.
                idx = (int(j * src.fps / spec.fps) % src.count for j in range(len(frames)))
                for planes in src.frames(idx):
                    copy_planes(tgt.planes, planes)
                    yield caption
                continue
            img = placeholder_image(data, name, w, h)
        else:
            img, _ = load_image(data, w, h, name)
        canvas = image_canvas(img, w, h, 1.12)
        yield from _still(spec, n, tgt, canvas, caption, f"ref2v-{k}", frames)


_EDIT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "black & white",
        ("black and white", "black & white", "black-and-white", "b&w", "grayscale", "greyscale", "monochrome"),
    ),
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
    return (None if np.array_equal(ylut, x) else ylut, None if np.array_equal(clut, x) else clut)


def _mode_edit(spec: RenderSpec, n: int, tgt: Target) -> Frames:
    w, h = spec.width, spec.height
    effects = _edit_effects(spec.prompt)
    caption = ("edit: " + " + ".join(effects)) if effects else f"instruction: {clean_text(spec.prompt) or '(empty)'}"
    data = spec.videos[0] if spec.videos else b""
    src = VideoSource(data, w, h, blur="blur" in effects)
    if not src.ok:
        canvas = image_canvas(placeholder_image(data, "input video", w, h), w, h, 1.1)
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
    thumbs = [
        (
            x,
            y,
            (
                ylut[ty] if ylut is not None else ty,
                np.full_like(tu, 128) if gray else (clut[tu] if clut is not None else tu),
                np.full_like(tv, 128) if gray else (clut[tv] if clut is not None else tv),
            ),
        )
        for x, y, (ty, tu, tv) in _thumbnails(spec.images, w, h)
    ]
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


def _thumbnails(images: tuple[bytes, ...], width: int, height: int) -> list[tuple[int, int, Planes]]:
    """Small previews of edit reference images along the right edge."""
    out: list[tuple[int, int, Planes]] = []
    if not images:
        return out
    tw, th = even(width / 8), even(height / 8)
    y = even(height * 0.3)
    for k, data in enumerate(images[:4]):
        img, _ = load_image(data, tw, th, f"reference {k + 1}")
        planes = rgb_to_yuv(np.asarray(cover_crop(img, tw, th)), tw, th)
        x = width - tw - even(width / 60)
        if y + th > height:
            break
        out.append((x, y, planes))
        y += th + even(height / 60)
    return out


def _paste_thumbs(tgt: Planes, thumbs: list[tuple[int, int, Planes]]) -> None:
    for x, y, (ty, tu, tv) in thumbs:
        h, w = ty.shape
        tgt[0][y : y + h, x : x + w] = ty
        tgt[1][y // 2 : y // 2 + h // 2, x // 2 : x // 2 + w // 2] = tu
        tgt[2][y // 2 : y // 2 + h // 2, x // 2 : x // 2 + w // 2] = tv


def _mode_extend(spec: RenderSpec, n: int, tgt: Target) -> Frames:
    w, h = spec.width, spec.height
    data = spec.videos[0] if spec.videos else b""
    src = VideoSource(data, w, h)
    last: Planes
    if src.ok:
        clip_n = min(n, max(1, round(src.count * spec.fps / src.fps)))
        idx = (min(src.count - 1, int(i * src.fps / spec.fps)) for i in range(clip_n))
        planes = None
        for planes in src.frames(idx):
            copy_planes(tgt.planes, planes)
            yield "input clip"
        assert planes is not None
        last = planes
    else:
        clip_n = min(n, max(1, n // 2))
        canvas = image_canvas(placeholder_image(data, "input clip", w, h), w, h, 1.0)
        last = canvas.crop(0, 0, w, h)
        for _ in range(clip_n):
            copy_planes(tgt.planes, last)
            yield "input clip (placeholder)"
    if clip_n >= n:
        return
    # The continuation starts on the clip's last frame, as an i2v video starts on its image, and moves on
    # to the prompt's picture — or, given a last frame, onto that frame, as flf2v ends on its last.
    start, end = _kenburns_path(spec.seed, "extend")
    seam = image_canvas(Image.fromarray(planes_rgb(last)), w, h, 1.15, anchor=start)
    goal: Canvas | None = None
    if spec.images:
        goal = image_canvas(load_image(spec.images[0], w, h, "last frame")[0], w, h, 1.15, anchor=end)
    bg = Background(spec.seed, w, h, spec.prompt) if goal is None else None
    caption = "extension" if goal is None else "extension -> last frame"
    span = max(1, n - clip_n - 1)
    for i in range(clip_n, n):
        t = (i - clip_n) / span
        if bg is not None:
            bg.draw(tgt.planes, i / spec.fps)
        else:
            assert goal is not None
            copy_planes(tgt.planes, goal.pan(t, start, end, w, h))
        wgt = int(round(128 * smooth((t - 0.15) / 0.7)))  # the seam held briefly, the goal reached at the end
        for out, sp in zip(tgt.planes, seam.pan(t, start, end, w, h), strict=True):
            mix = (sp.astype(np.int16) * (128 - wgt) + out.astype(np.int16) * wgt) >> 7
            np.copyto(out, mix, casting="unsafe")
        yield caption


MODE_FUNCS = {
    "t2v": _mode_t2v,
    "i2v": _mode_i2v,
    "flf2v": _mode_flf2v,
    "grid9": _mode_grid9,
    "ref2v": _mode_ref2v,
    "edit": _mode_edit,
    "extend": _mode_extend,
}
