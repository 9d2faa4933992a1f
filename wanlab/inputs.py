"""Media inputs of a request: https URLs, local paths, bytes or PIL images, checked before any upload.

A local input is read once, at request creation, so a request is a frozen value: what was validated
is what gets uploaded, even if the file changes on disk afterwards.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, Union
from urllib.parse import urlsplit

from . import _checks as checks
from .errors import ValidationError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

MediaLike = Union[str, os.PathLike, bytes, "PILImage", "Media"]

REMOTE_SCHEMES = ("https://", "http://", "oss://", "data:")

# The hosts' documented input limits (docs/WIRE.md §2).
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp"}
IMAGE_SIDE = (240, 8000)
IMAGE_MAX_BYTES = 20 * 1024 * 1024
IMAGE_MAX_ASPECT = 8.0
VIDEO_SIDE = (240, 4096)
VIDEO_MAX_BYTES = 100 * 1024 * 1024
AUDIO_MAX_BYTES = 15 * 1024 * 1024


@dataclass(frozen=True)
class Media:
    """One input file: either a URL the host fetches itself, or bytes wanlab uploads first."""

    kind: str  # "image" | "video" | "audio"
    url: str | None = None  # remote: https/http/oss/data
    data: bytes | None = field(default=None, repr=False)
    name: str = ""
    mime: str = ""
    width: int | None = None
    height: int | None = None
    seconds: float | None = None  # videos and audio, when probed

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    @property
    def sha256(self) -> str:
        src = self.data if self.data is not None else (self.url or "").encode()
        return hashlib.sha256(src).hexdigest()

    @property
    def aspect(self) -> float | None:
        return self.width / self.height if self.width and self.height else None

    def describe(self) -> str:
        """Short, loggable, never the bytes."""
        if self.url is not None:
            return self.url if not self.url.startswith("data:") else f"data:{self.mime}…({len(self.url)} chars)"
        return f"{self.name or self.kind} ({len(self.data or b'')} bytes, sha256 {self.sha256[:12]})"

    def data_uri(self) -> str:
        assert self.data is not None
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


def _is_pil(value: Any) -> TypeGuard[PILImage]:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "save")


def to_media(value: MediaLike, kind: str, where: str) -> Media:
    """Coerce a user value into a checked Media, or raise ValidationError saying what would be right."""
    if isinstance(value, Media):
        if value.kind != kind:
            raise ValidationError(f"{where}: got a {value.kind}, expected a {kind}")
        return value
    if isinstance(value, str) and value.lower().startswith(REMOTE_SCHEMES):
        value = str(value)
        scheme = value.split(":", 1)[0].lower()
        if scheme == "data":
            return _check_data_uri(value, kind, where)
        if scheme == "http" and not _is_loopback(value):
            raise ValidationError(
                f"{where}={value!r}: the hosts fetch inputs over https; use an https:// URL "
                f"or a local path (wanlab uploads it)"
            )
        checks.check_url(where, value, schemes=("https", "http", "oss"))
        name = urlsplit(value).path.rsplit("/", 1)[-1]
        _check_url_suffix(name, kind, where, value)
        return Media(kind=kind, url=value, name=name)
    if _is_pil(value):
        buf = io.BytesIO()
        img = value.convert("RGB") if value.mode not in ("RGB", "L") else value
        img.save(buf, format="PNG")
        return _check_bytes(buf.getvalue(), kind, where, name="image.png")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _check_bytes(bytes(value), kind, where, name=f"{kind}.bin")
    if isinstance(value, (str, os.PathLike)):
        if isinstance(value, str) and "://" in value:
            raise ValidationError(
                f"{where}={value!r}: unsupported URL scheme; use https://, oss://, data: or a local path"
            )
        if isinstance(value, str) and not value.strip():
            raise ValidationError(f"{where}: the path is empty; give an https:// URL, a local path or bytes")
        path = Path(value).expanduser()
        if "\0" in str(path):
            raise ValidationError(f"{where}={str(value)!r}: a path cannot contain a NUL character; check the name")
        if not path.exists():
            raise ValidationError(
                f"{where}={str(value)!r}: no such file; give an existing local path or an https:// URL"
            )
        if not path.is_file():
            raise ValidationError(f"{where}={str(value)!r} is a directory, not a {kind} file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValidationError(
                f"{where}={str(value)!r} cannot be read ({exc.strerror}); check its permissions"
            ) from None
        return _check_bytes(data, kind, where, name=path.name)
    array = " (for a numpy array use PIL.Image.fromarray(arr))" if type(value).__name__ == "ndarray" else ""
    raise ValidationError(
        f"{where}: a {type(value).__name__} is not a {kind} input; give an https:// URL, a "
        f"local path, bytes" + (" or a PIL image" + array if kind == "image" else "")
    )


# File extensions that clearly belong to one kind: a URL ending in one of another kind is a mix-up.
_SUFFIXES = {
    "image": {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".heic"},
    "video": {".mp4", ".mov", ".m4v", ".webm", ".avi", ".mkv"},
    "audio": {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac"},
}


def _check_url_suffix(name: str, kind: str, where: str, url: str) -> None:
    suffix = Path(name).suffix.lower()
    for other, suffixes in _SUFFIXES.items():
        if other != kind and suffix in suffixes:
            raise ValidationError(f"{where}={url!r} names {_a(other)} file ({suffix}); give {_a(kind)} here")


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _is_loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host in ("127.0.0.1", "localhost", "::1")


# MIME spellings that name the same format as the one wanlab detects from the bytes.
_MIME_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-ms-bmp": "image/bmp",
    "video/quicktime": "video/mp4",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/aac": "audio/mp4",
    "audio/x-aac": "audio/mp4",
    "audio/aacp": "audio/mp4",
    "audio/x-flac": "audio/flac",
    "application/ogg": "audio/ogg",
}


def _same_format(declared: str, detected: str) -> bool:
    canon = {d: _MIME_ALIASES.get(d, d) for d in (declared, detected)}
    return canon[declared] == canon[detected]


def _check_data_uri(uri: str, kind: str, where: str) -> Media:
    """A data: URI is sent as is, but its content gets the same checks as a local file, and its MIME type
    must say what the bytes are (a host trusts the label)."""
    head, _, payload = uri.partition(",")
    if not head.lower().endswith(";base64"):
        raise ValidationError(f"{where}: a data: URI must be base64 (data:<mime>;base64,…)")
    declared = head[len("data:") :].split(";", 1)[0].strip().lower()
    if not declared:
        example = {"image": "image/png", "video": "video/mp4", "audio": "audio/wav"}[kind]
        raise ValidationError(
            f"{where}: the data: URI names no MIME type; write data:<mime>;base64,… (e.g. data:{example};base64,…)"
        )
    if not declared.startswith(kind + "/") and not (kind == "audio" and declared == "application/ogg"):
        raise ValidationError(f"{where}: the data: URI says {declared}, which is not {_a(kind)}; give {_a(kind)} here")
    try:
        data = base64.b64decode(payload, validate=True)
    except (ValueError, binascii.Error):
        raise ValidationError(f"{where}: the data: URI's base64 payload does not decode") from None
    checked = _check_bytes(data, kind, where, name=f"{kind}.bin")
    if not _same_format(declared, checked.mime):
        raise ValidationError(
            f"{where}: the data: URI says {declared} but its bytes are {checked.mime}; fix the "
            f"label (data:{checked.mime};base64,…) or the payload"
        )
    return replace(checked, url=uri, data=None)


def _check_bytes(data: bytes, kind: str, where: str, name: str) -> Media:
    if not data:
        raise ValidationError(f"{where}: the {kind} is empty (0 bytes)")
    if kind == "image":
        return _check_image(data, where, name)
    if kind == "video":
        return _check_video(data, where, name)
    return _check_audio(data, where, name)


AUDIO_FORMATS = "WAV, MP3, M4A/AAC, OGG or FLAC"
_AUDIO_EXT = {
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
}
# Formats people hand in by mistake, named in the refusal.
_OTHER_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"%PDF", "a PDF"),
)


def _sniff_audio(data: bytes) -> str | None:
    """The audio MIME type from the container's magic bytes, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:3] == b"ID3" or data[:4] in (b"OggS", b"fLaC"):
        return {b"ID": "audio/mpeg", b"Og": "audio/ogg", b"fL": "audio/flac"}[data[:2]]
    if data[4:8] == b"ftyp":
        return "audio/mp4"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        # frame sync: layer bits 00 are AAC (ADTS), anything else MPEG audio (MP3)
        return "audio/aac" if data[1] & 0x06 == 0 else "audio/mpeg"
    return None


