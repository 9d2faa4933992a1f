"""How the sim reads a DashScope submit body: the 2.7 `input.media` protocol and the legacy one
(`img_url`, `first_frame_url`/`last_frame_url`, `reference_urls`, `size`), validated against the
catalog and mapped to a render mode; a refusal is an `Invalid` naming the parameter."""

from __future__ import annotations

from ..catalog import ModelSpec
from .build import FieldReader, Invalid, Parsed, settle_duration, size_resolution

I2V_COMBOS = {
    ("first_frame",): "i2v",
    ("driving_audio", "first_frame"): "i2v",
    ("first_frame", "last_frame"): "flf2v",
    ("driving_audio", "first_frame", "last_frame"): "flf2v",
    ("first_clip",): "extend",
    ("first_clip", "last_frame"): "extend",
}


_fields = FieldReader(lambda name, expected: f"The parameter {name} is invalid: expected {expected}.")
_int, _url, _urls = _fields.integer, _fields.url, _fields.urls


def parse_request(spec: ModelSpec, inp: dict, par: dict) -> Parsed:
    """Validate a DashScope body against the catalog and map it to a render mode."""
    prompt = inp.get("prompt")
    prompt = prompt if isinstance(prompt, str) else ""
    seed = par.get("seed")
    if seed is not None:
        seed = _int(seed, "seed")
        if not 0 <= seed <= 2147483647:
            raise Invalid("The parameter seed is invalid: it must be within [0, 2147483647].")
    duration = par.get("duration")
    if duration is not None:
        duration = _int(duration, "duration")
    ratio = par.get("ratio")
    size = None
    if spec.protocol == "media":
        if "size" in par and par.get("size") is not None and "resolution" not in par:
            raise Invalid(f"The parameter size is not supported by {spec.id}: use resolution and ratio.")
        resolution = str(par.get("resolution", "1080P")).upper()
        if resolution not in spec.resolutions:
            raise Invalid(
                f"The parameter resolution is invalid: {resolution} is not supported by {spec.id}; "
                f"supported: {', '.join(spec.resolutions)}."
            )
    else:
        if par.get("size"):
            resolution, size = size_resolution(str(par["size"]), spec)
        else:
            resolution = str(par.get("resolution", spec.resolutions[-1])).upper()
            if resolution not in spec.resolutions:
                raise Invalid(
                    f"The parameter resolution is invalid: {resolution} is not supported by {spec.id}; "
                    f"supported: {', '.join(spec.resolutions)}."
                )
    if ratio is not None and (not isinstance(ratio, str) or ratio not in spec.ratios):
        raise Invalid(f"The parameter ratio is invalid: {ratio!r}; supported: {', '.join(spec.ratios)}.")

    parsed = Parsed(
        model=spec,
        mode=spec.modes[0],
        prompt=prompt,
        resolution=resolution,
        ratio=ratio,
        duration=duration,
        seed=seed,
        size=size,
    )
    has_video = False
    if spec.protocol == "media":
        media = inp.get("media") or []
        if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
            raise Invalid("The parameter input.media is invalid: expected a list of {type, url} objects.")
        by_type: dict[str, list[str]] = {}
        for k, m in enumerate(media):
            url = (
                _url(m.get("url"), f"input.media[{k}].url")
                or _url(m.get("reference_voice"), f"input.media[{k}].reference_voice")
                or ""
            )
            by_type.setdefault(str(m.get("type")), []).append(url)
        kind = spec.id.split("-")[1] if "-" in spec.id else ""
        if kind == "t2v":
            if not prompt:
                parsed.missing = "input.prompt"
        elif kind == "i2v":
            if not media:
                parsed.missing = "input.media"
            else:
                if any(len(v) > 1 for v in by_type.values()):
                    raise Invalid("The parameter input.media is invalid: each media type may appear only once.")
                combo = tuple(sorted(by_type))
                if combo not in I2V_COMBOS:
                    raise Invalid(
                        f"The parameter input.media is invalid: the combination {list(combo)} is not "
                        f"supported by {spec.id}."
                    )
                parsed.mode = I2V_COMBOS[combo]
                if parsed.mode == "extend":
                    parsed.videos = by_type["first_clip"]
                    parsed.images = by_type.get("last_frame", [])
                    parsed.aspect_from = "video0"
                else:
                    parsed.images = by_type["first_frame"] + by_type.get("last_frame", [])
                    parsed.aspect_from = "image0"
                parsed.ratio = None  # i2v follows the image
        elif kind == "r2v":
            imgs, vids = by_type.get("reference_image", []), by_type.get("reference_video", [])
            first = by_type.get("first_frame", [])
            if not imgs and not vids:
                parsed.missing = "input.media"
            elif len(imgs) + len(vids) > spec.max_refs:
                raise Invalid(
                    f"The parameter input.media is invalid: at most {spec.max_refs} reference images "
                    f"and videos in total."
                )
            has_video = bool(vids)
            grid = len(imgs) == 1 and not vids and not first and "shot 1" in prompt.lower()
            parsed.mode = "grid9" if grid else "ref2v"
            parsed.images = (first + imgs) if not grid else imgs
            parsed.videos = vids
            if first:
                parsed.aspect_from, parsed.ratio = "image0", None
        elif kind == "videoedit":
            vids = by_type.get("video", [])
            imgs = by_type.get("reference_image", [])
            if len(vids) != 1:
                if not vids:
                    parsed.missing = "input.media"
                else:
                    raise Invalid("The parameter input.media is invalid: exactly one video is required.")
            if len(imgs) > spec.max_edit_images:
                raise Invalid(f"The parameter input.media is invalid: at most {spec.max_edit_images} reference images.")
            parsed.mode, parsed.videos, parsed.images = "edit", vids, imgs
            if ratio is None:
                parsed.aspect_from = "video0"
            if duration == 0:
                parsed.edit_whole = True
            has_video = True
    else:  # legacy protocol: img_url / first_frame_url / last_frame_url / reference_urls / size
        mode = spec.modes[0]
        if mode == "t2v" and not prompt:
            parsed.missing = "input.prompt"
        elif mode == "i2v":
            img = _url(inp.get("img_url"), "input.img_url")
            if not img:
                parsed.missing = "input.img_url"
            else:
                parsed.images, parsed.aspect_from = [img], ("image0" if size is None else None)
        elif mode == "flf2v":
            first_url = _url(inp.get("first_frame_url"), "input.first_frame_url")
            last_url = _url(inp.get("last_frame_url"), "input.last_frame_url")
            if not first_url:
                parsed.missing = "input.first_frame_url"
            else:
                parsed.images = [first_url] + ([last_url] if last_url else [])
                parsed.mode = "flf2v" if last_url else "i2v"
                parsed.aspect_from = "image0" if size is None else None
        elif mode == "ref2v":
            ref_videos = _urls(inp.get("reference_video_urls"), "input.reference_video_urls")
            refs = _urls(inp.get("reference_urls"), "input.reference_urls") + ref_videos
            if not refs:
                parsed.missing = "input.reference_urls"
            elif len(refs) > spec.max_refs:
                raise Invalid(f"The parameter input.reference_urls is invalid: at most {spec.max_refs} references.")
            parsed.images = refs  # sorted into images / videos by content once fetched
            has_video = bool(ref_videos)
    return settle_duration(parsed, has_video, _duration_refusal)


def _duration_refusal(model_id: str, duration: float, allowed: tuple[int, ...]) -> str:
    lo, hi = min(allowed), max(allowed)
    choices = f"[{lo}, {hi}]" if len(allowed) == hi - lo + 1 else ", ".join(str(d) for d in allowed)
    return f"The parameter duration is invalid: {duration} is not supported by {model_id}; supported: {choices}."
