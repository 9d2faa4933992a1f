"""Video extension: a 2–10 s clip continued by the model, optionally towards a last frame."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..catalog import ModelSpec
from ..errors import ValidationError
from ..inputs import Media, MediaLike, to_media
from .base import Request, _m

CLIP_SECONDS = (2.0, 10.0)  # first_clip length both hosts accept (docs/WIRE.md §2)
CLIP_SLACK = 0.05  # a container's rounding: a 10.03 s file is a 10 s clip
# At least this much new footage: the output includes the clip, so a total that does not exceed it
# generates nothing (and would still be billed), and a fraction of a second shows nothing either.
MIN_NEW_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class Extend(Request):
    """Continue `video` (a 2–10 s MP4/MOV clip): the output starts with the clip and goes on as the prompt
    says, optionally ending on `last` (an image; DashScope only). `duration` is the TOTAL length of the
    output, clip included, so it must be at least the clip's seconds + 1 (e.g. a 3 s clip and duration=8
    gives 5 s of new footage); the whole `duration` is billed.

    DashScope: wan2.7-i2v with media [first_clip] or [first_clip, last_frame], duration 2–15.
    WaveSpeed: alibaba/wan-2.7/video-extend with `video`, duration 5–15, a prompt required; `last=` is
    refused there (no WaveSpeed document wanlab could read names its last-frame field)."""

    video: MediaLike = None  # type: ignore[assignment]
    last: MediaLike | None = None

    mode: ClassVar[str] = "extend"

    def _coerce_media(self) -> None:
        if self.video is None:
            raise ValidationError(
                "Extend: video is missing; give the 2–10 s clip to continue (an https URL, a local path or bytes)"
            )
        object.__setattr__(self, "video", to_media(self.video, "video", "Extend.video"))
        if self.last is not None:
            object.__setattr__(self, "last", to_media(self.last, "image", "Extend.last"))

    def _check_mode(self) -> None:
        secs = self.clip_seconds
        lo, hi = CLIP_SECONDS
        if secs is not None and not lo <= secs <= hi + CLIP_SLACK:
            raise ValidationError(
                f"Extend.video is {secs:.1f} s long; the clip to extend must be {lo:g}–{hi:g} s "
                f"({'trim it first' if secs > hi else 'use a longer clip'})"
            )

    @property
    def clip_seconds(self) -> float | None:
        """The clip's length, when known (local files and data: URIs are probed; an https URL is not)."""
        return _m(self.video).seconds

    def validate_for(self, spec: ModelSpec) -> None:
        if spec.host == "wavespeed":
            if self.last is not None:
                raise ValidationError(
                    f"Extend: last= is not sent to WaveSpeed: its {spec.id} page mentions last-frame control but "
                    f"no document wanlab could read names the field (a wrong name would be ignored, the video "
                    f"still billed); drop last=, or extend on DashScope (wan2.7-i2v takes first_clip + last_frame)"
                )
            if not self.prompt.strip():
                raise ValidationError(
                    f"Extend: prompt is empty; {spec.id} requires one: describe what happens after the clip"
                )
        super().validate_for(spec)
        secs = self.clip_seconds
        if secs is not None and self.duration < secs + MIN_NEW_SECONDS - CLIP_SLACK:
            least = math.ceil(secs + MIN_NEW_SECONDS - CLIP_SLACK)  # ≤ 11: the clip is ≤ 10 s, totals reach 15
            raise ValidationError(
                f"Extend: duration={self.duration} is the total length, clip included, and the clip is "
                f"{secs:.1f} s: that leaves under {MIN_NEW_SECONDS:g} s to generate; use duration="
                f"{least}–{spec.durations[-1]}"
            )

    def media(self) -> list[tuple[str, Media]]:
        out = [("first_clip", _m(self.video))]
        return out + ([("last_frame", _m(self.last))] if self.last is not None else [])
