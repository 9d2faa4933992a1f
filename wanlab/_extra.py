"""What may go in a request's `extra=` (host parameters wanlab has no field for): known keys are checked,
or refused in favour of the field that does the same; unknown keys must be plain JSON and are sent as
given, unchecked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _checks as checks
from .errors import ValidationError

if TYPE_CHECKING:
    from .requests import Request

# Keys that would override a request field on the wire (DashScope's "input." prefix included): refused,
# since the field is checked and logged and the extra copy would silently win.
_FIELD_KEYS = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "seed": "seed",
    "duration": "duration",
    "resolution": "resolution",
    "size": "resolution",
    "ratio": "ratio",
    "aspect_ratio": "ratio",
    "model": "model",
    "audio_setting": "audio_setting",
}
# Media go through the media fields, which check them and upload local files.
_MEDIA_KEYS = {
    "media",
    "img_url",
    "audio_url",
    "first_frame_url",
    "last_frame_url",
    "reference_urls",
    "reference_video_urls",
    "image",
    "last_image",
    "images",
    "video",
    "videos",
    "reference_images",
}
_BOOL_KEYS = {"watermark", "prompt_extend", "enable_prompt_expansion", "audio"}
_CHOICE_KEYS = {"shot_type": ("single", "multi")}


def check_extra(req: Request, extra: Mapping[Any, Any]) -> dict[str, Any]:
    """Known keys are checked (or refused in favour of the field that does the same); unknown keys only
    have to be plain JSON, and are sent as given."""
    name = type(req).__name__
    out: dict[str, Any] = {}
    own = checks.field_names(type(req))
    for key, value in extra.items():
        if not isinstance(key, str) or not key.strip():
            raise ValidationError(f"{name}: extra key {key!r} must be a non-empty str (a host parameter name)")
        key = str(key)
        bare = key[len("input.") :] if key.startswith("input.") else key
        where = f"{name}: extra[{key!r}]"
        if bare in _FIELD_KEYS:
            field_name = _FIELD_KEYS[bare]
            if field_name in own:
                raise ValidationError(
                    f"{where}: {bare} is set by the request itself; use the field "
                    f"{field_name}= instead (extra is not checked against the model)"
                )
            raise ValidationError(
                f"{where}: {name} has no field {field_name} (the host would ignore or refuse "
                f"it for this mode); drop it from extra"
            )
        if bare in _MEDIA_KEYS:
            media = [
                f
                for f in own
                if f in ("image", "first", "last", "images", "videos", "video", "grid", "first_frame", "audio")
            ]
            raise ValidationError(
                f"{where}: media are given through the request's fields "
                f"({', '.join(m + '=' for m in media) or 'none on ' + name}), which check and "
                f"upload them; drop it from extra"
            )
        if bare == "audio" and getattr(req, "audio", None) is not None:
            raise ValidationError(
                f"{where}: audio= already gives a soundtrack, and on WaveSpeed this key would "
                f"replace it; drop it from extra"
            )
        if bare in _BOOL_KEYS:
            hint = " (a soundtrack is audio=, not extra)" if bare == "audio" else ""
            try:
                value = checks.check_bool(bare, value, allow_01=True, where=f"{name}: extra")
            except ValidationError as exc:
                raise ValidationError(f"{exc}{hint}") from None
        elif bare in _CHOICE_KEYS:
            value = checks.check_choice(bare, value, _CHOICE_KEYS[bare], where=f"{name}: extra")
        else:
            value = checks.json_value(f"extra[{key!r}]", value, where=name)
        out[key] = value
    return out
