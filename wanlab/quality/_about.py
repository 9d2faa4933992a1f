"""What each key of `measure()`'s result means: `FIGURES` (docs/QUALITY.md is the long version)."""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple


class Figure(NamedTuple):
    what: str  # what it measures
    unit: str
    range: str
    how: str  # how it is computed (library, analysis size, sampling)
    blind: str  # what it cannot see


_A = "luma at the analysis size (long side 320 px, area-averaged from the decoded Y plane, full range 0–255)"

FIGURES: MappingProxyType[str, Figure] = MappingProxyType(
    {
        "width": Figure("delivered frame width", "px", "> 0", "the stream's codec parameters (PyAV)", "cropping"),
        "height": Figure("delivered frame height", "px", "> 0", "the stream's codec parameters (PyAV)", "cropping"),
        "fps": Figure(
            "delivered frame rate",
            "frames/s",
            "> 0, 0 if unknown",
            "stream average_rate (else guessed_rate)",
            "variable frame rate: only the average is given",
        ),
        "frames": Figure("frames decoded", "frames", "≥ 1", "every frame is decoded", "—"),
        "duration": Figure(
            "delivered duration",
            "s",
            "≥ 0",
            "stream duration × time base, else the container's, else frames/fps",
            "an audio track's length",
        ),
        "sampled": Figure(
            "frames analysed at the analysis size (all decoded frames)",
            "frames",
            "≥ 1",
            "every frame; motion uses 30 of the pairs, sharpness/exposure 16 of the frames",
            "—",
        ),
        "flicker": Figure(
            "frame-to-frame brightness jitter that motion and smooth fades do not explain",
            "luma levels (8-bit, full range): ≈ the std of i.i.d. per-frame brightness offsets",
            "≥ 0; < 0.1 clean; None under 3 frames",
            "per consecutive pair the global brightness step = Tukey's biweight location (scale 10 levels) of the "
            f"pixel differences ({_A}), robust to moving texture; flicker = RMS of the change of that step ÷ √6 "
            "(the second difference of brightness, so a steady fade scores 0)",
            "local flicker (one region pulsing while the rest is steady), colour flicker at constant luma, slow "
            "pumping (period ≫ 3 frames); a hard cut counts as a jolt of flicker; an encoder's B-frame fade "
            "handling counts (it is in the signal)",
        ),
        "frozen": Figure(
            "fraction of consecutive frames that repeat the previous one",
            "fraction of the n−1 frame steps",
            "0–1; 0 clean; None with 1 frame",
            f"every consecutive pair ({_A}): a repeat when the mean |difference| is < 0.02 levels, or < 3 levels "
            "with under 20 % of it (less the global brightness step) explained by motion — a block-wise "
            "Lucas–Kanade fit at half the analysis size. H.264 keeps refining a repeated picture for a few frames "
            "(up to ~2.7 levels on grainy content), which is not motion",
            "a still scene counts as frozen (a small object moving, even 0.4 % of the picture, does not); a "
            "brightness change alone does not stop a repeat counting; fast motion (> ~4 analysis px/frame) of very "
            "smooth content can pass for a repeat; a repeat re-coded with > 3 levels of change is missed",
        ),
        "motion": Figure(
            "mean apparent motion",
            "px per frame at the analysis size (long side 320 px)",
            "≥ 0; None with 1 frame",
            "OpenCV DIS optical flow (PRESET_FAST patches, finest scale 1, no variational refinement: 1.00–1.03× "
            f"the truth on known pans of 0.25–6 px/frame) on 30 consecutive pairs spread over the clip ({_A}); "
            "mean magnitude over pixels and pairs",
            "motion in flat, textureless areas (aperture problem); motion between the sampled pairs; does not tell "
            "camera from object motion; brightness changes can read as motion; jerky motion sampled on 30 pairs "
            "can differ ±10 % from every pair",
        ),
        "sharpness": Figure(
            "fine detail / focus",
            "variance of the Laplacian, (luma levels)²",
            "≥ 0; higher is sharper",
            "cv2.Laplacian (3×3, 4-neighbour) at the detail size (long side 640 px, area-averaged, full-range "
            "luma), mean over 16 frames spread over the clip",
            "noise, grain and compression blocking raise it; depends on content (a flat sky is 'blurred'); detail "
            "finer than 640 px; compare within a scene or prompt, not across",
        ),
        "exposure": Figure(
            "fraction of clipped pixels (black + white)",
            "fraction of pixels",
            "0–1; 0 clean",
            "full-resolution luma of 16 frames spread over the clip; full-range luma ≤ 2 is black, ≥ 253 white",
            "clipping in one colour channel only; crushed but unclipped shadows; brief flashes between samples; "
            "a deliberately black/white subject",
        ),
        "exposure_black": Figure("fraction of pixels clipped black (luma ≤ 2)", "fraction", "0–1", "as exposure", ""),
        "exposure_white": Figure("fraction of pixels clipped white (luma ≥ 253)", "fraction", "0–1", "as exposure", ""),
        "first_ssim": Figure(
            "similarity of the first frame to the given first image",
            "SSIM",
            "−1–1; 1 identical; None without image",
            "scikit-image structural_similarity (Gaussian σ 1.5, data range 255) on luma at the analysis size; the "
            "image is EXIF-rotated, centre-cropped to the video's aspect ratio and resized (cover fit)",
            "colour; a host that fits by padding or stretching instead of cropping scores low; detail finer than "
            "320 px",
        ),
        "last_ssim": Figure(
            "similarity of the last frame to the given last image",
            "SSIM",
            "−1–1; 1 identical; None without image",
            "as first_ssim, with the last decoded frame",
            "as first_ssim",
        ),
        "conforms": Figure(
            "does the video match what was asked",
            "bool",
            "True/False; None without expect",
            "width and height exact, fps within 0.5 %, duration within one frame period (+1 ms)",
            "content: only the container's facts are compared",
        ),
        "conformance": Figure(
            "how it does not match",
            "text",
            "'' when it conforms; None without expect",
            "short phrases joined by '; ', e.g. '1280x704, asked 1280x720; 4.9 s, asked 5 s'",
            "—",
        ),
    }
)

QUALITY_COLUMNS: tuple[str, ...] = (
    "flicker",
    "frozen",
    "motion",
    "sharpness",
    "exposure",
    "exposure_black",
    "exposure_white",
    "first_ssim",
    "last_ssim",
    "conforms",
    "conformance",
)
