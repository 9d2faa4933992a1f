"""What to make: one frozen, validated request type per WAN mode.

A request never knows a URL or a host. It is checked twice, both times before anything is sent:
on creation against the model it names (or the newest WAN model for its mode, whose rules are the
same on both hosts), and again by the Lab against the exact model the chosen host will run.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import KW_ONLY, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from . import catalog, checks
from .catalog import MODE_NAMES, ModelSpec
from .errors import CatalogError, ValidationError
from .inputs import Media, MediaLike, compose_grid, to_media

SEED_MAX = 2_147_483_647
PROMPT_MAX = 5000
NEGATIVE_MAX = 500


@dataclass(frozen=True)
class Request:
    """Fields every mode shares. Use a subclass: T2V, I2V, FLF2V, Grid9, Ref2V, Edit.

    Numbers may be numpy scalars (`seed=np.int64(3)`); they are stored as Python ints.

    `extra` holds host parameters wanlab has no field for, sent as given (DashScope: into `parameters`,
    or into `input` with an "input." prefix; WaveSpeed: into the body). Known keys are checked:
    `watermark`, `prompt_extend`, `enable_prompt_expansion` and `audio` must be booleans, `shot_type`
    'single' or 'multi'; keys a field covers (seed, duration, resolution/size, prompt, negative_prompt,
    ratio/aspect_ratio, model, media URLs …) are refused — use the field. Any other key is UNCHECKED:
    it only has to be plain JSON (str, finite number, bool, None, list, dict), and the host decides.
    """

    prompt: str = ""
    _: KW_ONLY
    negative_prompt: str = ""
    model: str | None = None
    resolution: str = "720P"
    duration: int = 5
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    mode: ClassVar[str] = ""
    prompt_required: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self._check_common()
        self._coerce_media()
        self._check_mode()
        self.validate_for(self._creation_model())

    # -- checks that hold for every model --------------------------------------------------------
    def _check_common(self) -> None:
        name = type(self).__name__
        prompt = checks.check_text("prompt", self.prompt, maximum=PROMPT_MAX, where=name)
        object.__setattr__(self, "prompt", prompt)
        if self.prompt_required and not prompt.strip():
            what = "the edit instruction" if self.mode == "edit" else "what to show"
            raise ValidationError(f"{name}: prompt is empty; describe {what} (the host would accept the task and "
                                  f"then fail it with 'Field required: input.prompt')")
        if not isinstance(self.negative_prompt, str) or len(self.negative_prompt) > NEGATIVE_MAX:
            raise ValidationError(f"{name}: negative_prompt must be a str of ≤ {NEGATIVE_MAX} characters")
        object.__setattr__(self, "negative_prompt", checks.check_text("negative_prompt", self.negative_prompt,
                                                                      where=name))
        object.__setattr__(self, "resolution", _check_resolution(name, self.resolution))
        object.__setattr__(self, "duration", checks.check_number(
            "duration", self.duration, integer=True, what="a whole number of seconds", where=name))
        object.__setattr__(self, "seed", checks.check_number(
            "seed", self.seed, minimum=0, maximum=SEED_MAX, integer=True, allow_none=True, where=name,
            hint=" (or None for a random seed)"))
        if not isinstance(self.extra, Mapping):
            raise ValidationError(f"{name}: extra must be a dict of host parameters, got {type(self.extra).__name__}")
        object.__setattr__(self, "extra", _check_extra(self, self.extra))
        if self.model is not None:
            if isinstance(self.model, str):
                object.__setattr__(self, "model", str(self.model))
            catalog.get_model(self.model)   # a stale or mistyped ID fails here, naming the closest ones

    def _coerce_media(self) -> None:
        """Subclasses turn their media fields into checked Media values."""

    def _check_mode(self) -> None:
        """Subclass rules that do not depend on the model."""

    def _creation_model(self) -> ModelSpec:
        if self.model is not None:
            spec = catalog.get_model(self.model)
            self._check_model_mode(spec)
            return spec
        return catalog.default_model("dashscope", self.mode)

    def _check_model_mode(self, spec: ModelSpec) -> None:
        if self.mode not in spec.modes:
            right = catalog.default_model(spec.host, self.mode)
            does = " and ".join(MODE_NAMES[m] for m in spec.modes)
            raise CatalogError(f"{type(self).__name__}: model={spec.id!r} does {does}, not "
                               f"{MODE_NAMES[self.mode]}; use model={right.id!r} (or leave model unset)")

    # -- checks against one model ----------------------------------------------------------------
    @property
    def has_video_reference(self) -> bool:
        return False

    def validate_for(self, spec: ModelSpec) -> None:
        """Raise ValidationError if `spec` would refuse this request."""
        name = type(self).__name__
        self._check_model_mode(spec)
        if self.resolution not in spec.resolutions:
            extra = ""
            if self.resolution == "480P" and spec.version == "2.7":
                extra = " (480P is wan2.5 and older, e.g. model='wan2.5-t2v-preview')"
            raise ValidationError(f"{name}: resolution={self.resolution!r}: {spec.id} (WAN {spec.version}) renders "
                                  f"{' and '.join(spec.resolutions)} only{extra}")
        allowed = spec.duration_range(self.has_video_reference)
        if self.duration == 0 and spec.accepts_zero_duration:
            return
        if self.duration not in allowed:
            if allowed == tuple(range(allowed[0], allowed[-1] + 1)):
                rule = f"{allowed[0]}–{allowed[-1]} s"
            else:
                rule = " or ".join(f"{d}" for d in allowed) + " s"
            why = " when a reference video is given" if self.has_video_reference and spec.duration_with_video else ""
            zero = " (or 0 for the whole input video)" if spec.accepts_zero_duration else ""
            raise ValidationError(f"{name}: duration={self.duration}: {spec.id} (WAN {spec.version}) accepts "
                                  f"{rule}{why}{zero}")

    # -- helpers ---------------------------------------------------------------------------------
    def media(self) -> list[tuple[str, Media]]:
        """(role, media) pairs in wire order; roles are DashScope's media types."""
        return []

    def output_seconds(self) -> float:
        return float(self.duration)

    def wire_prompt(self) -> str:
        """The prompt as sent to the host."""
        return self.prompt

    def replace(self, **changes: Any) -> "Request":
        """A copy with `changes` (field names of this request type), checked like a new request."""
        checks.check_fields(type(self), changes, where=f"{type(self).__name__}.replace")
        return replace(self, **changes)

    def params(self) -> dict[str, Any]:
        """A JSON-able description (media by URL or hash, never bytes): for logs and fingerprints."""
        out: dict[str, Any] = {"mode": self.mode}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Media):
                value = value.describe()
            elif isinstance(value, tuple) and value and isinstance(value[0], Media):
                value = [m.describe() for m in value]
            out[f.name] = value
        return out

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True, default=str).encode()).hexdigest()