def _check_audio(data: bytes, where: str, name: str) -> Media:
    """A real audio container (magic bytes), that decodes and has an audio track and no picture track."""
    import av

    if len(data) > AUDIO_MAX_BYTES:
        raise ValidationError(f"{where}: audio is {len(data) / 2**20:.1f} MB; the hosts accept ≤ 15 MB")
    mime = _sniff_audio(data)
    if mime is None:
        looks = next((what for magic, what in _OTHER_MAGIC if data.startswith(magic)), "")
        looks = f" (it is {looks})" if looks else ""
        raise ValidationError(f"{where}: {name} is not an audio file{looks}; use {AUDIO_FORMATS}")
    try:
        with av.open(io.BytesIO(data), "r") as container:
            has_audio = bool(container.streams.audio)
            pictures = [s for s in container.streams.video if s.codec_context.name not in ("mjpeg", "png")]
            seconds = container.duration / 1_000_000 if container.duration is not None else None
    except (av.error.FFmpegError, ValueError, IndexError):
        raise ValidationError(
            f"{where}: {name} is not a readable audio file (its header says "
            f"{mime}, but it does not decode); use {AUDIO_FORMATS}"
        ) from None
    if pictures:
        raise ValidationError(f"{where}: {name} is a video; give its soundtrack alone as {AUDIO_FORMATS}")
    if not has_audio:
        raise ValidationError(f"{where}: {name} has no audio track; use {AUDIO_FORMATS}")
    base = Path(name).stem or "audio"
    return Media(
        kind="audio",
        data=data,
        name=base + _AUDIO_EXT[mime],
        mime=mime,
        seconds=round(seconds, 3) if seconds is not None else None,
    )


