"""Media builders shared by tests/test_requests.py and tests/test_providers.py (no conftest: plain helpers
and one fixture the test modules import)."""
from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

W, H = 320, 240


def image_bytes(color=(200, 40, 40), size=(W, H), fmt="PNG", mode="RGB") -> bytes:
    fill = color if mode == "RGB" else (*color, 128)
    buf = io.BytesIO()
    Image.new(mode, size, fill).save(buf, format=fmt)
    return buf.getvalue()


def pil_image(color=(40, 200, 40), size=(W, H)) -> Image.Image:
    return Image.new("RGB", size, color)


def write_mp4(path: Path, seconds: float, size=(W, H), fps: int = 30) -> Path:
    """A short H.264 MP4 whose frames change colour (so it is a real, decodable clip)."""
    w, h = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(int(round(seconds * fps))):
            arr = np.zeros((h, w, 3), np.uint8)
            arr[..., 0] = (i * 7) % 256
            arr[..., 1] = 120
            arr[: h // 2, : w // 2, 2] = 255
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def media_files(tmp_path_factory) -> dict[str, Path]:
    """Local input files of every sort a test needs, made once per module."""
    d = tmp_path_factory.mktemp("media")
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> Path:
        p = d / name
        p.write_bytes(data)
        files[name.rsplit(".", 1)[0]] = p
        return p

    put("red.png", image_bytes((220, 30, 30)))
    put("blue.jpg", image_bytes((30, 30, 220), size=(480, 270), fmt="JPEG"))
    put("green.png", image_bytes((30, 200, 30), size=(240, 240)))
    put("alpha.png", image_bytes((10, 10, 10), mode="RGBA"))
    put("tiny.png", image_bytes(size=(100, 100)))
    put("thin.png", image_bytes(size=(240, 2400)))
    put("notes.txt", b"this is not an image, it is a text file\n" * 4)
    files["clip3"] = write_mp4(d / "clip3.mp4", 3.0)
    files["clip1"] = write_mp4(d / "clip1.mp4", 1.0)
    files["clip12"] = write_mp4(d / "clip12.mp4", 12.0, fps=10)
    files["dir"] = d / "a_directory"
    files["dir"].mkdir()
    files["missing"] = d / "does-not-exist.png"
    return files
