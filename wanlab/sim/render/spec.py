"""What a render is asked for (`RenderSpec`), its checks, and the seeded randomness derived from it."""

from __future__ import annotations

import hashlib
import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..defect_tags import DEFECTS

MODES: tuple[str, ...] = ("t2v", "i2v", "flf2v", "grid9", "ref2v", "edit", "extend")


_MAX_FRAMES = 36_000  # 20 min at 30 fps: far beyond any WAN request, guards typos.


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
    # grid9 [one grid picture]; ref2v reference images; edit reference images; extend [last frame]
    images: tuple[bytes, ...] = ()
    # encoded video files (MP4) in order: ref2v reference videos; edit [the input video];
    # extend [first clip]
    videos: tuple[bytes, ...] = ()
    label: str = "SIMULATION"  # banner text
    # known defects rendered on purpose, ((name, strength 0..1), ...), names from DEFECTS; 0 = clean
    # (render/defects.py says what each does)
    defects: tuple[tuple[str, float], ...] = ()


def seed_int(seed: int, salt: str) -> int:
    # sha256 rather than hash(): hash() of str is salted per process.
    digest = hashlib.sha256(f"wanlab-sim|{salt}|{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def seeded_rng(seed: int, salt: str) -> np.random.Generator:
    return np.random.default_rng(seed_int(seed, salt))


def n_frames(spec: RenderSpec) -> int:
    return max(1, round(spec.duration * spec.fps))


def validate(spec: RenderSpec) -> None:
    if spec.mode not in MODES:
        raise ValueError(f"unknown mode {spec.mode!r}; expected one of {MODES}")
    for name in ("width", "height"):
        v: int = getattr(spec, name)
        if not isinstance(v, numbers.Integral) or v < 16 or v > 8192 or v % 2:
            raise ValueError(f"{name} must be an even integer in 16..8192, got {v!r}")
    if not isinstance(spec.fps, numbers.Integral) or not 1 <= spec.fps <= 240:
        raise ValueError(f"fps must be an integer in 1..240, got {spec.fps!r}")
    if not (isinstance(spec.duration, numbers.Real) and math.isfinite(spec.duration) and spec.duration > 0):
        raise ValueError(f"duration must be a positive number, got {spec.duration!r}")
    if n_frames(spec) > _MAX_FRAMES:
        raise ValueError(f"too many frames: {n_frames(spec)} > {_MAX_FRAMES}")
    _validate_defects(spec.defects)


def _validate_defects(defects: object) -> None:
    allowed = f"expected ((name, strength), ...) with names from {DEFECTS} and strengths within 0..1"
    if not isinstance(defects, tuple):
        raise ValueError(f"defects must be a tuple; {allowed}, got {defects!r:.80}")
    seen: set[str] = set()
    for item in defects:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError(f"bad defect {item!r:.80}; {allowed}")
        name, strength = item
        if name not in DEFECTS:
            raise ValueError(f"unknown defect {name!r:.40}; {allowed}")
        if name in seen:
            raise ValueError(f"defect {name!r} is given twice")
        seen.add(name)
        if (
            isinstance(strength, bool)
            or not isinstance(strength, numbers.Real)
            or not math.isfinite(strength)
            or not 0.0 <= float(strength) <= 1.0
        ):
            raise ValueError(f"defect {name!r} strength must be a number within 0..1, got {strength!r:.40}")