def _check_image(data: bytes, where: str, name: str) -> Media:
    from PIL import Image, UnidentifiedImageError

    if len(data) > IMAGE_MAX_BYTES:
        raise ValidationError(f"{where}: image is {len(data) / 2**20:.1f} MB; the hosts accept ≤ 20 MB")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (w, h), mode = img.format, img.size, img.mode
            has_alpha = "A" in mode or "transparency" in img.info
    except (UnidentifiedImageError, OSError):
        raise ValidationError(f"{where}: {name} is not a readable image; use JPEG, PNG, BMP or WEBP") from None
    if fmt not in IMAGE_FORMATS:
        raise ValidationError(f"{where}: {name} is {fmt}; the hosts accept JPEG, PNG, BMP or WEBP")
    if min(w, h) < IMAGE_SIDE[0] or max(w, h) > IMAGE_SIDE[1]:
        raise ValidationError(f"{where}: {name} is {w}×{h}; each side must be {IMAGE_SIDE[0]}–{IMAGE_SIDE[1]} px")
    if max(w / h, h / w) > IMAGE_MAX_ASPECT:
        raise ValidationError(f"{where}: {name} is {w}×{h}; the aspect ratio must be between 1:8 and 8:1")
    if fmt == "PNG" and has_alpha:
        raise ValidationError(
            f"{where}: {name} is a PNG with an alpha channel, which the hosts reject; "
            f"convert it, e.g. PIL img.convert('RGB')"
        )
    base = Path(name).stem or "image"
    ext = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp"}[fmt]
    return Media(kind="image", data=data, name=base + ext, mime=IMAGE_FORMATS[fmt], width=w, height=h)


def _check_video(data: bytes, where: str, name: str) -> Media:
    from .video import probe

    if len(data) > VIDEO_MAX_BYTES:
        raise ValidationError(f"{where}: video is {len(data) / 2**20:.1f} MB; the hosts accept ≤ 100 MB")
    looks = next((what for magic, what in _OTHER_MAGIC if data.startswith(magic)), "")
    if looks:
        raise ValidationError(f"{where}: {name} is {looks}, not a video; use MP4 or MOV")
    try:
        info = probe(data)
    except ValueError:
        raise ValidationError(f"{where}: {name} is not a readable video; use MP4 or MOV") from None
    fmt, w, h, seconds = info["format"], info["width"], info["height"], info["duration"]
    if "mp4" not in fmt and "mov" not in fmt:
        raise ValidationError(f"{where}: {name} is {fmt}; the hosts accept MP4 or MOV")
    if min(w, h) < VIDEO_SIDE[0] or max(w, h) > VIDEO_SIDE[1]:
        raise ValidationError(f"{where}: {name} is {w}×{h}; each side must be {VIDEO_SIDE[0]}–{VIDEO_SIDE[1]} px")
    return Media(
        kind="video",
        data=data,
        name=Path(name).stem + ".mp4",
        mime="video/mp4",
        width=w,
        height=h,
        seconds=round(seconds, 3),
    )


def compose_grid(images: list[Media], cell: int = 512) -> Media:
    """Nine images → one 3×3 grid picture (row by row), which is what wan2.7-r2v reads as a storyboard.
    Each tile is centre-cropped to a square so the grid's cells line up."""
    from PIL import Image, ImageOps

    if any(m.is_remote for m in images):
        raise ValidationError(
            "Grid9: composing nine images needs their pixels; give local paths, bytes or PIL "
            "images (or pass one ready-made grid picture as grid=)"
        )
    sheet = Image.new("RGB", (3 * cell, 3 * cell), "white")
    for i, m in enumerate(images):
        with Image.open(io.BytesIO(m.data or b"")) as img:
            tile = ImageOps.fit(img.convert("RGB"), (cell, cell))
        sheet.paste(tile, ((i % 3) * cell, (i // 3) * cell))
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=90)
    return Media(
        kind="image", data=buf.getvalue(), name="grid9.jpg", mime="image/jpeg", width=3 * cell, height=3 * cell
    )
