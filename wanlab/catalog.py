"""The model catalog: which WAN model IDs each host serves, what each accepts, and what it costs.

Everything here is data plus pure look-ups (no I/O). Facts come from docs/WIRE.md. Prices, which only
third parties confirm for 2.7, are dated, sourced data rows in `prices.py` / `data/prices.csv`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import _checks as checks
from .errors import CatalogError

MODES = ("t2v", "i2v", "flf2v", "grid9", "ref2v", "edit", "extend")
MODE_NAMES = {
    "t2v": "text-to-video",
    "i2v": "image-to-video",
    "flf2v": "first + last frame",
    "grid9": "3×3 image grid",
    "ref2v": "reference-to-video",
    "edit": "instruction-based video edit",
    "extend": "video extension",
}
HOSTS = ("dashscope", "wavespeed")
REGIONS = {
    "singapore": "https://dashscope-intl.aliyuncs.com/api/v1",
    "virginia": "https://dashscope-us.aliyuncs.com/api/v1",
    "beijing": "https://dashscope.aliyuncs.com/api/v1",
}
RESOLUTIONS = ("480P", "720P", "1080P")
RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
SEED_MAX = 2_147_483_647  # seeds are integers 0–SEED_MAX on both hosts (docs/WIRE.md §2)

# Output pixels per resolution and aspect ratio, as the hosts document them for 2.7 (and 2.5 for 480P).
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "480P": {"16:9": (832, 480), "9:16": (480, 832), "1:1": (624, 624), "4:3": (720, 544), "3:4": (544, 720)},
    "720P": {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960), "4:3": (1104, 832), "3:4": (832, 1104)},
    "1080P": {
        "16:9": (1920, 1080),
        "9:16": (1080, 1920),
        "1:1": (1440, 1440),
        "4:3": (1648, 1248),
        "3:4": (1248, 1648),
    },
}


def output_size(resolution: str, ratio: str | None = None, image_aspect: float | None = None) -> tuple[int, int]:
    """Pixels of the rendered video. With an input image (i2v), about the resolution's pixel count at the
    image's aspect, sides multiples of 16 — what the hosts document for image-to-video."""
    table = SIZES[resolution]
    if image_aspect is None:
        return table[ratio or "16:9"]
    w, h = table["16:9"]
    area = w * h
    width = (area * image_aspect) ** 0.5
    height = width / image_aspect
    return max(16, int(round(width / 16)) * 16), max(16, int(round(height / 16)) * 16)


@dataclass(frozen=True)
class ModelSpec:
    """One model ID on one host, and what it accepts."""

    id: str
    host: str  # "dashscope" | "wavespeed"
    version: str  # "2.1" … "2.7"
    modes: tuple[str, ...]  # wanlab modes this ID serves
    protocol: str  # dashscope: "media" (2.7) or "legacy"; wavespeed: "flat"
    resolutions: tuple[str, ...]
    durations: tuple[int, ...]  # accepted output seconds
    regions: tuple[str, ...] = ()  # DashScope regions that serve it
    duration_with_video: tuple[int, ...] = ()  # r2v: narrower range once a reference video is given
    accepts_zero_duration: bool = False  # edit: 0 = the whole input video
    max_refs: int = 5  # r2v: images + videos
    max_edit_images: int = 3
    ratios: tuple[str, ...] = RATIOS
    usage_shape: str = "2.7"  # which `usage` JSON the host returns: "2.7" | "2.6" | "2.5"
    notes: str = ""
    latency_base_s: float = 60.0  # sim/ETA model: queue-free run time = base + per_s × output seconds
    latency_per_s: Mapping[str, float] = field(default_factory=lambda: {"480P": 6.0, "720P": 12.0, "1080P": 20.0})

    @property
    def label(self) -> str:
        return f"{self.id} (WAN {self.version}, {self.host})"

    def duration_range(self, has_video: bool = False) -> tuple[int, ...]:
        return self.duration_with_video if (has_video and self.duration_with_video) else self.durations

    def expected_latency(self, resolution: str, duration: float) -> float:
        """Seconds from start to end of rendering, without queueing — the centre of the sim's model
        and the ETA poller's prior."""
        return self.latency_base_s + self.latency_per_s.get(resolution, 12.0) * max(duration, 1.0)


