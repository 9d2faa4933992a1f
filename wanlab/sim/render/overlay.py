"""What every frame shows on top of the picture: the banner (label, mode, model, seed, size, prompt),
the frame counter and the mode's caption, rasterised once and composited into the planes per frame."""

from __future__ import annotations

import math

import numpy as np

from .planes import Planes, even
from .spec import RenderSpec
from .text import clean_text, text_mask, thread_font, wrap


def _panel(tgt: Planes, x0: int, y0: int, mask: np.ndarray) -> None:
    """Half-darken + desaturate a box and max-in white text: two uint8 ops per plane."""
    fh, fw = tgt[0].shape
    x0, y0 = max(0, x0 - x0 % 2), max(0, y0 - y0 % 2)
    # Clip to the frame (tiny outputs) keeping even sizes so chroma stays aligned.
    h = min(mask.shape[0], fh - y0) & ~1
    w = min(mask.shape[1], fw - x0) & ~1
    if h <= 0 or w <= 0:
        return
    y = tgt[0][y0 : y0 + h, x0 : x0 + w]
    np.right_shift(y, 1, out=y)
    np.maximum(y, mask[:h, :w], out=y)
    for c in tgt[1:]:
        region = c[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2]
        np.right_shift(region, 1, out=region)
        np.add(region, 64, out=region)


class Overlay:
    """Banner, frame counter and caption, rasterised once and composited per frame."""

    def __init__(self, spec: RenderSpec, n: int) -> None:
        w, h = spec.width, spec.height
        self.w, self.h, self.n = w, h, n
        s = max(9, round(min(w, h) / 34))
        self.body = thread_font(s)
        title = thread_font(round(s * 1.7))
        self.pad = pad = max(4, s // 2)
        self.lh = lh = round(s * 1.3)
        tlh = round(s * 1.7 * 1.2)
        inner = w - 2 * pad
        label = clean_text(spec.label) or "SIMULATION"
        label_w = int(title.getlength(label + "  "))
        head = wrap(f"{spec.mode} | model {clean_text(spec.model) or '-'}", self.body, max(1, inner - label_w), 1)[0]
        info = f"seed {spec.seed} | {w}x{h} | {spec.duration:g}s | {spec.fps} fps | {n} frames"
        info = wrap(info, self.body, inner, 1)[0]
        prompt_lines = wrap("prompt: " + (clean_text(spec.prompt) or "(empty)"), self.body, inner, 3 if h > w else 2)
        bh = min(even(h * 0.6), even(pad * 2 + tlh + lh * (1 + len(prompt_lines))))
        items = [
            (pad, pad, label, title),
            (pad + label_w, pad + tlh - lh, head, self.body),
            (pad, pad + tlh, info, self.body),
        ]
        items += [(pad, pad + tlh + lh * (k + 1), line, self.body) for k, line in enumerate(prompt_lines)]
        self.banner = text_mask(w, bh, items)

        # Frame counter: "frame " plus ten digit glyphs and the "/N" suffix, all rendered
        # once; per frame only a few tiny patches are copied.
        self.ndig = len(str(n))
        cell = max(int(math.ceil(self.body.getlength(d))) for d in "0123456789")
        prefix, suffix = "frame ", f"/{n}"
        pw = int(math.ceil(self.body.getlength(prefix)))
        sw = int(math.ceil(self.body.getlength(suffix))) + 1
        ch = even(lh + pad)
        # Natural width even on tiny frames: _panel() clips, the patches must fit.
        cw = even(2 * pad + pw + cell * self.ndig + sw)
        ty = (ch - lh) // 2
        self.counter = text_mask(cw, ch, [(pad, ty, prefix, self.body)])
        self.digit_x = pad + pw
        self.cell = cell
        self.glyphs = [text_mask(cell, ch, [(0, ty, d, self.body)]) for d in "0123456789"]
        self.suffix = text_mask(sw, ch, [(0, ty, suffix, self.body)])
        self.counter_xy = (pad + pad % 2, h - ch - even(pad))
        self._captions: dict[str, np.ndarray] = {}

    def _caption(self, text: str) -> np.ndarray:
        mask = self._captions.get(text)
        if mask is None:
            mask = self._captions[text] = self._caption_mask(text)
        return mask

    def _caption_mask(self, text: str) -> np.ndarray:
        pad, lh = self.pad, self.lh
        room = max(1, self.w - self.counter.shape[1] - 6 * pad)
        lines = wrap(text, self.body, room, 2)
        cw = min(even(self.w - 2 * pad), even(2 * pad + max(self.body.getlength(line) for line in lines)))
        ch = even(pad + lh * len(lines))
        return text_mask(cw, ch, [(pad, pad // 2 + k * lh, line, self.body) for k, line in enumerate(lines)])

    def apply(self, tgt: Planes, i: int, caption: str | None) -> None:
        _panel(tgt, 0, 0, self.banner)
        cnt = self.counter
        x = self.digit_x
        cnt[:, x:] = 0
        for d in str(i + 1):
            cnt[:, x : x + self.cell] = self.glyphs[ord(d) - 48]
            x += self.cell
        cnt[:, x : x + self.suffix.shape[1]] = self.suffix
        cx, cy = self.counter_xy
        _panel(tgt, cx, cy, cnt)
        if caption:
            cap = self._caption(caption)
            x = max(0, self.w - cap.shape[1] - self.counter_xy[0])
            y = self.h - cap.shape[0] - (self.h - cy - cnt.shape[0])
            _panel(tgt, x - x % 2, max(0, y - y % 2), cap)
