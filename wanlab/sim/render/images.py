"""Input pictures: decoding an image file (or a deterministic placeholder when it does not decode)
and cover-fitting it onto a canvas."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from .planes import Canvas, even, rgb_to_yuv
from .text import thread_font


def cover_crop(img: Image.Image, width: int, height: int) -> Image.Image:
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


def image_canvas(
    img: Image.Image, width: int, height: int, scale: float, anchor: tuple[float, float] | None = None
) -> Canvas:
    """A canvas `scale` times the output for a pan to move over. With `anchor` (the pan's start or end, as
    fractions of the free margin), the output-sized window there is the picture itself, cover-fitted as the
    hosts fit an input frame — so an i2v video starts on its image, as WAN's do — and the margin around it
    mirrors the picture; without, the picture is scaled up to fill the whole canvas."""
    cw, ch = even(width * scale), even(height * scale)
    if anchor is None:
        cropped = cover_crop(img, cw, ch)
        return Canvas(rgb_to_yuv(np.asarray(cropped.convert("RGB")), cw, ch))
    arr = np.asarray(cover_crop(img, width, height).convert("RGB"))
    sh, sw = arr.shape[:2]
    # The margin in the picture's own pixels (it is scaled to the canvas in one pass below), so that the
    # picture lands on exactly the output-sized window at `anchor` whatever its resolution.
    mx, my = round((cw - width) * sw / width), round((ch - height) * sh / height)
    left, top = round(anchor[0] * mx), round(anchor[1] * my)
    pads = ((top, my - top), (left, mx - left), (0, 0))
    return Canvas(rgb_to_yuv(np.pad(arr, pads, mode="reflect"), cw, ch))


def placeholder_image(data: bytes, what: str, width: int = 16, height: int = 9) -> Image.Image:
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
    arr = np.array(Image.fromarray(cells, "RGB").resize((pw, ph), Image.Resampling.NEAREST))
    yy, xx = np.mgrid[0:ph, 0:pw]
    arr[((xx + yy) // 16) % 2 == 0] //= 2  # diagonal stripes: unmistakably synthetic
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    font = thread_font(15)
    y0 = ph // 2 - 24
    draw.rectangle((0, y0, pw, y0 + 48), fill=(0, 0, 0))
    draw.text((8, y0 + 4), f"undecodable {what}", fill=(255, 255, 255), font=font)
    draw.text((8, y0 + 24), f"sha256 {digest.hex()[:16]}", fill=(255, 255, 255), font=font)
    return img


def load_image(data: bytes, width: int, height: int, what: str) -> tuple[Image.Image, bool]:
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
        return placeholder_image(data, what, width, height), False
