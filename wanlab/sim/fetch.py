"""Fetching a request's media offline: URLs into bytes for the renderer, and what those bytes are.

`data:` URIs decode; `oss://<key>` resolves from the sim's OSS uploads; http(s) URLs that point at the
sim itself are served from its stores; anything else cannot be fetched offline: with strict_media the
task fails the way the host fails an unreachable URL, otherwise the renderer gets the URL text (its
placeholder path)."""

from __future__ import annotations

import base64
import io
import urllib.parse
from dataclasses import dataclass

from .store import BlobStore


class MediaUnreachable(Exception):
    """The URL cannot be fetched (offline, unknown upload, expired upload)."""


@dataclass
class Resolver:
    store: BlobStore
    own_hosts: frozenset[str]  # "127.0.0.1:PORT", "localhost:PORT", the Host header seen
    strict: bool
    sim_now: float

    def fetch(self, url: str) -> bytes:
        if not isinstance(url, str) or not url:
            raise MediaUnreachable("empty media URL")
        if url.startswith("data:"):
            return _data_uri(url)
        if url.startswith("oss://"):
            blob = self.store.get("oss", url[len("oss://") :])
            if blob is None or blob.expired(self.sim_now):
                raise MediaUnreachable(f"no uploaded object at {url}")
            return blob.read()
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc in self.own_hosts:
            segs = parts.path.strip("/").split("/", 1)
            if len(segs) == 2 and segs[0] in ("_files", "_media"):
                space = "files" if segs[0] == "_files" else "media"
                blob = self.store.get(space, urllib.parse.unquote(segs[1]))
                if blob is not None and not blob.expired(self.sim_now):
                    return blob.read()
            raise MediaUnreachable(f"nothing is served at {url}")
        if self.strict:
            raise MediaUnreachable(f"cannot download {url} (the sim is offline)")
        return url.encode("utf-8", "replace")


def _data_uri(url: str) -> bytes:
    head, sep, payload = url.partition(",")
    if not sep:
        raise MediaUnreachable("malformed data: URI")
    if head.endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=False)
        except ValueError as exc:
            raise MediaUnreachable("undecodable base64 in data: URI") from exc
    return urllib.parse.unquote_to_bytes(payload)


# ---- what the fetched bytes are (task building sizes the output and sorts references by them) ----
def image_aspect(data: bytes) -> float | None:
    """Width / height of an encoded image, or None when it does not decode."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
        return w / h if h else None
    except Exception:  # noqa: BLE001 — anything undecodable is the renderer's placeholder case
        return None


def is_video(data: bytes) -> bool:
    return len(data) > 12 and data[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")


def video_info(data: bytes) -> dict | None:
    try:
        from . import render

        return render.probe(data)
    except Exception:  # noqa: BLE001
        return None
