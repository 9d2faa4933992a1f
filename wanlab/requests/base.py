"""The request every mode shares: its common fields, the checks that hold for every model, the check against
one model, and the helpers the mode modules use."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, fields, replace
from typing import Any, ClassVar

from .. import _checks as checks
from .. import catalog
from .._extra import check_extra
from ..catalog import MODE_NAMES, SEED_MAX, ModelSpec
from ..errors import CatalogError, ValidationError
from ..inputs import Media, MediaLike, to_media

PROMPT_MAX = 5000
NEGATIVE_MAX = 500


@dataclass(frozen=True)
class Request:
    """Fields every mode shares. Use a subclass: T2V, I2V, FLF2V, Grid9, Ref2V, Edit, Extend.

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
            raise ValidationError(
                f"{name}: prompt is empty; describe {what} (the host would accept the task and "
                f"then fail it with 'Field required: input.prompt')"
            )
        if not isinstance(self.negative_prompt, str) or len(self.negative_prompt) > NEGATIVE_MAX:
            raise ValidationError(f"{name}: negative_prompt must be a str of ≤ {NEGATIVE_MAX} characters")
        object.__setattr__(
            self, "negative_prompt", checks.check_text("negative_prompt", self.negative_prompt, where=name)
        )
        object.__setattr__(self, "resolution", _check_resolution(name, self.resolution))
        object.__setattr__(
            self,
            "duration",
            checks.check_number("duration", self.duration, integer=True, what="a whole number of seconds", where=name),
        )
        object.__setattr__(
            self,
            "seed",
            checks.check_number(
                "seed",
                self.seed,
                minimum=0,
                maximum=SEED_MAX,
                integer=True,
                allow_none=True,
                where=name,
                hint=" (or None for a random seed)",
            ),
        )
        if not isinstance(self.extra, Mapping):
            raise ValidationError(f"{name}: extra must be a dict of host parameters, got {type(self.extra).__name__}")
        object.__setattr__(self, "extra", check_extra(self, self.extra))
        if self.model is not None:
            if isinstance(self.model, str):
                object.__setattr__(self, "model", str(self.model))
            catalog.get_model(self.model)  # a stale or mistyped ID fails here, naming the closest ones

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
            raise CatalogError(
                f"{type(self).__name__}: model={spec.id!r} does {does}, not "
                f"{MODE_NAMES[self.mode]}; use model={right.id!r} (or leave model unset)"
            )

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
            raise ValidationError(
                f"{name}: resolution={self.resolution!r}: {spec.id} (WAN {spec.version}) renders "
                f"{' and '.join(spec.resolutions)} only{extra}"
            )
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
            raise ValidationError(
                f"{name}: duration={self.duration}: {spec.id} (WAN {spec.version}) accepts {rule}{why}{zero}"
            )

    # -- helpers ---------------------------------------------------------------------------------
    def media(self) -> list[tuple[str, Media]]:
        """(role, media) pairs in wire order; roles are DashScope's media types."""
        return []

    def output_seconds(self) -> float:
        return float(self.duration)

    def wire_prompt(self) -> str:
        """The prompt as sent to the host."""
        return self.prompt

    def replace(self, **changes: Any) -> Request:
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


def _m(value: Any) -> Media:
    """A media field after __post_init__ (the dataclass types it as what users may pass)."""
    assert isinstance(value, Media), value
    return value


def _media_tuple(value: Sequence[MediaLike] | MediaLike | None, kind: str, where: str) -> tuple[Media, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        value = [value]
    return tuple(to_media(v, kind, f"{where}[{i}]") for i, v in enumerate(value))  # type: ignore[arg-type]


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
    raise ValidationError(
        f"{where}: resolution={resolution!r} is not a resolution; use "
        f"'720P' or '1080P' on WAN 2.7, '480P' on wan2.5 and older{hint}"
    )