def _r(lo: int, hi: int) -> tuple[int, ...]:
    return tuple(range(lo, hi + 1))


_DS_27 = ("singapore", "beijing")
_DS_ALL = ("singapore", "virginia", "beijing")
_HD = ("720P", "1080P")
_ALL_RES = ("480P", "720P", "1080P")

# A data table: one model a row reads better than one field a line.
# fmt: off
_MODELS: list[ModelSpec] = [
    # DashScope, WAN 2.7 ("media" protocol)
    ModelSpec("wan2.7-t2v", "dashscope", "2.7", ("t2v",), "media", _HD, _r(2, 15), _DS_27),
    ModelSpec("wan2.7-t2v-2026-06-12", "dashscope", "2.7", ("t2v",), "media", _HD, _r(2, 15), _DS_27,
              notes="dated snapshot [2nd]"),
    ModelSpec("wan2.7-t2v-2026-04-25", "dashscope", "2.7", ("t2v",), "media", _HD, _r(2, 15), _DS_27,
              notes="dated snapshot"),
    # extend is wan2.7-i2v with a first_clip: `duration` is then the total length, clip included (§1)
    ModelSpec("wan2.7-i2v", "dashscope", "2.7", ("i2v", "flf2v", "extend"), "media", _HD, _r(2, 15), _DS_27),
    ModelSpec("wan2.7-i2v-2026-04-25", "dashscope", "2.7", ("i2v", "flf2v", "extend"), "media", _HD, _r(2, 15),
              _DS_27,
              notes="dated snapshot"),
    ModelSpec("wan2.7-r2v", "dashscope", "2.7", ("grid9", "ref2v"), "media", _HD, _r(2, 15), _DS_27,
              duration_with_video=_r(2, 10), usage_shape="2.7"),
    ModelSpec("wan2.7-r2v-2026-06-12", "dashscope", "2.7", ("grid9", "ref2v"), "media", _HD, _r(2, 15), _DS_27,
              duration_with_video=_r(2, 10), notes="dated snapshot [2nd]"),
    ModelSpec("wan2.7-videoedit", "dashscope", "2.7", ("edit",), "media", _HD, _r(2, 10), _DS_27,
              accepts_zero_duration=True),
    # DashScope, WAN 2.6 (legacy protocol: img_url / reference_urls / size)
    ModelSpec("wan2.6-t2v", "dashscope", "2.6", ("t2v",), "legacy", _HD, _r(2, 15), _DS_ALL, usage_shape="2.6"),
    ModelSpec("wan2.6-i2v", "dashscope", "2.6", ("i2v",), "legacy", _HD, _r(2, 15), _DS_ALL, usage_shape="2.6"),
    ModelSpec("wan2.6-i2v-flash", "dashscope", "2.6", ("i2v",), "legacy", _HD, _r(2, 15), _DS_ALL, usage_shape="2.6",
              latency_base_s=30.0),
    ModelSpec("wan2.6-r2v", "dashscope", "2.6", ("ref2v",), "legacy", _HD, _r(2, 10), _DS_ALL, usage_shape="2.6",
              max_refs=3),
    ModelSpec("wan2.6-r2v-flash", "dashscope", "2.6", ("ref2v",), "legacy", _HD, _r(2, 10), _DS_ALL,
              usage_shape="2.6", max_refs=3, latency_base_s=30.0),
    ModelSpec("wan2.6-t2v-us", "dashscope", "2.6", ("t2v",), "legacy", _HD, (5, 10), ("virginia",), usage_shape="2.6"),
    ModelSpec("wan2.6-i2v-us", "dashscope", "2.6", ("i2v",), "legacy", _HD, (5, 10), ("virginia",), usage_shape="2.6"),
    # DashScope, WAN 2.5 / 2.2 / 2.1
    ModelSpec("wan2.5-t2v-preview", "dashscope", "2.5", ("t2v",), "legacy", _ALL_RES, (5, 10), _DS_27,
              usage_shape="2.5"),
    ModelSpec("wan2.5-i2v-preview", "dashscope", "2.5", ("i2v",), "legacy", _ALL_RES, (5, 10), _DS_27,
              usage_shape="2.5"),
    ModelSpec("wan2.2-t2v-plus", "dashscope", "2.2", ("t2v",), "legacy", ("480P", "1080P"), (5,), _DS_27,
              usage_shape="2.5"),
    ModelSpec("wan2.2-i2v-plus", "dashscope", "2.2", ("i2v",), "legacy", ("480P", "1080P"), (5,), _DS_27,
              usage_shape="2.5"),
    ModelSpec("wan2.2-kf2v-flash", "dashscope", "2.2", ("flf2v",), "legacy", _ALL_RES, (5,), _DS_27,
              usage_shape="2.5"),
    ModelSpec("wanx2.1-t2v-turbo", "dashscope", "2.1", ("t2v",), "legacy", ("480P", "720P"), (5,), _DS_27,
              usage_shape="2.5"),
    ModelSpec("wanx2.1-t2v-plus", "dashscope", "2.1", ("t2v",), "legacy", ("720P",), (5,), _DS_27, usage_shape="2.5"),
    ModelSpec("wanx2.1-i2v-turbo", "dashscope", "2.1", ("i2v",), "legacy", ("480P", "720P"), (3, 4, 5), _DS_27,
              usage_shape="2.5"),
    ModelSpec("wanx2.1-i2v-plus", "dashscope", "2.1", ("i2v",), "legacy", ("720P",), (5,), _DS_27, usage_shape="2.5"),
    ModelSpec("wanx2.1-kf2v-plus", "dashscope", "2.1", ("flf2v",), "legacy", ("720P",), (5,), _DS_27,
              usage_shape="2.5"),
    # WaveSpeed (flat protocol; the model path is the id)
    ModelSpec("alibaba/wan-2.7/text-to-video", "wavespeed", "2.7", ("t2v",), "flat", _HD, _r(2, 15)),
    ModelSpec("alibaba/wan-2.7/image-to-video", "wavespeed", "2.7", ("i2v", "flf2v"), "flat", _HD, _r(2, 15)),
    ModelSpec("alibaba/wan-2.7/reference-to-video", "wavespeed", "2.7", ("grid9", "ref2v"), "flat", _HD, _r(2, 15),
              duration_with_video=_r(2, 10), notes="grid mode [2nd]: no WaveSpeed doc names it"),
    ModelSpec("alibaba/wan-2.7/video-edit", "wavespeed", "2.7", ("edit",), "flat", _HD, _r(2, 10),
              accepts_zero_duration=True),
    ModelSpec("alibaba/wan-2.7/video-extend", "wavespeed", "2.7", ("extend",), "flat", _HD, _r(5, 15),
              notes="duration is the total length, clip included"),
    ModelSpec("alibaba/wan-2.6/text-to-video", "wavespeed", "2.6", ("t2v",), "flat", _HD, (5, 10, 15),
              usage_shape="2.6"),
    ModelSpec("alibaba/wan-2.6/image-to-video", "wavespeed", "2.6", ("i2v",), "flat", _HD, (5, 10, 15),
              usage_shape="2.6"),
    ModelSpec("alibaba/wan-2.6/image-to-video-flash", "wavespeed", "2.6", ("i2v",), "flat", _HD, (5, 10, 15),
              usage_shape="2.6", latency_base_s=30.0),
    ModelSpec("alibaba/wan-2.6/reference-to-video", "wavespeed", "2.6", ("ref2v",), "flat", _HD, (5, 10),
              usage_shape="2.6", max_refs=3),
    ModelSpec("alibaba/wan-2.5/text-to-video", "wavespeed", "2.5", ("t2v",), "flat", _ALL_RES, (5, 10),
              usage_shape="2.5"),
    ModelSpec("alibaba/wan-2.5/image-to-video", "wavespeed", "2.5", ("i2v",), "flat", _ALL_RES, (5, 10),
              usage_shape="2.5"),
    ModelSpec("wavespeed-ai/wan-2.2/t2v-480p", "wavespeed", "2.2", ("t2v",), "flat", ("480P",), (5, 8),
              usage_shape="2.5"),
    ModelSpec("wavespeed-ai/wan-2.2/i2v-480p", "wavespeed", "2.2", ("i2v",), "flat", ("480P",), (5, 8),
              usage_shape="2.5"),
    ModelSpec("wavespeed-ai/wan-2.2/i2v-720p", "wavespeed", "2.2", ("i2v",), "flat", ("720P",), (5, 8),
              usage_shape="2.5"),
]
# fmt: on

