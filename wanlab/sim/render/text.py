"""Text: per-thread fonts, cleaning, linear word wrap by rendered width, and rasterising lines into
grayscale masks."""

from __future__ import annotations

import math
import re
import threading

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# FreeType faces must not be used by two threads at once (measuring included). Rather than a
# process-wide lock -- which let one slow layout stall every other render -- each thread gets its
# own font objects: loading one costs ~0.1 ms and the glyph data is identical, so the output does
# not depend on which thread drew it.
_THREAD_FONTS = threading.local()

# No overlay shows more than a few hundred characters; cleaning megabytes of prompt only to throw
# them away would be the slow part, so text is clipped first, and says so.
_MAX_TEXT = 4096
_ELLIPSIS = "..."


def thread_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    fonts = getattr(_THREAD_FONTS, "by_size", None)
    if fonts is None:
        fonts = _THREAD_FONTS.by_size = {}
    font = fonts.get(size)
    if font is None:
        font = fonts[size] = ImageFont.load_default(size=size)
    return font


def clean_text(text: str) -> str:
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


def wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap by rendered width; the last line is truncated with '...'.

    Linear in the text laid out, and layout stops once `max_lines` are full. (It used to
    re-measure every candidate prefix of an over-long word: a 2,500-character prompt without
    spaces took ~45 s.)"""
    adv = _Advances(font)
    words = clean_text(text).split(" ") if text.strip() else [""]
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


def _split_long(adv: _Advances, word: str, width: int, lines: list[str], max_lines: int) -> tuple[str, float]:
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


def text_mask(
    width: int, height: int, items: list[tuple[int, int, str, ImageFont.FreeTypeFont | ImageFont.ImageFont]]
) -> np.ndarray:
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for x, y, text, font in items:
        draw.text((x, y), text, fill=255, font=font)
    return np.array(img, dtype=np.uint8)
