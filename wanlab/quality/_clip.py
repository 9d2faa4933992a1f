"""Prompt alignment: `clip_score(video, prompt, model_dir)`, a CLIP model's agreement between the prompt and
frames sampled from the video — only with a model already on the user's disk. wanlab never downloads
weights: the model is a local directory in Hugging Face `transformers` layout (config, weights, tokenizer,
image processor), loaded with `local_files_only=True` and the hub switched off.

The score is CLIPScore as torchmetrics defines it: 100 × max(0, mean cosine similarity) between the
prompt's text embedding and the embeddings of `frames` evenly spaced frames. What it cannot see: motion,
flicker or anything over time (frames are judged one by one); what the text encoder truncates (77 tokens
for OpenAI's CLIP); and its scale depends on the model, so compare scores of one model only.

The tests run this with a tiny randomly initialised model built on the spot: that tests the plumbing (the
loader, sampling, the log column), not whether the score means anything — a real CLIP model does that.
open_clip checkpoints are not loaded: open_clip's image transforms need torchvision, which this project
cannot install beside a CPU torch from PyPI; convert the model to `transformers` layout instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ENV = "WANLAB_CLIP_MODEL"  # a local directory; how a Lab finds the model when `clip_model=` is not given
_loaded: dict[str, Any] = {}  # model directory → (model, tokenizer, image processor), once per process


def model_dir(given: str | os.PathLike | None = None) -> str | None:
    """The CLIP model directory to use: `given`, else $WANLAB_CLIP_MODEL, else None (no clip_score). A path
    that is not a directory is refused at once, saying what to give: a hub name would mean a download."""
    where = given if given is not None else os.environ.get(ENV) or None
    if where is None:
        return None
    path = Path(where).expanduser()
    if not path.is_dir():
        raise ValueError(
            f"clip model {str(where)!r} is not a directory on this machine: give a local folder with a CLIP model "
            f"in transformers layout (config.json, weights, tokenizer); wanlab never downloads weights"
        )
    return str(path.resolve())


def _load(directory: str) -> Any:
    if directory not in _loaded:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: local_files_only already says so
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch  # noqa: F401
            from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel
        except ImportError as exc:
            raise ValueError(f"clip_score needs torch and transformers installed ({exc})") from None
        model = CLIPModel.from_pretrained(directory, local_files_only=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        processor = AutoImageProcessor.from_pretrained(directory, local_files_only=True)
        _loaded[directory] = (model, tokenizer, processor)
    return _loaded[directory]


def sample_rgb(path: str | os.PathLike, frames: int = 8, width: int = 336) -> list[np.ndarray]:
    """`frames` evenly spaced frames of the video as RGB arrays, `width` pixels wide (enough for CLIP's
    224-pixel crops)."""
    import numpy as np

    from ._decode import open_video

    container, stream, _facts = open_video(path)
    try:
        decoded = []
        for frame in container.decode(stream):
            height = max(2, round(frame.height * width / frame.width / 2) * 2)
            decoded.append(frame.to_ndarray(format="rgb24", width=width, height=height))
    finally:
        container.close()
    if not decoded:
        raise ValueError(f"{os.fspath(path)!s}: no decodable video frames")
    picks = np.linspace(0, len(decoded) - 1, num=min(frames, len(decoded))).round().astype(int)
    return [decoded[i] for i in picks]


def clip_score(path: str | os.PathLike, prompt: str, directory: str, frames: int = 8) -> float:
    """100 × max(0, mean cosine) between `prompt` and `frames` sampled frames, by the CLIP model in
    `directory` (loaded once per process)."""
    return round(100.0 * max(0.0, mean_cosine(path, prompt, directory, frames)), 4)


def mean_cosine(path: str | os.PathLike, prompt: str, directory: str, frames: int = 8) -> float:
    """The mean cosine similarity behind `clip_score`, before its clipping at 0."""
    import torch

    model, tokenizer, processor = _load(directory)
    images = sample_rgb(path, frames)
    with torch.no_grad():
        text = tokenizer([prompt], padding=True, truncation=True, return_tensors="pt")
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        out = model(input_ids=text["input_ids"], attention_mask=text.get("attention_mask"), pixel_values=pixels)
        return float((out.image_embeds @ out.text_embeds.T).mean().item())  # both come L2-normalised