# IDs that look right but do not exist, and what to use instead — checked before "did you mean".
KNOWN_TRAPS = {
    "wan2.7-flf2v": "there is no wan2.7-flf2v: first + last frame is 'wan2.7-i2v' with two media items "
    "(wanlab.FLF2V does that for you)",
    "wan2.7-kf2v": "there is no wan2.7-kf2v: first + last frame is 'wan2.7-i2v' with two media items "
    "(wanlab.FLF2V does that for you)",
    "wan2.7-grid": "the 3×3 grid is one grid picture sent to 'wan2.7-r2v' (wanlab.Grid9 composes it)",
    "wan2.7-edit": "the editor is 'wan2.7-videoedit'",
    "wan2.7-r2v-grid": "the 3×3 grid is one grid picture sent to 'wan2.7-r2v' (wanlab.Grid9 composes it)",
    "alibaba/wan-2.7/first-last-frame-to-video": "first + last frame is 'alibaba/wan-2.7/image-to-video' "
    "with `image` and `last_image`",
    "wan2.7-extend": "extend is 'wan2.7-i2v' with a first_clip (wanlab.Extend does that for you)",
    "wan2.7-video-extend": "extend is 'wan2.7-i2v' with a first_clip (wanlab.Extend does that for you)",
}

CATALOG: dict[str, ModelSpec] = {m.id: m for m in _MODELS}

