"""What one consecutive pair of analysis-size frames says: the global brightness step between them (for
flicker) and whether the second repeats the first (for frozen)."""

from __future__ import annotations

import math

import numpy as np

BAND = 10  # scale (luma levels) of the biweight that estimates a pair's global brightness step
# A frame repeats the previous one when their mean |difference| (luma levels, analysis size) is below
# REPEAT_EXACT, or below REPEAT_CAP with almost none of the difference explained by motion (R² of a block-wise
# Lucas–Kanade fit below REPEAT_R2). H.264 re-codes an exact repeat with refinement that decays over several
# frames (measured up to ~2.7 levels on grainy content at crf 23) but is not motion (R² ≤ 0.14), while slow real
# motion differs by as little as ~0.1–0.5 levels with R² ≥ 0.37 (the sim's 720P t2v; a small orb moving alone).
REPEAT_EXACT = 0.02
REPEAT_CAP = 3.0
REPEAT_R2 = 0.2
_BLOCK = 8  # px at half the analysis size (16 at the analysis size): one motion vector per block

_LEVELS = np.arange(-128, 128, dtype=np.float64)  # histogram bins of a difference, clipped to −128…127


def difference_histogram(cur16: np.ndarray, prev16: np.ndarray) -> np.ndarray:
    """Counts of cur − prev per level −128…127 (larger differences fall in the end bins): an 8-bit
    histogram, which OpenCV counts ~3× faster than numpy's bincount of the int16 differences."""
    import cv2

    shifted = (np.clip(cur16 - prev16, -128, 127) + 128).astype(np.uint8)
    return cv2.calcHist([shifted], [0], None, [256], [0, 256]).ravel().astype(np.float64)


def brightness_step(counts: np.ndarray) -> float:
    """Robust location of a histogram of pixel differences (`difference_histogram`): Tukey's biweight
    M-estimate (scale BAND levels) started from the interpolated median. Moving texture spreads the
    differences symmetrically around the global brightness change, which stays where most of the mass is;
    the weights are continuous in the location, so the estimate does not jump by whole levels as an
    integer median (or a hard band around it) would."""
    half = counts.sum() / 2
    cum = np.cumsum(counts)
    k = int(np.searchsorted(cum, half))
    below = cum[k - 1] if k else 0.0
    loc = _LEVELS[k] - 0.5 + (half - below) / counts[k]
    for _ in range(4):
        base = math.floor(loc) + 128  # the bin of floor(loc); take the bins within loc ± BAND
        lo, hi = max(0, base - BAND), min(256, base + BAND + 2)
        levels, n = _LEVELS[lo:hi], counts[lo:hi]
        u = (levels - loc) / BAND
        w = np.maximum(1 - u * u, 0.0) ** 2 * n
        total = float(w.sum())
        if total <= 0:
            break
        loc = float(w @ levels) / total
    return loc


def is_repeat(prev: np.ndarray, cur: np.ndarray, step: float) -> bool:
    """Does `cur` repeat `prev` (uint8 analysis-size luma), given their brightness step?"""
    import cv2

    mad = float(cv2.mean(cv2.absdiff(cur, prev))[0])
    if mad < REPEAT_EXACT:
        return True
    return mad < REPEAT_CAP and motion_explained(prev, cur, step) < REPEAT_R2


def motion_explained(prev: np.ndarray, cur: np.ndarray, step: float) -> float:
    """R², 0–1: the share of the pair's difference (less the global brightness step) that small translations
    explain — a least-squares motion vector per block from the gradients (one Lucas–Kanade step), at half the
    analysis size. Motion scores ≥ ~0.4; an encoder re-coding the same picture, or a local non-motion change,
    scores near 0. Valid for motion up to ~2 px at that size (4 analysis px)."""
    import cv2

    h, w = prev.shape
    half = (max(1, w // 2), max(1, h // 2))
    p = cv2.resize(prev, half, interpolation=cv2.INTER_AREA).astype(np.float32)
    c = cv2.resize(cur, half, interpolation=cv2.INTER_AREA).astype(np.float32)
    gx = cv2.Sobel(p, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)  # levels per px
    gy = cv2.Sobel(p, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    dt = c - p - np.float32(step)
    bw, bh = max(1, half[0] // _BLOCK), max(1, half[1] // _BLOCK)
    cw, ch = bw * _BLOCK if half[0] >= _BLOCK else half[0], bh * _BLOCK if half[1] >= _BLOCK else half[1]

    def block_mean(x: np.ndarray) -> np.ndarray:
        return cv2.resize(x[:ch, :cw], (bw, bh), interpolation=cv2.INTER_AREA)

    # normal equations per block; +1 (levels/px)² keeps flat blocks from explaining noise
    sxx, sxy, syy = block_mean(gx * gx) + 1.0, block_mean(gx * gy), block_mean(gy * gy) + 1.0
    sxt, syt, stt = block_mean(gx * dt), block_mean(gy * dt), float(block_mean(dt * dt).sum())
    explained = (syy * sxt * sxt - 2 * sxy * sxt * syt + sxx * syt * syt) / (sxx * syy - sxy * sxy)
    return min(1.0, float(explained.sum()) / stt) if stt > 0 else 0.0
