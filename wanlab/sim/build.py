"""Host-neutral task building: a parsed request (mode, sizes, media bytes) becomes an engine Task with
its latency draws, seed and RenderSpec. Also the request rules both hosts share, each worded by the
host's route module: typed field readers, the allowed durations and the sim's `[sim:...]` defect tags
in the prompt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..catalog import RATIOS, SIZES, ModelSpec, output_size
from .defect_tags import parse_defect_tag, strip_defect_tags
from .engine import Engine, Task
from .fetch import MediaUnreachable, Resolver, image_aspect, is_video, video_info


class Invalid(Exception):
    """A request the host refuses at submit (400)."""


class FieldReader:
    """Typed fields of a submit body, read the same way for both hosts; `refusal(name, expected)` words
    the 400 in the host's own style."""

    def __init__(self, refusal: Callable[[str, str], str]):
        self.refusal = refusal

    def integer(self, value, name: str) -> int:
        # bool is an int to Python, not to the hosts; floats must be whole (int(2.7) would silently be 2)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise Invalid(self.refusal(name, "an integer"))
        try:
            number = float(value)
        except ValueError:
            raise Invalid(self.refusal(name, "an integer")) from None
        if not number.is_integer():
            raise Invalid(self.refusal(name, "an integer"))
        return int(number)

    def url(self, value, name: str) -> str | None:
        """A media URL field: absent/empty (None) or a string; anything else is the client's error."""
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise Invalid(self.refusal(name, "a URL string"))
        return value

    def urls(self, value, name: str) -> list[str]:
        if value is None or value == "":
            return []
        if not isinstance(value, list):
            raise Invalid(self.refusal(name, "a list of URL strings"))
        return [u for k, v in enumerate(value) if (u := self.url(v, f"{name}[{k}]")) is not None]


@dataclass
class Parsed:
    model: ModelSpec
    mode: str  # render mode
    prompt: str
    resolution: str
    ratio: str | None  # None: follow the input's aspect
    duration: float | None  # None: host default
    seed: int | None
    images: list[str] = field(default_factory=list)  # URLs, in RenderSpec order
    videos: list[str] = field(default_factory=list)
    aspect_from: str | None = None  # "image0" | "video0": output follows that input's aspect
    size: tuple[int, int] | None = None  # legacy explicit W*H
    missing: str | None = None  # a required field absent: accepted, then FAILED [2nd]
    edit_whole: bool = False  # edit with duration 0 = the whole input video
    # known defects the prompt asks for with `[sim:name=strength,...]` tags (set from `prompt`)
    defects: tuple[tuple[str, float], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        # Both hosts' parse_request build a Parsed inside their `except Invalid` (-> the host's own
        # 400), before anything is drawn or counted: a bad tag creates no task.
        try:
            self.defects = parse_defect_tag(self.prompt or "")
        except ValueError as exc:
            raise Invalid(f"{exc} (a wanlab sim tag in the prompt)") from None


def settle_duration(parsed: Parsed, has_video: bool, refusal: Callable[[str, float, tuple[int, ...]], str]) -> Parsed:
    """An asked duration must be one the model makes (`refusal(model id, duration, allowed)` words the
    400 the host's way); with none asked, a model that cannot make 5 s gets its shortest."""
    spec, duration = parsed.model, parsed.duration
    if duration is not None and not parsed.edit_whole:
        allowed = spec.duration_range(has_video)
        if duration not in allowed:
            raise Invalid(refusal(spec.id, duration, allowed))
    elif duration is None and 5 not in spec.durations:
        parsed.duration = float(spec.durations[0])
    return parsed


def ratio_label(width: int, height: int) -> str:
    best = min(RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - width / height))
    return best


def size_resolution(size: str, model: ModelSpec) -> tuple[str, tuple[int, int]]:
    try:
        w, h = (int(v) for v in size.replace("x", "*").split("*"))
    except ValueError:
        raise Invalid(f"The size {size!r} is invalid: use 'width*height', e.g. '1280*720'.") from None
    for res in model.resolutions:
        if (w, h) in SIZES[res].values():
            return res, (w, h)
    allowed = ", ".join(f"{a}*{b}" for res in model.resolutions for a, b in SIZES[res].values())
    raise Invalid(f"The size {size} is not supported by {model.id}; supported sizes: {allowed}.")


