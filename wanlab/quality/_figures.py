"""The per-frame work of `measure`: one pass over the decoded luma, keeping only what the figures need
(the previous and first analysis-size frames, a few numbers per frame)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._decode import ANALYSIS_SIDE, DETAIL_SIDE, Facts, fit_side, shrink, to_full
from ._pairs import brightness_step, difference_histogram, is_repeat

FLOW_PAIRS = 30  # consecutive pairs the optical flow is computed on, evenly spread over the clip
DETAIL_FRAMES = 16  # frames sharpness and exposure are computed on, evenly spread (first and last included)
BLACK_MAX = 2  # full-range luma at or below this is clipped black
WHITE_MIN = 253  # full-range luma at or above this is clipped white
_STRIDE_UNKNOWN = (8, 5)  # (detail every k-th frame, flow every k-th pair) when the frame count is unknown


def make_flow() -> Any:
    """OpenCV's DIS optical flow as `motion` uses it: PRESET_FAST patches, but down to half the analysis size
    (finest scale 1, not the preset's 2) and without variational refinement. On pans of known speed at 320 px
    this reads 1.00–1.03× the truth from 0.25 to 6 px/frame (the preset: 1.20× at 0.25, 1.09× at 1) at about
    the preset's cost (~2 ms a pair at 320×180); the refinement pulls flat and static areas towards zero."""
    import cv2

    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    dis.setFinestScale(1)
    dis.setVariationalRefinementIterations(0)
    return dis


def _spread(first: int, last: int, k: int) -> set[int]:
    if last < first:
        return set()
    return {int(i) for i in np.linspace(first, last, min(k, last - first + 1)).round()}


class Pass:
    """Feed `add(y, table)` every decoded frame in order (from `_decode.luma_frames`), then read `figures()`."""

    def __init__(self, facts: Facts):
        import cv2

        self._cv2 = cv2
        self.asize = fit_side(facts.width, facts.height, ANALYSIS_SIDE)
        self.dsize = fit_side(facts.width, facts.height, DETAIL_SIDE)
        n = facts.frames or round(facts.duration * facts.fps)
        self._detail: set[int] | None = _spread(0, n - 1, DETAIL_FRAMES) if n > 0 else None
        self._flow: set[int] | None = _spread(1, n - 1, FLOW_PAIRS) if n > 0 else None
        self._dis = make_flow()
        self.n = 0
        self.first: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self._prev16: np.ndarray | None = None
        self.steps: list[float] = []  # robust global brightness change from frame t-1 to t
        self.repeats: list[bool] = []  # does frame t repeat frame t-1
        self.flows: list[float] = []  # mean flow magnitude of a sampled pair
        self.laps: list[float] = []  # variance of the Laplacian of a detail frame
        self.black = self.white = self.pixels = 0

    def _sampled(self, i: int, at: set[int] | None, stride: int) -> bool:
        return i in at if at is not None else i % stride == 0

    def add(self, y: np.ndarray, table: np.ndarray) -> None:
        cv2 = self._cv2
        i = self.n
        small = to_full(shrink(y, self.asize), table)
        cur16 = small.astype(np.int16)
        if self.prev is None:
            self.first = small
        else:
            self._step(small, cur16)
            if self._sampled(i, self._flow, _STRIDE_UNKNOWN[1]):
                flow = self._dis.calc(self.prev, small, None)
                self.flows.append(float(cv2.magnitude(flow[..., 0], flow[..., 1]).mean()))
        if self._sampled(i, self._detail, _STRIDE_UNKNOWN[0]):
            self._detail_frame(y, table)
        self.prev, self._prev16 = small, cur16
        self.n += 1

    def _step(self, small: np.ndarray, cur16: np.ndarray) -> None:
        assert self.prev is not None and self._prev16 is not None
        step = brightness_step(difference_histogram(cur16, self._prev16))
        self.steps.append(step)
        self.repeats.append(is_repeat(self.prev, small, step))

    def _detail_frame(self, y: np.ndarray, table: np.ndarray) -> None:
        cv2 = self._cv2
        # the clipping thresholds in the frame's own range (the table is monotonic), counted at full resolution
        black = int(np.count_nonzero(table <= BLACK_MAX)) - 1  # last raw level that maps to ≤ BLACK_MAX, or −1
        white = int(np.argmax(table >= WHITE_MIN)) if table[-1] >= WHITE_MIN else 256
        self.black += int(np.count_nonzero(y <= black)) if black >= 0 else 0
        self.white += int(np.count_nonzero(y >= white)) if white <= 255 else 0
        self.pixels += int(y.shape[0] * y.shape[1])
        detail = to_full(shrink(y, self.dsize), table)
        _, std = cv2.meanStdDev(cv2.Laplacian(detail, cv2.CV_16S))  # 3×3 kernel: |values| ≤ 1020 fit int16
        self.laps.append(float(std[0, 0]) ** 2)

    def figures(self) -> dict[str, Any]:
        jerks = np.diff(np.asarray(self.steps))
        # i.i.d. per-frame offsets of std σ give jerks (o[t+1] − 2·o[t] + o[t-1]) of variance 6σ²
        flicker = math.sqrt(float(np.mean(jerks**2)) / 6.0) if jerks.size else None
        frozen = sum(self.repeats) / len(self.repeats) if self.repeats else None
        return {
            "sampled": self.n,
            "flicker": flicker,
            "frozen": frozen,
            "motion": float(np.mean(self.flows)) if self.flows else None,
            "sharpness": float(np.mean(self.laps)) if self.laps else None,
            "exposure": (self.black + self.white) / self.pixels if self.pixels else None,
            "exposure_black": self.black / self.pixels if self.pixels else None,
            "exposure_white": self.white / self.pixels if self.pixels else None,
        }