def _media_tuple(value: Sequence[MediaLike] | MediaLike | None, kind: str, where: str) -> tuple[Media, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        value = [value]
    return tuple(to_media(v, kind, f"{where}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True, kw_only=True)
class T2V(Request):
    """Text to video."""

    ratio: str = "16:9"
    audio: MediaLike | None = None      # a soundtrack to follow (DashScope input.audio_url)

    mode: ClassVar[str] = "t2v"
    prompt_required: ClassVar[bool] = True

    def _coerce_media(self) -> None:
        if self.audio is not None:
            object.__setattr__(self, "audio", to_media(self.audio, "audio", "T2V.audio"))

    def _check_mode(self) -> None:
        _check_ratio(self, self.ratio)

    def media(self) -> list[tuple[str, Media]]:
        return [("audio_url", self.audio)] if self.audio is not None else []


@dataclass(frozen=True, kw_only=True)
class I2V(Request):
    """Image to video: the image is the first frame."""

    image: MediaLike = None  # type: ignore[assignment]
    audio: MediaLike | None = None      # driving audio

    mode: ClassVar[str] = "i2v"

    def _coerce_media(self) -> None:
        if self.image is None:
            raise ValidationError("I2V: image is missing; give the first frame as an https URL, a local path, "
                                  "bytes or a PIL image")
        object.__setattr__(self, "image", to_media(self.image, "image", "I2V.image"))
        if self.audio is not None:
            object.__setattr__(self, "audio", to_media(self.audio, "audio", "I2V.audio"))

    def media(self) -> list[tuple[str, Media]]:
        out = [("first_frame", self.image)]
        return out + ([("driving_audio", self.audio)] if self.audio is not None else [])


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
                raise ValidationError(f"FLF2V: the {name} frame is missing; give both first= and last= "
                                      f"(for a single start image use I2V)")
            object.__setattr__(self, name, to_media(getattr(self, name), "image", f"FLF2V.{name}"))
        if self.audio is not None:
            object.__setattr__(self, "audio", to_media(self.audio, "audio", "FLF2V.audio"))

    def media(self) -> list[tuple[str, Media]]:
        out = [("first_frame", self.first), ("last_frame", self.last)]
        return out + ([("driving_audio", self.audio)] if self.audio is not None else [])


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
            raise ValidationError(f"Grid9: got {len(images)} image(s); a 3×3 grid takes exactly 9 "
                                  f"(or pass one ready-made grid picture as grid=)")
        object.__setattr__(self, "images", images)
        if self.grid is not None:
            object.__setattr__(self, "grid", to_media(self.grid, "image", "Grid9.grid"))
        shots = [self.shots] if isinstance(self.shots, str) else list(self.shots or ())
        if len(shots) > 9 or not all(isinstance(s, str) for s in shots):
            raise ValidationError(f"Grid9: shots must be up to 9 strings (one per tile), got {len(shots)}")
        object.__setattr__(self, "shots", tuple(shots))
        if images:
            _ = self.grid_picture          # compose now: a tile that cannot be composed fails here
        if not self.storyboard.strip():
            raise ValidationError("Grid9: prompt is empty; describe the story, ideally shot by shot "
                                  "(pass shots=[...] and wanlab writes 'Shot 1: … Shot 2: …')")
        checks.check_text("shots", self.storyboard, where="Grid9")
        if len(self.storyboard) > PROMPT_MAX:
            raise ValidationError(f"Grid9: prompt with its shots is {len(self.storyboard)} characters; the hosts "
                                  f"accept ≤ {PROMPT_MAX}: shorten the shots")

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
            cached = self.grid if self.grid is not None else compose_grid(list(self.images))
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
        for i, v in enumerate(self.videos):
            if v.seconds is not None and not 1 <= v.seconds <= 30:
                raise ValidationError(f"Ref2V.videos[{i}] is {v.seconds:.1f} s; reference videos must be 1–30 s")
        _check_ratio(self, self.ratio)

    @property
    def has_video_reference(self) -> bool:
        return bool(self.videos)

    def validate_for(self, spec: ModelSpec) -> None:
        n = len(self.videos) + len(self.images)
        if self.first_frame is not None and spec.protocol == "legacy":
            raise ValidationError(f"Ref2V: first_frame is a WAN 2.7 feature; {spec.id} has no first-frame input "
                                  f"(drop first_frame or use model='wan2.7-r2v')")
        if n > spec.max_refs:
            raise ValidationError(f"Ref2V: got {n} references ({len(self.videos)} videos + {len(self.images)} images); "
                                  f"{spec.id} takes 1–{spec.max_refs} in total")
        super().validate_for(spec)

    def media(self) -> list[tuple[str, Media]]:
        out = [("reference_video", v) for v in self.videos] + [("reference_image", m) for m in self.images]
        return out + ([("first_frame", self.first_frame)] if self.first_frame is not None else [])

    def output_seconds(self) -> float:
        return float(self.duration)


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
        secs = self.video.seconds
        if secs is not None and not 2 <= secs <= 10.05:
            raise ValidationError(f"Edit.video is {secs:.1f} s long; the editor takes a 2–10 s clip (trim it first)")
        if self.audio_setting not in ("auto", "origin"):
            raise ValidationError(f"Edit: audio_setting={self.audio_setting!r}; use 'auto' or 'origin'")
        if self.ratio is not None:
            _check_ratio(self, self.ratio)

    def validate_for(self, spec: ModelSpec) -> None:
        if len(self.images) > spec.max_edit_images:
            raise ValidationError(f"Edit: got {len(self.images)} reference images; {spec.id} takes 0–"
                                  f"{spec.max_edit_images}")
        super().validate_for(spec)

    def media(self) -> list[tuple[str, Media]]:
        return [("video", self.video)] + [("reference_image", m) for m in self.images]

    def output_seconds(self) -> float:
        if self.duration:
            return float(self.duration)
        return float(self.video.seconds) if self.video.seconds else 5.0


def _check_ratio(req: Request, ratio: str) -> None:
    if not isinstance(ratio, str) or ratio not in catalog.RATIOS:
        fixed = str(ratio).replace("/", ":").replace(" ", "")
        hint = f" (did you mean {fixed!r}?)" if fixed in catalog.RATIOS and fixed != ratio else ""
        raise ValidationError(f"{type(req).__name__}: ratio={ratio!r}; use one of {', '.join(catalog.RATIOS)}{hint}")


def _check_resolution(where: str, resolution: Any) -> str:
    if isinstance(resolution, str) and resolution in catalog.RESOLUTIONS:
        return str(resolution)
    fixed = str(resolution).upper().replace(" ", "")
    fixed = fixed + "P" if fixed.isdigit() else fixed
    hint = f" (did you mean {fixed!r}?)" if fixed in catalog.RESOLUTIONS else ""
    raise ValidationError(f"{where}: resolution={resolution!r} is not a resolution; use "
                          f"'720P' or '1080P' on WAN 2.7, '480P' on wan2.5 and older{hint}")


# -- extra: host parameters wanlab has no field for ---------------------------------------------------

# Keys that would override a request field on the wire (DashScope's "input." prefix included): refused,
# since the field is checked and logged and the extra copy would silently win.
_FIELD_KEYS = {"prompt": "prompt", "negative_prompt": "negative_prompt", "seed": "seed", "duration": "duration",
               "resolution": "resolution", "size": "resolution", "ratio": "ratio", "aspect_ratio": "ratio",
               "model": "model", "audio_setting": "audio_setting"}
# Media go through the media fields, which check them and upload local files.
_MEDIA_KEYS = {"media", "img_url", "audio_url", "first_frame_url", "last_frame_url", "reference_urls",
               "reference_video_urls", "image", "last_image", "images", "video", "videos", "reference_images"}
_BOOL_KEYS = {"watermark", "prompt_extend", "enable_prompt_expansion", "audio"}
_CHOICE_KEYS = {"shot_type": ("single", "multi")}


def _check_extra(req: Request, extra: Mapping[Any, Any]) -> dict[str, Any]:
    """Known keys are checked (or refused in favour of the field that does the same); unknown keys only
    have to be plain JSON, and are sent as given."""
    name = type(req).__name__
    out: dict[str, Any] = {}
    own = checks.field_names(type(req))
    for key, value in extra.items():
        if not isinstance(key, str) or not key.strip():
            raise ValidationError(f"{name}: extra key {key!r} must be a non-empty str (a host parameter name)")
        key = str(key)
        bare = key[len("input."):] if key.startswith("input.") else key
        where = f"{name}: extra[{key!r}]"
        if bare in _FIELD_KEYS:
            field_name = _FIELD_KEYS[bare]
            if field_name in own:
                raise ValidationError(f"{where}: {bare} is set by the request itself; use the field "
                                      f"{field_name}= instead (extra is not checked against the model)")
            raise ValidationError(f"{where}: {name} has no field {field_name} (the host would ignore or refuse "
                                  f"it for this mode); drop it from extra")
        if bare in _MEDIA_KEYS:
            media = [f for f in own if f in ("image", "first", "last", "images", "videos", "video", "grid",
                                             "first_frame", "audio")]
            raise ValidationError(f"{where}: media are given through the request's fields "
                                  f"({', '.join(m + '=' for m in media) or 'none on ' + name}), which check and "
                                  f"upload them; drop it from extra")
        if bare == "audio" and getattr(req, "audio", None) is not None:
            raise ValidationError(f"{where}: audio= already gives a soundtrack, and on WaveSpeed this key would "
                                  f"replace it; drop it from extra")
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


REQUEST_TYPES: dict[str, type[Request]] = {cls.mode: cls for cls in (T2V, I2V, FLF2V, Grid9, Ref2V, Edit)}


# -- records: a request as JSON-able data (for the experiment log, resume and rerun) ---------------

_COMMON = ("prompt", "negative_prompt", "model", "resolution", "duration", "seed")


def to_record(req: Request, keep: "Callable[[Media], str]") -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, inputs): the fields beyond the common columns, and the media as {"url": …} or
    {"file": …} references. `keep` stores a local input's bytes and returns its path."""
    params: dict[str, Any] = {}
    inputs: dict[str, Any] = {}

    def ref(m: Media) -> dict[str, str]:
        return {"url": m.url} if m.is_remote else {"file": keep(m)}

    for f in fields(req):
        if f.name in _COMMON:
            continue
        value = getattr(req, f.name)
        if isinstance(req, Grid9) and f.name == "images":
            continue          # stored once, as the composed grid picture
        if isinstance(req, Grid9) and f.name == "grid":
            value = req.grid_picture
        if isinstance(value, Media):
            inputs[f.name] = ref(value)
        elif isinstance(value, tuple) and value and isinstance(value[0], Media):
            inputs[f.name] = [ref(m) for m in value]
        elif value not in (None, ()):
            params[f.name] = value
    return params, inputs


def from_record(mode: str, common: Mapping[str, Any], params: Mapping[str, Any],
                inputs: Mapping[str, Any]) -> Request:
    """Rebuild a request from its log row (the inverse of to_record)."""
    def load(r: Mapping[str, str]) -> Any:
        return r["url"] if "url" in r else Path(r["file"])

    kwargs: dict[str, Any] = {k: common[k] for k in _COMMON if common.get(k) is not None}
    kwargs.update(params)
    for name, value in inputs.items():
        kwargs[name] = [load(v) for v in value] if isinstance(value, list) else load(value)
    cls = REQUEST_TYPES[mode]
    prompt = kwargs.pop("prompt", "")
    return cls(prompt, **kwargs)
