"""clip_score's plumbing — local loading, frame sampling, the worker, the log column — with a TINY, RANDOMLY
INITIALISED CLIP model built here: it tests the plumbing, not whether the score means anything.

Needs torch and transformers; CI installs the CPU torch that lies on its machine (PyPI's default torch is
a multi-GB CUDA build), and these tests skip where neither is installed."""
from __future__ import annotations

import pytest

from wanlab import T2V, ConfigError, Lab

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

WORDS = ["[UNK]", "[PAD]", "<|startoftext|>", "<|endoftext|>", "a", "paper", "boat", "on", "pond", "red", "kite"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A 2-layer, 32-wide CLIP in transformers layout: weights, config, a word-level tokenizer, an image
    processor — everything from_pretrained needs, nothing from the network."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-clip")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # CLIP pools the text at its end-of-text token: without one every prompt would pool its first word
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", 2), ("<|endoftext|>", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<|startoftext|>",
                            eos_token="<|endoftext|>", model_max_length=16).save_pretrained(folder)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(WORDS), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, bos_token_id=2, eos_token_id=3,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from wanlab.sim.render import RenderSpec, render

    path = tmp_path_factory.mktemp("clip-video") / "v.mp4"
    path.write_bytes(render(RenderSpec("t2v", "a red kite", 3, 320, 192, 1.0)))
    return path


def test_clip_score_is_a_deterministic_number_in_range_from_a_local_model(tiny_clip, video):
    from wanlab.quality._clip import clip_score, mean_cosine, model_dir, sample_rgb

    frames = sample_rgb(video, frames=8)
    assert len(frames) == 8 and frames[0].shape == (202, 336, 3) and frames[0].dtype.name == "uint8"
    directory = model_dir(tiny_clip)
    a = mean_cosine(video, "a red kite", directory)
    assert a == mean_cosine(video, "a red kite", directory) and -1.0 <= a <= 1.0
    assert a != mean_cosine(video, "a paper boat on a pond", directory)  # the text reaches the model
    assert clip_score(video, "a red kite", directory) == round(100 * max(0.0, a), 4)


def test_a_hub_name_or_a_missing_folder_is_refused_before_anything_starts(tmp_path, monkeypatch):
    """wanlab never downloads weights: a hub id is not a folder here, and is refused at Lab()."""
    for given in ("openai/clip-vit-base-patch32", str(tmp_path / "nope")):
        with pytest.raises(ConfigError, match="never downloads"):
            Lab(time_scale=0.002, quiet=True, home=tmp_path, clip_model=given)
    monkeypatch.setenv("WANLAB_CLIP_MODEL", "openai/clip-vit-base-patch32")
    with pytest.raises(ConfigError, match="never downloads"):
        Lab(time_scale=0.002, quiet=True, home=tmp_path)


def test_every_run_gets_a_clip_score_column_in_the_log(tiny_clip, tmp_path):
    with Lab(time_scale=0.002, quiet=True, home=tmp_path, clip_model=tiny_clip) as lab:
        jobs = [lab.submit(T2V("a red kite", duration=2, seed=1)), lab.submit(T2V("a paper boat", duration=2, seed=1))]
        lab.wait(jobs)
        out = lab.measure(jobs)
        for job in jobs:
            row = lab.log.get(job.id)
            assert row["quality_error"] is None, row["quality_error"]
            assert 0.0 <= row["clip_score"] <= 100.0 and row["flicker"] is not None
        assert "clip_score" in out.columns and out["clip_score"].notna().all()
    with Lab(time_scale=0.002, quiet=True, home=tmp_path / "no-clip") as lab:  # no model: no column value
        job = lab.run_sync(T2V("a red kite", duration=2, seed=1))
        assert "clip_score" not in lab.measure([job]).columns and lab.log.get(job.id)["clip_score"] is None
