"""Modes driven by references: the 3×3 image grid, reference videos and images, and video edit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import _checks as checks
from ..catalog import ModelSpec
from ..errors import ValidationError
from ..inputs import Media, MediaLike, compose_grid, to_media
from .base import PROMPT_MAX, Request, _check_ratio, _m, _media_tuple


@dataclass(frozen=True, kw_only=True)
class Grid9(Request):
    """A 3×3 storyboard: nine images composed into one grid picture (or one ready-made grid) sent to
    wan2.7-r2v, which reads the grid as shots. `shots` (up to nine descriptions) become the prompt
    "Shot 1: … Shot 2: …", the form the hosts' docs advise."""

    images: Sequence[MediaLike] = ()
    grid: MediaLike | None = None
    shots: Sequence[str] = ()
    ratio: str = "16:9"

    mode: ClassVar[str] = "grid9"

    def _coerce_media(self) -> None:
        images = _media_tuple(self.images, "image", "Grid9.images") if self.images is not None else ()
        if self.grid is not None and images:
            raise ValidationError("Grid9: give either nine images= or one grid= picture, not both")
        if self.grid is None and len(images) != 9:
            raise ValidationError(
                f"Grid9: got {len(images)} image(s); a 3×3 grid takes exactly 9 "
                f"(or pass one ready-made grid picture as grid=)"
            )
        object.__setattr__(self, "images", images)
        if self.grid is not None:
            object.__setattr__(self, "grid", to_media(self.grid, "image", "Grid9.grid"))
        shots = [self.shots] if isinstance(self.shots, str) else list(self.shots or ())
        if len(shots) > 9 or not all(isinstance(s, str) for s in shots):
            raise ValidationError(f"Grid9: shots must be up to 9 strings (one per tile), got {len(shots)}")
        object.__setattr__(self, "shots", tuple(shots))
        if images:
            _ = self.grid_picture  # compose now: a tile that cannot be composed fails here
        if not self.storyboard.strip():
            raise ValidationError(
                "Grid9: prompt is empty; describe the story, ideally shot by shot "
                "(pass shots=[...] and wanlab writes 'Shot 1: … Shot 2: …')"
            )
        checks.check_text("shots", self.storyboard, where="Grid9")
        if len(self.storyboard) > PROMPT_MAX:
            raise ValidationError(
                f"Grid9: prompt with its shots is {len(self.storyboard)} characters; the hosts "
                f"accept ≤ {PROMPT_MAX}: shorten the shots"
            )

    @property
    def storyboard(self) -> str:
        """The prompt sent: `prompt` followed by "Shot 1: … Shot 2: …" from `shots`."""
        story = " ".join(f"Shot {i + 1}: {s.strip()}" for i, s in enumerate(self.shots))
        return f"{self.prompt.strip()} {story}".strip()

    @property
    def grid_picture(self) -> Media:
        """The one picture sent: `grid`, or the nine images composed 3×3 (computed once)."""
        cached = self.__dict__.get("_grid_picture")
        if cached is None:
            cached = _m(self.grid) if self.grid is not None else compose_grid([_m(i) for i in self.images])
            object.__setattr__(self, "_grid_picture", cached)
        return cached

    def wire_prompt(self) -> str:
        return self.storyboard

    def params(self) -> dict[str, Any]:
        out = super().params()
        out["grid"] = self.grid_picture.describe()
        return out

    def _check_mode(self) -> None:
        _check_ratio(self, self.ratio)

    def media(self) -> list[tuple[str, Media]]:
        return [("reference_image", self.grid_picture)]