# The newest model per host and mode: what a request without `model=` uses.
DEFAULT_MODELS: dict[str, dict[str, str]] = {
    "dashscope": {
        "t2v": "wan2.7-t2v",
        "i2v": "wan2.7-i2v",
        "flf2v": "wan2.7-i2v",
        "grid9": "wan2.7-r2v",
        "ref2v": "wan2.7-r2v",
        "edit": "wan2.7-videoedit",
        "extend": "wan2.7-i2v",
    },
    "wavespeed": {
        "t2v": "alibaba/wan-2.7/text-to-video",
        "i2v": "alibaba/wan-2.7/image-to-video",
        "flf2v": "alibaba/wan-2.7/image-to-video",
        "grid9": "alibaba/wan-2.7/reference-to-video",
        "ref2v": "alibaba/wan-2.7/reference-to-video",
        "edit": "alibaba/wan-2.7/video-edit",
        "extend": "alibaba/wan-2.7/video-extend",
    },
}
# Virginia serves WAN 2.6 only.
REGION_DEFAULTS: dict[str, dict[str, str]] = {
    "virginia": {"t2v": "wan2.6-t2v", "i2v": "wan2.6-i2v", "ref2v": "wan2.6-r2v"},
}


def _check_host(host: object, allow_none: bool = False) -> None:
    if host is None and allow_none:
        return
    if host not in HOSTS:
        raise CatalogError(f"host={host!r}; use {' or '.join(repr(h) for h in HOSTS)}{checks.suggest(host, HOSTS)}")


