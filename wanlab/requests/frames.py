"""Modes driven by text and frames: text to video, image to video, first + last frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import ValidationError
from ..inputs import Media, MediaLike, to_media
from .base import Request, _check_ratio, _m


@dataclass(frozen=True, kw_only=True)
class T2V(Request):
    """Text to video."""

    ratio: str = "16:9"
    audio: MediaLike | None = None  # a soundtrack to follow (DashScope input.audio_url)

    mode: ClassVar[str] = "t2v"
    prompt_required: ClassVar[bool] = True

    def _coerce_media(self) -> None:
        if self.audio is not None:
            object.__setattr__(self, "audio", to_media(self.audio, "audio", "T2V.audio"))

    def _check_mode(self) -> None:
        _check_ratio(self, self.ratio)

    def media(self) -> list[tuple[str, Media]]:
        return [("audio_url", _m(self.audio))] if self.audio is not None else []


@dataclass(frozen=True, kw_only=True)
class I2V(Request):
    """Image to video: the image is the first frame."""

    image: MediaLike = None  # type: ignore[assignment]
    audio: MediaLike | None = None  # driving audio

    mode: ClassVar[str] = "i2v"

    def _coerce_media(self) -> None:
        if self.image is None:
            raise ValidationError(
                "I2V: image is missing; give the first frame as an https URL, a local path, bytes or a PIL image"
            )
        object.__setattr__(self, "image", to_media(self.image, "image", "I2V.image"))
        if self.audio is not None:
            object.__setattr__(self, "audio", to_media(self.audio, "audio", "I2V.audio"))

    def media(self) -> list[tuple[str, Media]]:
        out = [("first_frame", _m(self.image))]
        return out + ([("driving_audio", _m(self.audio))] if self.audio is not None else [])


@dataclass(frozen=True, kw_only=True)
class FLF2V(Request):
    """First + last frame: the video starts on `first` and ends on `last` (wan2.7-i2v, two media items)."""

    first: MediaLike = None  # type: ignore[assignment]
    last: MediaLike = None  # type: ignore[assignment]
    audio: MediaLike | None = None

    mode: ClassVar[str] = "flf2v"

    def _coerce_media(self) -> None:
        for name in ("first", "last"):
            if getattr(self, name) is None:
                raise ValidationError(
                    f"FLF2V: the {name} frame is missing; give both first= and last= (for a single start image use I2V)"
                )
            object.__setattr__(self, name, to_media(getattr(self, name), "image", f"FLF2V.{name}"))
        if self.audio is not None:
            object.__setattr__(self, "audio", to_media(self.audio, "audio", "FLF2V.audio"))

    def media(self) -> list[tuple[str, Media]]:
        out = [("first_frame", _m(self.first)), ("last_frame", _m(self.last))]
        return out + ([("driving_audio", _m(self.audio))] if self.audio is not None else [])