def build_task(
    engine: Engine,
    parsed: Parsed,
    resolver: Resolver,
    *,
    host: str,
    key_fp: str,
    region: str,
    label: str,
    fps: int,
    unreachable: tuple[str, str],
) -> Task:
    """Resolve media, size the output, draw latency and seed. Media that cannot be fetched makes a
    task that FAILS with `unreachable` (code, message) instead of a 400: hosts download inputs
    after accepting the task."""
    from .render import RenderSpec

    fail: tuple[str, str] | None = None
    images: list[bytes] = []
    videos: list[bytes] = []
    for urls, out in ((parsed.images, images), (parsed.videos, videos)):
        for url in urls:
            try:
                out.append(resolver.fetch(url))
            except MediaUnreachable:
                fail = fail or unreachable
                out.append(url.encode("utf-8", "replace"))
    if parsed.mode == "ref2v":  # legacy reference_urls mix images and videos: sort by content
        moved = [b for b in images if is_video(b)]
        images = [b for b in images if not is_video(b)]
        videos = videos + moved

    infos = [video_info(v) if is_video(v) else None for v in videos]
    input_video_s = round(sum(i["duration"] for i in infos if i), 2)
    if parsed.mode == "extend" and infos and infos[0] and not 1.95 <= infos[0]["duration"] <= 10.05:
        # the clip to extend is 2–10 s [doc]; the host reads it after accepting the task
        fail = fail or ("InvalidParameter", f"The first clip is {infos[0]['duration']:.1f} s; it must be 2–10 s.")

    duration = parsed.duration
    if parsed.edit_whole or duration is None and parsed.mode == "edit":
        first = infos[0] if infos else None
        duration = min(10.0, max(2.0, round(first["duration"], 2))) if first else 5.0
    if duration is None:
        duration = 5.0

    if parsed.size is not None:
        width, height = parsed.size
    else:
        aspect = None
        if parsed.aspect_from == "image0" and images:
            aspect = image_aspect(images[0])
        elif parsed.aspect_from == "video0" and infos and infos[0]:
            aspect = infos[0]["width"] / infos[0]["height"]
        if aspect is not None:
            width, height = output_size(parsed.resolution, None, aspect)
        else:
            width, height = output_size(parsed.resolution, parsed.ratio or "16:9")
    ratio = parsed.ratio or ratio_label(width, height)

    queue_s, run_s, drawn = engine.draw(parsed.model, parsed.resolution, duration)
    seed = parsed.seed if parsed.seed is not None else drawn
    if parsed.missing:
        fail = ("InvalidParameter", f"Field required: {parsed.missing}")
    spec = None
    if fail is None:
        spec = RenderSpec(
            mode=parsed.mode,
            # the tags are kept in the task's prompt (the hosts would see text) but not drawn
            prompt=strip_defect_tags(parsed.prompt or ""),
            seed=int(seed),
            width=int(width),
            height=int(height),
            duration=float(duration),
            fps=fps,
            model=parsed.model.id,
            images=tuple(images),
            videos=tuple(videos),
            label=label,
            defects=parsed.defects,
        )
    now_wall, now_sim = engine.clock.wall(), engine.clock.sim()
    task = Task(
        id=engine.new_id(),
        host=host,
        key_fp=key_fp,
        region=region,
        model=parsed.model,
        mode=parsed.mode,
        prompt=parsed.prompt or "",
        resolution=parsed.resolution,
        ratio=ratio,
        width=width,
        height=height,
        duration=float(duration),
        seed=int(seed),
        seed_drawn=parsed.seed is None,
        spec=spec,
        submit_wall=now_wall,
        submit_sim=now_sim,
        queue_s=queue_s,
        run_s=run_s if fail is None else run_s * 0.2,
        input_video_s=input_video_s,
    )
    if fail is not None:
        task.fail = fail
    return task
