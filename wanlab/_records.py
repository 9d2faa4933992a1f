"""A request as JSON-able data and back: what the experiment log stores so that resume and rerun can
rebuild the very request (media as URLs or paths in the media store, never bytes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from .inputs import Media
from .requests import REQUEST_TYPES, Grid9, Request

_COMMON = ("prompt", "negative_prompt", "model", "resolution", "duration", "seed")


def to_record(req: Request, keep: Callable[[Media], str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, inputs): the fields beyond the common columns, and the media as {"url": …} or
    {"file": …} references. `keep` stores a local input's bytes and returns its path."""
    params: dict[str, Any] = {}
    inputs: dict[str, Any] = {}

    def ref(m: Media) -> dict[str, str]:
        return {"url": m.url} if m.url is not None else {"file": keep(m)}  # m.is_remote

    for f in fields(req):
        if f.name in _COMMON:
            continue
        value = getattr(req, f.name)
        if isinstance(req, Grid9) and f.name == "images":
            continue  # stored once, as the composed grid picture
        if isinstance(req, Grid9) and f.name == "grid":
            value = req.grid_picture
        if isinstance(value, Media):
            inputs[f.name] = ref(value)
        elif isinstance(value, tuple) and value and isinstance(value[0], Media):
            inputs[f.name] = [ref(m) for m in value]
        elif value not in (None, ()):
            params[f.name] = value
    return params, inputs


def from_record(mode: str, common: Mapping[str, Any], params: Mapping[str, Any], inputs: Mapping[str, Any]) -> Request:
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