@dataclass(frozen=True, kw_only=True)
class Ref2V(Request):
    """Reference to video: 1–5 references in total (videos and images), named in the prompt as
    "Video 1", "Image 1" …; optionally a first frame."""

    videos: Sequence[MediaLike] = ()
    images: Sequence[MediaLike] = ()
    first_frame: MediaLike | None = None
    ratio: str = "16:9"

    mode: ClassVar[str] = "ref2v"
    prompt_required: ClassVar[bool] = True

    def _coerce_media(self) -> None:
        object.__setattr__(self, "videos", _media_tuple(self.videos, "video", "Ref2V.videos"))
        object.__setattr__(self, "images", _media_tuple(self.images, "image", "Ref2V.images"))
        if self.first_frame is not None:
            object.__setattr__(self, "first_frame", to_media(self.first_frame, "image", "Ref2V.first_frame"))

    def _check_mode(self) -> None:
        n = len(self.videos) + len(self.images)
        if n == 0:
            raise ValidationError("Ref2V: no references; give 1–5 in total as videos=[...] and/or images=[...]")
        for i, v in enumerate(map(_m, self.videos)):
            if v.seconds is not None and not 1 <= v.seconds <= 30:
                raise ValidationError(f"Ref2V.videos[{i}] is {v.seconds:.1f} s; reference videos must be 1–30 s")
        _check_ratio(self, self.ratio)

    @property
    def has_video_reference(self) -> bool:
        return bool(self.videos)

    def validate_for(self, spec: ModelSpec) -> None:
        n = len(self.videos) + len(self.images)
        if self.first_frame is not None and spec.protocol == "legacy":
            raise ValidationError(
                f"Ref2V: first_frame is a WAN 2.7 feature; {spec.id} has no first-frame input "
                f"(drop first_frame or use model='wan2.7-r2v')"
            )
        if n > spec.max_refs:
            raise ValidationError(
                f"Ref2V: got {n} references ({len(self.videos)} videos + {len(self.images)} images); "
                f"{spec.id} takes 1–{spec.max_refs} in total"
            )
        super().validate_for(spec)

    def media(self) -> list[tuple[str, Media]]:
        out = [("reference_video", _m(v)) for v in self.videos] + [("reference_image", _m(m)) for m in self.images]
        return out + ([("first_frame", _m(self.first_frame))] if self.first_frame is not None else [])


@dataclass(frozen=True, kw_only=True)
class Edit(Request):
    """Instruction-based edit of one 2–10 s video (the instruction is the prompt), with 0–3 reference
    images. duration=0 keeps the input's length."""

    video: MediaLike = None  # type: ignore[assignment]
    images: Sequence[MediaLike] = ()
    audio_setting: str = "auto"
    duration: int = 0
    ratio: str | None = None

    mode: ClassVar[str] = "edit"
    prompt_required: ClassVar[bool] = True

    def _coerce_media(self) -> None:
        if self.video is None:
            raise ValidationError("Edit: video is missing; give the 2–10 s clip to edit (URL, local path or bytes)")
        object.__setattr__(self, "video", to_media(self.video, "video", "Edit.video"))
        object.__setattr__(self, "images", _media_tuple(self.images, "image", "Edit.images"))

    def _check_mode(self) -> None:
        secs = _m(self.video).seconds
        if secs is not None and not 2 <= secs <= 10.05:
            raise ValidationError(f"Edit.video is {secs:.1f} s long; the editor takes a 2–10 s clip (trim it first)")
        if self.audio_setting not in ("auto", "origin"):
            raise ValidationError(f"Edit: audio_setting={self.audio_setting!r}; use 'auto' or 'origin'")
        if self.ratio is not None:
            _check_ratio(self, self.ratio)

    def validate_for(self, spec: ModelSpec) -> None:
        if len(self.images) > spec.max_edit_images:
            raise ValidationError(
                f"Edit: got {len(self.images)} reference images; {spec.id} takes 0–{spec.max_edit_images}"
            )
        super().validate_for(spec)

    def media(self) -> list[tuple[str, Media]]:
        return [("video", _m(self.video))] + [("reference_image", _m(m)) for m in self.images]

    def output_seconds(self) -> float:
        if self.duration:
            return float(self.duration)
        secs = _m(self.video).seconds
        return float(secs) if secs else 5.0
