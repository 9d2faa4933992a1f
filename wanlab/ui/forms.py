"""The generation form: one mode selector for all seven WAN modes, showing only the inputs a mode needs.

A thin shell: `form.request()` builds the same request object a user would write (`wanlab.T2V(...)`)
and checks it with `lab.resolve`; Generate is `lab.submit(form.request())`; the cost line is
`lab.estimate(form.request())`. Invalid input is shown in the form and nothing is sent.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..catalog import MODE_NAMES, MODES, RATIOS, SEED_MAX, ModelSpec
from ..errors import WanlabError
from ..inputs import Media, MediaLike
from ..requests import REQUEST_TYPES, Request
from .cards import JobCard, random_seed

if TYPE_CHECKING:
    from ..jobs import Job
    from ..lab import Lab

MODE_LABELS = {
    "t2v": "T2V",
    "i2v": "I2V",
    "flf2v": "FLF2V",
    "grid9": "Grid9",
    "ref2v": "Ref2V",
    "edit": "Edit",
    "extend": "Extend",
}
# Which inputs each mode shows, in order.
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    "t2v": ("prompt", "negative", "ratio"),
    "i2v": ("image", "prompt", "negative"),
    "flf2v": ("first", "last", "prompt", "negative"),
    "grid9": ("tiles", "prompt", "negative", "ratio"),
    "ref2v": ("ref_videos", "ref_images", "prompt", "negative", "ratio"),
    "edit": ("video", "edit_images", "prompt"),
    "extend": ("clip", "end_frame", "prompt", "negative"),
}
PROMPT_HINTS = {"edit": ("Instruction", "the edit to make"), "extend": ("Prompt", "what happens after the clip")}
THUMB = 72
WIDE = widgets.Layout(width="95%")


def _thumbnail(value: MediaLike, kind: str) -> widgets.Widget:
    """A small picture of an uploaded or local input; a URL is only named (the UI never fetches)."""
    try:
        if isinstance(value, Media):
            if value.data is None:
                return widgets.Label(value.name or value.kind)
            value = value.data
        if isinstance(value, str) and "://" in value:
            return widgets.Label(value.rsplit("/", 1)[-1][:24] or value[:24])
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, (str, os.PathLike)):
            data = Path(value).read_bytes()
        else:  # a PIL image: not previewed
            return widgets.Label("?")
        if kind == "video":
            from ..media import frame_at

            img = frame_at(data, at=0.0)
        else:
            from PIL import Image

            img = Image.open(io.BytesIO(data))
        img = img.convert("RGB")
        img.thumbnail((THUMB, THUMB))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=70)
        return widgets.Image(value=buf.getvalue(), format="jpeg", layout=widgets.Layout(margin="2px"))
    except Exception:  # an unreadable input is reported by validation, not here
        return widgets.Label("?")


class MediaInput(widgets.VBox):
    """Inputs by URL/path (one per line) or upload, with thumbnails. `.values` is what the request gets."""

    def __init__(self, label: str, kind: str, multiple: bool = False, on_change: Callable[[], Any] | None = None):
        self.kind, self.multiple, self._on_change = kind, multiple, on_change
        self._preset: list[Media] = []  # inputs loaded from a request (bytes with no path)
        hint = "https://… or a local path" + (", one per line" if multiple else "")
        self.text = (widgets.Textarea if multiple else widgets.Text)(
            placeholder=hint, continuous_update=False, layout=widgets.Layout(width="60%")
        )
        self.upload = widgets.FileUpload(accept=f"{kind}/*", multiple=multiple, description="Upload")
        self.clear_button = widgets.Button(description="Clear", layout=widgets.Layout(width="70px"))
        self.thumbs = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.text.observe(self._changed, "value")
        self.upload.observe(self._changed, "value")
        self.clear_button.on_click(lambda _: self.clear())
        super().__init__(
            [
                widgets.HBox(
                    [
                        widgets.Label(label, layout=widgets.Layout(width="140px")),
                        self.text,
                        self.upload,
                        self.clear_button,
                    ]
                ),
                self.thumbs,
            ]
        )

    @property
    def values(self) -> list[MediaLike]:
        lines = [s.strip() for s in self.text.value.replace(",\n", "\n").splitlines() if s.strip()]
        uploads = [bytes(f["content"]) for f in self.upload.value]
        return [*self._preset, *lines, *uploads]

    def one(self) -> MediaLike | None:
        vals = self.values
        return vals[-1] if vals else None

    def set(self, values: list[MediaLike] | tuple[MediaLike, ...] | MediaLike | None) -> None:
        if values is None:
            values = []
        elif not isinstance(values, (list, tuple)):
            values = [values]
        self._preset = [v for v in values if isinstance(v, Media) and not v.is_remote]
        text = [
            v.url if isinstance(v, Media) else str(v)
            for v in values
            if not (isinstance(v, Media) and not v.is_remote) and not isinstance(v, bytes)
        ]
        self._preset += [v for v in values if isinstance(v, bytes)]  # type: ignore[misc]
        self.upload.value = ()
        self.text.value = "\n".join(str(t) for t in text)
        self._changed()

    def clear(self) -> None:
        self.set([])

    def _changed(self, _: Any = None) -> None:
        self.thumbs.children = [_thumbnail(v, self.kind) for v in self.values[:12]]
        if self._on_change is not None:
            self._on_change()


class GenerateForm(widgets.VBox):
    """`GenerateForm(lab, mode="t2v", prompt=..., request=..., seed=..., lock_seed=...)`."""

    def __init__(
        self,
        lab: Lab,
        *,
        request: Request | None = None,
        mode: str = "t2v",
        prompt: str = "",
        negative_prompt: str = "",
        model: str | None = None,
        resolution: str | None = None,
        duration: int | None = None,
        seed: int | None = None,
        lock_seed: bool = False,
        ratio: str = "16:9",
        embed: bool | None = None,
        **media: Any,
    ):
        self.lab, self.embed = lab, embed
        self.jobs: list[Job] = []
        self._syncing = True
        self.mode = widgets.ToggleButtons(
            options=[(MODE_LABELS[m], m) for m in MODES],
            value=mode,
            tooltips=[MODE_NAMES[m] for m in MODES],
            style={"button_width": "72px"},
        )
        self.prompt = widgets.Textarea(
            value=prompt,
            placeholder="what to show",
            description="Prompt",
            layout=widgets.Layout(width="95%", height="64px"),
        )
        self.negative = widgets.Textarea(
            value=negative_prompt,
            placeholder="what to avoid (optional)",
            description="Negative",
            layout=widgets.Layout(width="95%", height="40px"),
        )
        change = self._update
        self.inputs: dict[str, MediaInput] = {
            "image": MediaInput("Image (first frame)", "image", on_change=change),
            "first": MediaInput("First frame", "image", on_change=change),
            "last": MediaInput("Last frame", "image", on_change=change),
            "tiles": MediaInput("9 tiles or 1 grid", "image", multiple=True, on_change=change),
            "ref_videos": MediaInput("Reference videos", "video", multiple=True, on_change=change),
            "ref_images": MediaInput("Reference images", "image", multiple=True, on_change=change),
            "video": MediaInput("Video to edit", "video", on_change=change),
            "edit_images": MediaInput("Reference images (0–3)", "image", multiple=True, on_change=change),
            "clip": MediaInput("Clip to extend (2–10 s)", "video", on_change=change),
            "end_frame": MediaInput("Last frame (optional)", "image", on_change=change),
        }
        self.ratio = widgets.Dropdown(options=list(RATIOS), value=ratio, description="Ratio")
        self.model = widgets.Dropdown(description="Model", layout=widgets.Layout(width="60%"))
        self.resolution = widgets.Dropdown(description="Resolution")
        self.duration = widgets.SelectionSlider(
            options=[5], value=5, description="Duration (s)", continuous_update=False
        )
        self.seed = widgets.BoundedIntText(
            value=random_seed() if seed is None else seed, min=0, max=SEED_MAX, description="Seed"
        )
        self.lock = widgets.ToggleButton(
            value=lock_seed, description="Lock", icon="lock", tooltip="keep this seed for the next Generate"
        )
        self.randomise = widgets.Button(description="Randomise", icon="random")
        self.cost = widgets.HTML()
        self.error = widgets.HTML()
        self.generate_button = widgets.Button(description="Generate", button_style="primary", icon="play")
        self.cancel_button = widgets.Button(description="Cancel", icon="stop")
        self.fields = widgets.VBox()
        self.cards = widgets.VBox()
        self._rows: dict[str, widgets.Widget] = {
            **self.inputs,
            "prompt": self.prompt,
            "negative": self.negative,
            "ratio": self.ratio,
        }
        self.randomise.on_click(lambda _: setattr(self.seed, "value", random_seed()))
        self.generate_button.on_click(lambda _: self.generate())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.mode.observe(self._mode_changed, "value")
        self.model.observe(self._model_changed, "value")
        for w in (self.prompt, self.negative, self.ratio, self.resolution, self.duration, self.seed):
            w.observe(lambda _: self._update(), "value")
        super().__init__(
            [
                self.mode,
                self.fields,
                self.model,
                widgets.HBox([self.resolution, self.duration]),
                widgets.HBox([self.seed, self.lock, self.randomise]),
                self.cost,
                self.error,
                widgets.HBox([self.generate_button, self.cancel_button]),
                self.cards,
            ]
        )
        self._syncing = False
        if request is not None:
            self.load(request, seed=seed, lock_seed=lock_seed)
        else:
            self._mode_changed(model=model, resolution=resolution, duration=duration)
            for name, value in media.items():
                self.inputs[name].set(value)

    # -- keeping the controls consistent with the mode and model ---------------------------------
    @property
    def spec(self) -> ModelSpec | None:
        return next((m for m in self.lab.models(self.mode.value) if m.id == self.model.value), None)

    def _mode_changed(
        self, _: Any = None, *, model: str | None = None, resolution: str | None = None, duration: int | None = None
    ) -> None:
        mode = self.mode.value
        self.fields.children = [self._rows[name] for name in MODE_FIELDS[mode]]
        self.prompt.description, self.prompt.placeholder = PROMPT_HINTS.get(mode, ("Prompt", "what to show"))
        # extend's duration is the whole output, the clip included
        self.duration.description = "Total (s)" if mode == "extend" else "Duration (s)"
        if duration is None and mode == "edit":
            duration = 0  # switching to Edit: keep the input video's length
        models = self.lab.models(mode)
        self._syncing = True
        try:
            self.model.options = [(m.label, m.id) for m in models]
            ids = [m.id for m in models]
            self.model.value = model if model in ids else (ids[0] if ids else None)
        finally:
            self._syncing = False
        self._model_changed(resolution=resolution, duration=duration)

    def _model_changed(self, _: Any = None, *, resolution: str | None = None, duration: int | None = None) -> None:
        if self._syncing:
            return
        spec = self.spec
        if spec is None:
            self._update()
            return
        self._syncing = True
        try:
            keep = resolution or self.resolution.value
            self.resolution.options = list(spec.resolutions)
            self.resolution.value = (
                keep if keep in spec.resolutions else ("720P" if "720P" in spec.resolutions else spec.resolutions[0])
            )
            self._set_durations(spec, duration)
        finally:
            self._syncing = False
        self._update()

    def _set_durations(self, spec: ModelSpec, want: int | None = None) -> None:
        """The slider spans exactly what the model accepts (shorter with a reference video)."""
        has_video = self.mode.value == "ref2v" and bool(self.inputs["ref_videos"].values)
        allowed = list(spec.duration_range(has_video))
        opts: list[Any] = [(str(d), d) for d in allowed]
        if spec.accepts_zero_duration:
            opts = [("input", 0), *opts]
        keep = self.duration.value if want is None else want
        values = [v for _, v in opts]
        self.duration.options = opts
        self.duration.value = (
            keep
            if keep in values
            else (0 if self.mode.value == "edit" and 0 in values else 5 if 5 in values else values[0])
        )

    # -- the library calls the buttons make -------------------------------------------------------
    def request(self) -> Request:
        """The request the form describes, checked against this Lab's host (raises what is wrong)."""
        mode = self.mode.value
        ins = self.inputs
        kw: dict[str, Any] = dict(
            prompt=self.prompt.value,
            model=self.model.value,
            resolution=self.resolution.value,
            duration=int(self.duration.value),
            seed=int(self.seed.value),
        )
        if mode != "edit":
            kw["negative_prompt"] = self.negative.value
        if mode in ("t2v", "grid9", "ref2v"):
            kw["ratio"] = self.ratio.value
        if mode == "i2v":
            kw["image"] = ins["image"].one()
        elif mode == "flf2v":
            kw.update(first=ins["first"].one(), last=ins["last"].one())
        elif mode == "grid9":
            tiles = ins["tiles"].values
            kw.update(grid=tiles[0]) if len(tiles) == 1 else kw.update(images=tiles)
        elif mode == "ref2v":
            kw.update(videos=ins["ref_videos"].values, images=ins["ref_images"].values)
        elif mode == "edit":
            kw.update(video=ins["video"].one(), images=ins["edit_images"].values)
        elif mode == "extend":
            kw.update(video=ins["clip"].one(), last=ins["end_frame"].one())
        req = REQUEST_TYPES[mode](**kw)
        self.lab.resolve(req)
        return req

    def _update(self) -> None:
        """Re-validate and re-price after any change: the error line and the cost line."""
        if self._syncing:
            return
        spec = self.spec
        if spec is not None and self.mode.value == "ref2v":
            self._syncing = True
            try:
                self._set_durations(spec)
            finally:
                self._syncing = False
        try:
            req = self.request()
            est = self.lab.estimate(req)
        except (WanlabError, ValueError, TypeError) as exc:
            self.error.value = f"<div style='color:#b00'>⚠ {html.escape(str(exc))}</div>"
            self.cost.value = "<span style='color:#666'>Estimated cost: —</span>"
            return
        self.error.value = ""
        self.cost.value = f"<span style='color:#036'>Estimated cost: {html.escape(str(est))}</span>"

    def generate(self) -> Job | None:
        """What Generate does: `lab.submit(form.request())`, then a card; on invalid input, the message."""
        try:
            req = self.request()
            job = self.lab.submit(req)
        except (WanlabError, ValueError, TypeError) as exc:
            self.error.value = f"<div style='color:#b00'><b>Not sent:</b> {html.escape(str(exc))}</div>"
            return None
        self.error.value = ""
        self.add_card(job)
        if not self.lock.value:
            self.seed.value = random_seed()  # the next Generate is a new sample; this one is logged
        return job

    def cancel(self) -> None:
        """Cancel this form's running jobs (`job.cancel()` each)."""
        for job in self.jobs:
            if not job.done:
                job.cancel()

    def add_card(self, job: Job) -> JobCard:
        self.jobs.append(job)
        c = JobCard(self.lab, job, on_new_job=self.add_card, on_edit=self._edit, embed=self.embed)
        self.cards.children = (c, *self.cards.children)
        return c

    def _edit(self, request: Request, seed: int | None) -> GenerateForm:
        self.load(request, seed=seed, lock_seed=True)
        return self

    def load(self, request: Request, *, seed: int | None = None, lock_seed: bool | None = None) -> None:
        """Put a request's values (and media) into the form, e.g. to change only the prompt."""
        mode = request.mode
        self._syncing = True
        try:
            self.mode.value = mode
        finally:
            self._syncing = False
        self.prompt.value = request.prompt
        self.negative.value = request.negative_prompt
        if hasattr(request, "ratio") and request.ratio in RATIOS:
            self.ratio.value = request.ratio
        r: Any = request
        by_mode: dict[str, dict[str, Any]] = {
            "i2v": {"image": getattr(r, "image", None)},
            "flf2v": {"first": getattr(r, "first", None), "last": getattr(r, "last", None)},
            "grid9": {"tiles": list(getattr(r, "images", ()) or ()) or getattr(r, "grid", None)},
            "ref2v": {"ref_videos": list(getattr(r, "videos", ())), "ref_images": list(getattr(r, "images", ()))},
            "edit": {"video": getattr(r, "video", None), "edit_images": list(getattr(r, "images", ()))},
            "extend": {"clip": getattr(r, "video", None), "end_frame": getattr(r, "last", None)},
        }
        for name, value in by_mode.get(mode, {}).items():
            self.inputs[name].set(value)
        if seed is not None or request.seed is not None:
            self.seed.value = seed if seed is not None else request.seed
        if lock_seed is not None:
            self.lock.value = lock_seed
        self._mode_changed(
            model=request.model or self.lab.resolve(request).id,
            resolution=request.resolution,
            duration=request.duration,
        )