def _check_mode(mode: object) -> None:
    if mode not in MODES:
        raise CatalogError(
            f"mode={mode!r} is not a wanlab mode; use one of {', '.join(MODES)}{checks.suggest(mode, MODES)}"
        )


def models(
    host: str | None = None, mode: str | None = None, version: str | None = None, region: str | None = None
) -> list[ModelSpec]:
    """The catalog filtered; newest version first. An unknown host or mode is an error, not an empty list."""
    _check_host(host, allow_none=True)
    if mode is not None:
        _check_mode(mode)
    out = [
        m
        for m in _MODELS
        if (host is None or m.host == host)
        and (mode is None or mode in m.modes)
        and (version is None or m.version == version)
        and (region is None or m.host != "dashscope" or region in m.regions)
    ]
    return sorted(out, key=lambda m: tuple(int(p) for p in m.version.split(".")), reverse=True)


def get_model(model_id: str, host: str | None = None, mode: str | None = None) -> ModelSpec:
    """Look a model ID up; a stale, mistyped or other-host ID raises CatalogError naming the closest IDs
    (for another host's ID, its twin there, one serving `mode` when given)."""
    if not isinstance(model_id, str) or not model_id:
        raise CatalogError(
            f"model={model_id!r} must be a model ID string such as 'wan2.7-t2v' or "
            f"'alibaba/wan-2.7/text-to-video' (see wanlab.catalog.models())"
        )
    _check_host(host, allow_none=True)
    spec = CATALOG.get(model_id)
    if spec is not None and (host is None or spec.host == host):
        return spec
    if spec is not None:  # right ID, other host
        twin = equivalent(spec, host, mode)
        hint = f"; on {host} use model={twin.id!r}" if twin else ""
        raise CatalogError(f"model={model_id!r} is a {spec.host} model ID{hint}")
    candidates = [m.id for m in _MODELS if host is None or m.host == host]
    close = difflib.get_close_matches(model_id, candidates, n=3, cutoff=0.5)
    trap = KNOWN_TRAPS.get(model_id)
    if trap and host == "wavespeed":
        trap = None  # the traps' advice names DashScope IDs; on WaveSpeed, "did you mean" is the better hint
    msg = f"model={model_id!r} is not a known WAN model ID"
    if host:
        msg += f" on {host}"
    if trap:
        msg += f": {trap}"
    elif close:
        msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
    else:
        msg += f"; see wanlab.catalog.models(host={host!r})"
    raise CatalogError(msg)


def equivalent(spec: ModelSpec, host: str | None, mode: str | None = None) -> ModelSpec | None:
    """The same version on another host serving `mode` (if given) and the most modes in common, if any:
    hosts split modes differently (DashScope's wan2.7-i2v also extends, WaveSpeed has a video-extend path)."""
    candidates = [m for m in models(host=host, version=spec.version) if mode is None or mode in m.modes]
    shared = [(len(set(spec.modes) & set(m.modes)), m) for m in candidates]
    best = max((n for n, _ in shared), default=0)
    return next((m for n, m in shared if n == best), None) if best else None


def default_model(host: str, mode: str, region: str | None = None) -> ModelSpec:
    _check_host(host)
    _check_mode(mode)
    if host == "dashscope" and region in REGION_DEFAULTS:
        mid = REGION_DEFAULTS[region].get(mode)
        if mid is None:
            raise CatalogError(
                f"DashScope {region} serves WAN 2.6 only and no 2.6 model there does {MODE_NAMES[mode]}; "
                f"use region='singapore' or 'beijing' for WAN 2.7"
            )
        return CATALOG[mid]
    return CATALOG[DEFAULT_MODELS[host][mode]]


__all__ = [
    "CATALOG",
    "MODES",
    "RATIOS",
    "REGIONS",
    "RESOLUTIONS",
    "ModelSpec",
    "default_model",
    "equivalent",
    "get_model",
    "models",
    "output_size",
]
