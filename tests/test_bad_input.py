"""Every input checked before anything is sent: one table of bad inputs (each refused with the right
exception and a message that names the field or value AND says what to change; when a Lab is involved,
nothing reached the host and no row was written), and one table of good inputs that must be accepted
(numpy numbers normalised to Python types, percent-encoded URLs, real audio files …)."""
from __future__ import annotations

import base64
import io
import math
import sys
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import KEY  # noqa: E402
from media_fixtures import media_files  # noqa: E402,F401  (fixture import)

from wanlab import FLF2V, I2V, T2V, Edit, Grid9, Lab, Ref2V, RetryPolicy  # noqa: E402
from wanlab.cost import Budget  # noqa: E402
from wanlab.errors import CatalogError, ConfigError, ValidationError  # noqa: E402
from wanlab.limits import Limits  # noqa: E402
from wanlab.polling import EtaPoll, FixedInterval, HostCadence  # noqa: E402
from wanlab.prices import default_prices  # noqa: E402
from wanlab.requests import SEED_MAX  # noqa: E402

URL = "https://cdn.example.com/in/frame.png"
VURL = "https://cdn.example.com/in/clip.mp4"
AURL = "https://cdn.example.com/in/track.mp3"
BASE = T2V("a kite over a hill", duration=2, seed=1)


# --------------------------------------------------------------------------------------------------
# media
# --------------------------------------------------------------------------------------------------

def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        t = np.arange(int(seconds * rate)) / rate
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return buf.getvalue()


def encoded_audio(fmt: str, codec: str, seconds: float = 1.0, rate: int = 48000) -> bytes:
    """A real, decodable audio file in container `fmt` (mp3, ipod = .m4a, adts = raw AAC, flac, ogg)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        n = int(seconds * rate)
        samples = (np.sin(2 * np.pi * 440 * np.arange(n) / rate) * 0.3).astype(np.float32)
        fmt_name = stream.codec_context.codec.audio_formats[0].name
        step = 960
        for i in range(0, n, step):
            chunk = samples[i:i + step]
            if fmt_name.startswith("s16"):
                frame = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16)[None, :], format="s16",
                                                   layout="mono")
            else:
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt" if fmt_name == "flt" else "fltp",
                                                   layout="mono")
            frame.sample_rate = rate
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _cycle() -> list:
    loop: list = []
    loop.append(loop)
    return loop


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture(scope="module")
def media(media_files, tmp_path_factory) -> dict[str, Any]:
    """media_files (paths) plus audio of every accepted container, and raw bytes of each."""
    d = tmp_path_factory.mktemp("audio")
    m: dict[str, Any] = dict(media_files)
    m["wav_bytes"] = wav_bytes()
    m["mp3_bytes"] = encoded_audio("mp3", "libmp3lame")
    m["m4a_bytes"] = encoded_audio("ipod", "aac")
    m["aac_bytes"] = encoded_audio("adts", "aac")
    m["flac_bytes"] = encoded_audio("flac", "flac")
    m["ogg_bytes"] = encoded_audio("ogg", "libopus")
    for ext in ("wav", "mp3", "m4a", "flac"):
        p = d / f"track.{ext}"
        p.write_bytes(m[f"{ext}_bytes"])
        m[f"{ext}_path"] = p
    m["png_bytes"] = media_files["red"].read_bytes()
    m["jpg_bytes"] = media_files["blue"].read_bytes()
    m["mp4_bytes"] = media_files["clip3"].read_bytes()
    return m


# --------------------------------------------------------------------------------------------------
# bad inputs: (id, call, exception, substrings the message must contain: what was wrong, what to do)
# `call` takes the media dict; Lab cases take a context object (see below).
# --------------------------------------------------------------------------------------------------

Case = tuple[str, Callable[..., Any], type, tuple[str, ...]]

REQUESTS: list[Case] = [
    # seed
    ("seed_np_negative", lambda m: T2V("x", seed=np.int64(-1)), ValidationError, ("seed=", "0–2147483647")),
    ("seed_np_too_big", lambda m: T2V("x", seed=np.int64(SEED_MAX + 1)), ValidationError,
     ("seed=", "or None for a random seed")),
    ("seed_fraction", lambda m: T2V("x", seed=1.5), ValidationError, ("seed=1.5", "must be an integer")),
    ("seed_np_fraction", lambda m: T2V("x", seed=np.float64(2.5)), ValidationError, ("seed=", "must be an integer")),
    ("seed_nan", lambda m: T2V("x", seed=math.nan), ValidationError, ("seed=nan", "not NaN")),
    ("seed_inf", lambda m: T2V("x", seed=math.inf), ValidationError, ("seed=inf", "must be an integer")),
    ("seed_list", lambda m: T2V("x", seed=[1]), ValidationError, ("seed=[1]", "not a list")),
    ("seed_numeric_str", lambda m: T2V("x", seed="7"), ValidationError, ("seed='7'", "write 7 without quotes")),
    ("seed_np_bool", lambda m: T2V("x", seed=np.bool_(True)), ValidationError, ("seed=", "must be an integer")),
    # duration
    ("duration_np_fraction", lambda m: T2V("x", duration=np.float32(5.5)), ValidationError,
     ("duration=", "whole number of seconds")),
    ("duration_nan", lambda m: T2V("x", duration=math.nan), ValidationError, ("duration=nan", "not NaN")),
    ("duration_none", lambda m: T2V("x", duration=None), ValidationError, ("duration=None", "whole number")),
    ("duration_negative", lambda m: T2V("x", duration=-5), ValidationError, ("duration=-5", "accepts 2–15 s")),
    ("duration_zero_t2v", lambda m: T2V("x", duration=0), ValidationError, ("duration=0", "accepts 2–15 s")),
    ("duration_np_16", lambda m: T2V("x", duration=np.int64(16)), ValidationError, ("duration=16", "2–15 s")),
    ("duration_complex", lambda m: T2V("x", duration=5j), ValidationError, ("duration=5j", "not a complex")),
    ("duration_i2v_np_1", lambda m: I2V("x", image=URL, duration=np.int16(1)), ValidationError,
     ("duration=1", "accepts 2–15 s")),
    # model
    ("model_int", lambda m: T2V("x", model=27), CatalogError, ("model=27", "model ID string such as 'wan2.7-t2v'")),
    ("model_empty", lambda m: T2V("x", model=""), CatalogError, ("model=''", "model ID string")),
    ("model_list", lambda m: T2V("x", model=["wan2.7-t2v"]), CatalogError, ("model=['wan2.7-t2v']", "string")),
    ("model_uppercase", lambda m: T2V("x", model="WAN2.7-T2V"), CatalogError,
     ("model='WAN2.7-T2V'", "did you mean 'wan2.7-t2v'")),
    # prompts
    ("prompt_lone_surrogate", lambda m: T2V("a\ud800b"), ValidationError, ("prompt", "U+D800", "remove it")),
    ("negative_lone_surrogate", lambda m: T2V("x", negative_prompt="no \udfff"), ValidationError,
     ("negative_prompt", "U+DFFF", "remove it")),
    ("edit_prompt_surrogate", lambda m: Edit("cut \ud83d", video=VURL), ValidationError, ("Edit: prompt", "remove it")),
    ("grid_shot_surrogate", lambda m: Grid9(grid=URL, shots=["ok", "bad \udc00"]), ValidationError,
     ("Grid9: shots", "remove it")),
    ("prompt_bytes", lambda m: T2V(b"a fox"), ValidationError, ("prompt must be a str", "got bytes")),
    ("prompt_int", lambda m: T2V(5), ValidationError, ("prompt must be a str", "got int")),
    ("prompt_np_5001", lambda m: T2V(np.str_("y" * 5001)), ValidationError, ("prompt is 5001 characters", "≤ 5000")),
    ("negative_none", lambda m: T2V("x", negative_prompt=None), ValidationError, ("negative_prompt", "must be a str")),
    ("i2v_prompt_surrogate", lambda m: I2V("\ud800", image=URL), ValidationError, ("I2V: prompt", "remove it")),
    # resolution and ratio
    ("res_int_720", lambda m: T2V("x", resolution=720), ValidationError, ("resolution=720", "did you mean '720P'")),
    ("res_1080_str", lambda m: T2V("x", resolution="1080"), ValidationError,
     ("resolution='1080'", "did you mean '1080P'")),
    ("res_none", lambda m: T2V("x", resolution=None), ValidationError, ("resolution=None", "use '720P' or '1080P'")),
    ("res_lower_flf", lambda m: FLF2V("x", first=URL, last=URL, resolution="1080p"), ValidationError,
     ("resolution='1080p'", "did you mean '1080P'")),
    ("ratio_slash", lambda m: T2V("x", ratio="16/9"), ValidationError, ("ratio='16/9'", "did you mean '16:9'")),
    ("ratio_float", lambda m: T2V("x", ratio=1.77), ValidationError, ("ratio=1.77", "use one of 16:9")),
    ("ratio_none_t2v", lambda m: T2V("x", ratio=None), ValidationError, ("ratio=None", "use one of")),
    ("ratio_grid", lambda m: Grid9("x", grid=URL, ratio="2:1"), ValidationError, ("ratio='2:1'", "use one of")),
    ("ratio_ref2v", lambda m: Ref2V("x", images=[URL], ratio="21:9"), ValidationError, ("ratio='21:9'", "use one of")),
    ("edit_audio_setting_none", lambda m: Edit("x", video=VURL, audio_setting=None), ValidationError,
     ("audio_setting=None", "use 'auto' or 'origin'")),
    # mode rules
    ("grid_shots_not_str", lambda m: Grid9("x", grid=URL, shots=[1, 2]), ValidationError,
     ("shots must be up to 9 strings", "got 2")),
    ("grid_no_images", lambda m: Grid9("x"), ValidationError, ("got 0 image(s)", "takes exactly 9")),
    ("ref2v_seven", lambda m: Ref2V("x", images=[URL] * 7), ValidationError, ("got 7 references", "1–5 in total")),
    ("flf_no_last", lambda m: FLF2V("x", first=URL), ValidationError, ("last frame is missing", "give both")),
    ("i2v_image_none", lambda m: I2V("x", image=None), ValidationError, ("image is missing", "https URL")),
    ("edit_video_none", lambda m: Edit("x", video=None), ValidationError, ("video is missing", "2–10 s clip")),
]

EXTRA: list[Case] = [
    ("extra_seed", lambda m: T2V("x", extra={"seed": -5}), ValidationError, ("extra['seed']", "use the field seed=")),
    ("extra_duration", lambda m: T2V("x", extra={"duration": 100}), ValidationError,
     ("extra['duration']", "use the field duration=")),
    ("extra_resolution", lambda m: T2V("x", extra={"resolution": "480P"}), ValidationError,
     ("extra['resolution']", "use the field resolution=")),
    ("extra_size", lambda m: T2V("x", extra={"size": "1280*720"}), ValidationError,
     ("extra['size']", "use the field resolution=")),
    ("extra_long_prompt", lambda m: T2V("x", extra={"prompt": "p" * 6000}), ValidationError,
     ("extra['prompt']", "use the field prompt=")),
    ("extra_input_prompt", lambda m: T2V("x", extra={"input.prompt": "y"}), ValidationError,
     ("extra['input.prompt']", "use the field prompt=")),
    ("extra_negative", lambda m: T2V("x", extra={"negative_prompt": "n"}), ValidationError,
     ("extra['negative_prompt']", "use the field negative_prompt=")),
    ("extra_input_negative", lambda m: T2V("x", extra={"input.negative_prompt": "n"}), ValidationError,
     ("extra['input.negative_prompt']", "negative_prompt=")),
    ("extra_ratio", lambda m: T2V("x", extra={"ratio": "1:1"}), ValidationError,
     ("extra['ratio']", "use the field ratio=")),
    ("extra_ratio_on_i2v", lambda m: I2V("x", image=URL, extra={"ratio": "1:1"}), ValidationError,
     ("extra['ratio']", "I2V has no field ratio", "drop it from extra")),
    ("extra_aspect_ratio", lambda m: Ref2V("x", images=[URL], extra={"aspect_ratio": "1:1"}), ValidationError,
     ("extra['aspect_ratio']", "use the field ratio=")),
    ("extra_model", lambda m: T2V("x", extra={"model": "wan2.6-t2v"}), ValidationError,
     ("extra['model']", "use the field model=")),
    ("extra_audio_setting_t2v", lambda m: T2V("x", extra={"audio_setting": "origin"}), ValidationError,
     ("extra['audio_setting']", "drop it from extra")),
    ("extra_seed_on_edit", lambda m: Edit("x", video=VURL, extra={"seed": 1}), ValidationError,
     ("extra['seed']", "seed=")),
    ("extra_img_url", lambda m: I2V("x", image=URL, extra={"input.img_url": URL}), ValidationError,
     ("extra['input.img_url']", "image=")),
    ("extra_media", lambda m: FLF2V("x", first=URL, last=URL, extra={"input.media": []}), ValidationError,
     ("extra['input.media']", "first=", "last=")),
    ("extra_image_wavespeed", lambda m: I2V("x", image=URL, extra={"image": URL}), ValidationError,
     ("extra['image']", "drop it from extra")),
    ("extra_audio_url", lambda m: T2V("x", extra={"audio_url": AURL}), ValidationError,
     ("extra['audio_url']", "audio=")),
    ("extra_reference_images", lambda m: Ref2V("x", images=[URL], extra={"reference_images": [URL]}),
     ValidationError, ("extra['reference_images']", "images=")),
    ("extra_watermark_str", lambda m: T2V("x", extra={"watermark": "yes"}), ValidationError,
     ("watermark='yes'", "True or False")),
    ("extra_watermark_2", lambda m: T2V("x", extra={"watermark": 2}), ValidationError, ("watermark=2", "True or False")),
    ("extra_prompt_extend_str", lambda m: T2V("x", extra={"prompt_extend": "true"}), ValidationError,
     ("prompt_extend='true'", "True or False")),
    ("extra_expansion_none", lambda m: T2V("x", extra={"enable_prompt_expansion": None}), ValidationError,
     ("enable_prompt_expansion=None", "True or False")),
    ("extra_audio_url_as_switch", lambda m: T2V("x", model="wan2.6-t2v", extra={"audio": AURL}), ValidationError,
     ("audio=", "a soundtrack is audio=")),
    ("extra_shot_type", lambda m: T2V("x", extra={"shot_type": "double"}), ValidationError,
     ("shot_type='double'", "'single', 'multi'")),
    ("extra_object", lambda m: T2V("x", extra={"x": object()}), ValidationError,
     ("extra['x']", "cannot be sent as JSON", "use a str, number")),
    ("extra_nan", lambda m: T2V("x", extra={"x": math.nan}), ValidationError, ("extra['x']=nan", "not NaN")),
    ("extra_np_inf", lambda m: T2V("x", extra={"x": np.float64("inf")}), ValidationError,
     ("extra['x']", "not NaN or infinity")),
    ("extra_set", lambda m: T2V("x", extra={"x": {1}}), ValidationError, ("extra['x']", "a set cannot be sent")),
    ("extra_bytes", lambda m: T2V("x", extra={"x": b"ab"}), ValidationError, ("extra['x']", "a bytes cannot be sent")),
    ("extra_nested_object", lambda m: T2V("x", extra={"a": {"b": [object()]}}), ValidationError,
     ("extra['a']['b'][0]", "use a str, number")),
    ("extra_int_key", lambda m: T2V("x", extra={1: 2}), ValidationError, ("extra key 1", "non-empty str")),
    ("extra_empty_key", lambda m: T2V("x", extra={"": 2}), ValidationError, ("extra key ''", "non-empty str")),
    ("extra_nested_int_key", lambda m: T2V("x", extra={"a": {1: 2}}), ValidationError,
     ("extra['a'] has the key 1", "JSON keys must be str")),
    ("extra_surrogate_value", lambda m: T2V("x", extra={"note": "a\ud800"}), ValidationError,
     ("extra['note']", "remove it")),
    ("extra_cycle", lambda m: T2V("x", extra={"loop": _cycle()}), ValidationError,
     ("extra['loop']", "nested more than", "give plain JSON")),
    ("extra_not_a_dict", lambda m: T2V("x", extra="watermark"), ValidationError,
     ("extra must be a dict", "got str")),
    ("extra_audio_switch_with_soundtrack", lambda m: T2V("x", audio=AURL, extra={"audio": False}), ValidationError,
     ("extra['audio']", "audio= already gives a soundtrack", "drop it from extra")),
    ("extra_function", lambda m: I2V("x", image=URL, extra={"cb": print}), ValidationError,
     ("extra['cb']", "cannot be sent as JSON")),
]

MEDIA: list[Case] = [
    # images
    ("image_text_file", lambda m: I2V("x", image=m["notes"]), ValidationError,
     ("notes.txt is not a readable image", "use JPEG, PNG, BMP or WEBP")),
    ("image_wav_bytes", lambda m: I2V("x", image=m["wav_bytes"]), ValidationError,
     ("I2V.image", "use JPEG, PNG, BMP or WEBP")),
    ("image_mp4_path", lambda m: FLF2V("x", first=m["clip3"], last=URL), ValidationError,
     ("FLF2V.first", "clip3.mp4 is not a readable image")),
    ("image_tiny", lambda m: I2V("x", image=m["tiny"]), ValidationError, ("100×100", "240–8000 px")),
    ("image_thin", lambda m: Ref2V("x", images=[m["thin"]]), ValidationError,
     ("Ref2V.images[0]", "between 1:8 and 8:1")),
    ("image_alpha", lambda m: Grid9("x", grid=m["alpha"]), ValidationError, ("alpha channel", "convert('RGB')")),
    ("image_empty_bytes", lambda m: Edit("x", video=VURL, images=[b""]), ValidationError,
     ("Edit.images[0]", "empty (0 bytes)")),
    ("image_missing_path", lambda m: I2V("x", image=m["missing"]), ValidationError,
     ("does-not-exist.png", "give an existing local path")),
    ("image_directory", lambda m: I2V("x", image=m["dir"]), ValidationError, ("a_directory", "is a directory")),
    ("image_empty_str", lambda m: I2V("x", image=""), ValidationError, ("I2V.image", "the path is empty", "https://")),
    ("image_nul_path", lambda m: I2V("x", image="a\0b.png"), ValidationError, ("I2V.image", "NUL character")),
    ("image_int", lambda m: I2V("x", image=7), ValidationError, ("a int is not a image input", "https:// URL")),
    ("image_ndarray", lambda m: I2V("x", image=np.zeros((300, 300, 3), np.uint8)), ValidationError,
     ("a ndarray is not a image input", "PIL.Image.fromarray")),
    ("grid_tile_text", lambda m: Grid9("x", images=[m["red"]] * 8 + [m["notes"]]), ValidationError,
     ("Grid9.images[8]", "use JPEG, PNG")),
    # videos
    ("video_png_bytes", lambda m: Edit("x", video=m["png_bytes"]), ValidationError,
     ("Edit.video", "a PNG image, not a video", "MP4 or MOV")),
    ("video_wav_bytes", lambda m: Ref2V("x", videos=[m["wav_bytes"]]), ValidationError,
     ("Ref2V.videos[0]", "MP4 or MOV")),
    ("video_text_path", lambda m: Edit("x", video=m["notes"]), ValidationError, ("notes.txt", "MP4 or MOV")),
    ("video_too_short_edit", lambda m: Edit("x", video=m["clip1"]), ValidationError,
     ("Edit.video is 1.0 s long", "trim it first")),
    ("video_too_long_edit", lambda m: Edit("x", video=m["clip12"]), ValidationError,
     ("Edit.video is 12.0 s long", "2–10 s")),
    ("video_jpeg_bytes", lambda m: Ref2V("x", videos=[m["jpg_bytes"]]), ValidationError,
     ("a JPEG image, not a video", "MP4 or MOV")),
    ("video_empty", lambda m: Edit("x", video=b""), ValidationError, ("Edit.video", "the video is empty")),
    # audio
    ("audio_png_bytes_i2v", lambda m: I2V("x", image=URL, audio=m["png_bytes"]), ValidationError,
     ("I2V.audio", "not an audio file (it is a PNG image)", "use WAV, MP3")),
    ("audio_png_path_t2v", lambda m: T2V("x", audio=m["red"]), ValidationError,
     ("T2V.audio", "red.png is not an audio file", "WAV, MP3")),
    ("audio_jpeg_flf2v", lambda m: FLF2V("x", first=URL, last=URL, audio=m["jpg_bytes"]), ValidationError,
     ("FLF2V.audio", "a JPEG image", "M4A/AAC, OGG or FLAC")),
    ("audio_mp4_video", lambda m: I2V("x", image=URL, audio=m["clip3"]), ValidationError,
     ("clip3.mp4 is a video", "soundtrack alone")),
    ("audio_text", lambda m: T2V("x", audio=m["notes"]), ValidationError, ("notes.txt is not an audio file", "WAV")),
    ("audio_empty", lambda m: T2V("x", audio=b""), ValidationError, ("T2V.audio", "the audio is empty (0 bytes)")),
    ("audio_fake_wav_header", lambda m: T2V("x", audio=b"RIFF\0\0\0\0WAVEjunkjunkjunk"), ValidationError,
     ("not a readable audio file", "use WAV, MP3")),
    ("audio_16mb", lambda m: T2V("x", audio=b"RIFF\0\0\0\0WAVE" + bytes(16 * 2**20)), ValidationError,
     ("audio is 16.0 MB", "≤ 15 MB")),
    ("audio_wrong_media_kind", lambda m: T2V("x", audio=I2V("x", image=URL).image), ValidationError,
     ("T2V.audio", "got a image, expected a audio")),
    ("audio_url_png", lambda m: I2V("x", image=URL, audio=URL), ValidationError,
     ("I2V.audio", "names an image file (.png)", "give an audio here")),
    ("audio_url_mp4", lambda m: T2V("x", audio=VURL), ValidationError, ("names a video file (.mp4)", "audio here")),
    ("audio_dict", lambda m: T2V("x", audio={"url": AURL}), ValidationError, ("a dict is not a audio input", "https://")),
]

URLS: list[Case] = [
    ("url_no_host", lambda m: I2V("x", image="https://"), ValidationError, ("'https://' has no host", "full URL")),
    ("url_triple_slash", lambda m: I2V("x", image="https:///frame.png"), ValidationError,
     ("has no host", "https://example.com")),
    ("url_space", lambda m: I2V("x", image="https://cdn.example.com/a b.png"), ValidationError,
     ("contains a space", "%20")),
    ("url_tab", lambda m: FLF2V("x", first=URL, last="https://cdn.example.com/a\tb.png"), ValidationError,
     ("FLF2V.last", "control character", "percent-encode")),
    ("url_newline", lambda m: Ref2V("x", videos=["https://cdn.example.com/v.mp4\n"]), ValidationError,
     ("Ref2V.videos[0]", "control character")),
    ("url_http_remote", lambda m: I2V("x", image="http://cdn.example.com/a.png"), ValidationError,
     ("http://cdn.example.com/a.png", "use an https:// URL")),
    ("url_ftp", lambda m: I2V("x", image="ftp://cdn.example.com/a.png"), ValidationError,
     ("unsupported URL scheme", "use https://")),
    ("url_file_scheme", lambda m: Edit("x", video="file:///tmp/clip.mp4"), ValidationError,
     ("file:///tmp/clip.mp4", "use https://")),
    ("url_bad_port", lambda m: I2V("x", image="https://cdn.example.com:99999/a.png"), ValidationError,
     ("is not a valid URL", "check the host and port")),
    ("url_bad_ipv6", lambda m: I2V("x", image="https://[::1/a.png"), ValidationError,
     ("is not a valid URL", "check the host")),
    ("url_oss_no_bucket", lambda m: I2V("x", image="oss://"), ValidationError, ("'oss://' has no host", "full URL")),
    ("url_image_is_video", lambda m: I2V("x", image=VURL), ValidationError,
     ("names a video file (.mp4)", "give an image here")),
    ("url_video_is_image", lambda m: Edit("x", video=URL), ValidationError,
     ("names an image file (.png)", "give a video here")),
    ("url_grid_is_audio", lambda m: Grid9("x", grid=AURL), ValidationError,
     ("Grid9.grid", "names an audio file (.mp3)")),
    # data: URIs
    ("data_png_label_jpeg_bytes", lambda m: I2V("x", image=data_uri("image/png", m["jpg_bytes"])), ValidationError,
     ("says image/png but its bytes are image/jpeg", "data:image/jpeg;base64")),
    ("data_mp4_label_png_bytes", lambda m: Edit("x", video=data_uri("video/mp4", m["png_bytes"])), ValidationError,
     ("Edit.video", "a PNG image, not a video")),
    ("data_jpeg_label_png_bytes", lambda m: FLF2V("x", first=URL, last=data_uri("image/jpeg", m["png_bytes"])),
     ValidationError, ("says image/jpeg but its bytes are image/png", "fix the label")),
    ("data_wav_label_mp3_bytes", lambda m: T2V("x", audio=data_uri("audio/wav", m["mp3_bytes"])), ValidationError,
     ("says audio/wav but its bytes are audio/mpeg", "data:audio/mpeg")),
    ("data_audio_png_bytes", lambda m: T2V("x", audio=data_uri("audio/mpeg", m["png_bytes"])), ValidationError,
     ("not an audio file", "use WAV")),
    ("data_not_base64", lambda m: I2V("x", image="data:image/png,abc"), ValidationError,
     ("must be base64", "data:<mime>;base64")),
    ("data_bad_base64", lambda m: I2V("x", image="data:image/png;base64,!!!!"), ValidationError,
     ("base64 payload does not decode", "data: URI")),
    ("data_no_mime", lambda m: I2V("x", image=data_uri("", m["png_bytes"])), ValidationError,
     ("names no MIME type", "data:image/png;base64")),
    ("data_text_for_image", lambda m: I2V("x", image=data_uri("text/plain", m["png_bytes"])), ValidationError,
     ("says text/plain, which is not an image", "give an image here")),
    ("data_video_for_image", lambda m: I2V("x", image=data_uri("video/mp4", m["mp4_bytes"])), ValidationError,
     ("says video/mp4, which is not an image", "image here")),
    ("data_image_for_audio", lambda m: I2V("x", image=URL, audio=data_uri("image/png", m["png_bytes"])),
     ValidationError, ("which is not an audio", "give an audio here")),
    ("data_empty_payload", lambda m: I2V("x", image="data:image/png;base64,"), ValidationError,
     ("the image is empty", "0 bytes")),
]


def _bad_override(**kw: Any) -> Callable[[Any], Any]:
    args = {"host": "dashscope", "model": "wan2.7-t2v", "resolution": "720P", "amount": 0.1} | kw
    return lambda m: default_prices().override(**args)


SETTINGS: list[Case] = [
    # Limits
    ("limits_jobs_zero", lambda m: Limits(5, 20, 0), ConfigError, ("concurrent_jobs=0", "integer > 0")),
    ("limits_jobs_negative", lambda m: Limits(5, 20, -1), ConfigError, ("concurrent_jobs=-1", "integer > 0")),
    ("limits_jobs_fraction", lambda m: Limits(5, 20, 1.5), ConfigError, ("concurrent_jobs=1.5", "an integer")),
    ("limits_jobs_nan", lambda m: Limits(5, 20, math.nan), ConfigError, ("concurrent_jobs=nan", "not NaN")),
    ("limits_jobs_str", lambda m: Limits(5, 20, "5"), ConfigError, ("concurrent_jobs='5'", "without quotes")),
    ("limits_jobs_bool", lambda m: Limits(5, 20, True), ConfigError, ("concurrent_jobs=True", "not a bool")),
    ("limits_jobs_none", lambda m: Limits(5, 20, None), ConfigError, ("concurrent_jobs=None", "not None")),
    ("limits_submit_zero", lambda m: Limits(0, 20, 5), ConfigError, ("submits_per_s=0", "number > 0")),
    ("limits_submit_negative", lambda m: Limits(-1.0, 20, 5), ConfigError, ("submits_per_s=-1.0", "> 0")),
    ("limits_submit_nan", lambda m: Limits(math.nan, 20, 5), ConfigError, ("submits_per_s=nan", "not NaN")),
    ("limits_submit_np_inf", lambda m: Limits(np.float64("inf"), 20, 5), ConfigError,
     ("submits_per_s=", "not NaN or infinity")),
    ("limits_query_zero", lambda m: Limits(5, 0, 5), ConfigError, ("queries_per_s=0", "Limits.for_host")),
    ("limits_query_np_nan", lambda m: Limits(5, np.float32("nan"), 5), ConfigError, ("queries_per_s=", "not NaN")),
    ("limits_query_str", lambda m: Limits(5, "fast", 5), ConfigError, ("queries_per_s='fast'", "not a str")),
    # PriceTable.override
    ("price_host_typo", _bad_override(host="dashscop"), CatalogError, ("host='dashscop'", "did you mean 'dashscope'")),
    ("price_host_sim", _bad_override(host="sim"), CatalogError, ("host='sim'", "use 'dashscope' or 'wavespeed'")),
    ("price_res_lowercase", _bad_override(resolution="720p"), ValidationError,
     ("resolution='720p'", "did you mean '720P'")),
    ("price_res_4k", _bad_override(resolution="4K"), ValidationError, ("resolution='4K'", "use one of 480P")),
    ("price_amount_negative", _bad_override(amount=-0.1), ValidationError, ("amount=-0.1", "≥ 0")),
    ("price_amount_nan", _bad_override(amount=math.nan), ValidationError, ("amount=nan", "not NaN")),
    ("price_amount_np_inf", _bad_override(amount=np.float64("inf")), ValidationError, ("amount=", "not NaN or inf")),
    ("price_amount_str", _bad_override(amount="0.1"), ValidationError, ("amount='0.1'", "without quotes")),
    ("price_amount_none", _bad_override(amount=None), ValidationError, ("amount=None", "number ≥ 0")),
    ("price_currency_lower", _bad_override(currency="usd"), ValidationError, ("currency='usd'", "did you mean 'USD'")),
    ("price_currency_word", _bad_override(currency="dollars"), ValidationError,
     ("currency='dollars'", "three-letter ISO code")),
    ("price_per_minute", _bad_override(per="minute"), ValidationError, ("per='minute'", "use 'second'")),
    ("price_per_clip_zero", _bad_override(per="clip:0"), ValidationError, ("per='clip:0'", "'clip:N'")),
    ("price_model_typo", _bad_override(model="wan2.7-t2x"), CatalogError,
     ("model='wan2.7-t2x'", "did you mean 'wan2.7-t2v'")),
    ("price_model_prefix_none", _bad_override(model="wan3.0-*"), CatalogError,
     ("model='wan3.0-*' matches no dashscope model ID", "'wan2.7-*'")),
    ("price_model_other_host", _bad_override(model="alibaba/wan-2.7/text-to-video"), CatalogError,
     ("is a wavespeed model ID", "use model='wan2.7-t2v'")),
    ("price_region_on_wavespeed", _bad_override(host="wavespeed", model="alibaba/wan-2.7/text-to-video",
                                                region="singapore"), ValidationError,
     ("region='singapore'", "leave region=''")),
    ("price_region_typo", _bad_override(region="Singapore"), ValidationError,
     ("region='Singapore'", "did you mean 'singapore'")),
    # Budget
    ("budget_nan", lambda m: Budget(math.nan), ValidationError, ("limit=nan", "not NaN")),
    ("budget_negative", lambda m: Budget(-1), ValidationError, ("limit=-1", "≥ 0")),
    ("budget_str", lambda m: Budget("5"), ValidationError, ("limit='5'", "write 5 without quotes")),
    ("budget_np_inf", lambda m: Budget(np.float64("inf")), ValidationError, ("limit=", "or None for no limit")),
    ("budget_currency_lower", lambda m: Budget(5, currency="usd"), ValidationError,
     ("currency='usd'", "three-letter code such as 'USD'")),
    ("budget_spent_negative", lambda m: Budget(5, spent=-2), ValidationError, ("spent=-2", "≥ 0")),
    # retry and poll policies
    ("retry_attempts_zero", lambda m: RetryPolicy(max_attempts=0), ConfigError, ("max_attempts=0", "integer ≥ 1")),
    ("retry_base_nan", lambda m: RetryPolicy(base_s=math.nan), ConfigError, ("base_s=nan", "not NaN")),
    ("retry_time_scale_zero", lambda m: RetryPolicy(time_scale=0), ConfigError, ("time_scale=0", "number > 0")),
    ("poll_fixed_zero", lambda m: FixedInterval(0), ConfigError, ("seconds=0", "number > 0")),
    ("poll_eta_gap_negative", lambda m: EtaPoll(gap=-1), ConfigError, ("gap=-1", "number > 0")),
    ("poll_cadence_empty", lambda m: HostCadence(()), ConfigError, ("schedule=()", "non-empty list of seconds")),
    ("poll_cadence_zero_step", lambda m: HostCadence((1, 0)), ConfigError, ("schedule[1]=0", "number > 0")),
]


PURE = REQUESTS + EXTRA + MEDIA + URLS + SETTINGS


@pytest.mark.parametrize("call, exc, needles", [pytest.param(c, e, n, id=i) for i, c, e, n in PURE])
def test_bad_input_is_refused_with_a_fix(call, exc, needles, media):
    with pytest.raises(exc) as info:
        call(media)
    _assert_message(info.value, needles)


def _assert_message(err: BaseException, needles: tuple[str, ...]) -> None:
    assert isinstance(err, (ValidationError, ConfigError)), type(err)
    message = str(err)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert KEY not in message


# --------------------------------------------------------------------------------------------------
# bad inputs that reach a Lab: nothing sent, no row written
# --------------------------------------------------------------------------------------------------

class Ctx:
    """What a Lab case may use: the lab, a sweep on it, a finished run to rerun."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self._sweep = None
        self.run_id = ""

    @property
    def sweep(self):
        if self._sweep is None:
            self._sweep = self.lab.sweep(BASE, seed=[1, 2])
        return self._sweep


LAB_CALLS: list[Case] = [
    # lab.sweep
    ("sweep_axis_colour", lambda c: c.lab.sweep(T2V("x"), colour=[1]), ValidationError,
     ("T2V has no field 'colour'", "valid fields: prompt")),
    ("sweep_axis_typo_seeds", lambda c: c.lab.sweep(BASE, seeds=[1, 2]), ValidationError,
     ("no field 'seeds'", "did you mean 'seed'")),
    ("sweep_axis_mode", lambda c: c.lab.sweep(BASE, mode=["i2v"]), ValidationError, ("no field 'mode'", "valid fields")),
    ("sweep_axis_image_on_t2v", lambda c: c.lab.sweep(BASE, image=[URL]), ValidationError,
     ("T2V has no field 'image'", "valid fields")),
    ("sweep_axis_empty", lambda c: c.lab.sweep(BASE, seed=[]), ValidationError, ("sweep axis seed=[]", "non-empty list")),
    ("sweep_axis_str", lambda c: c.lab.sweep(BASE, resolution="720P"), ValidationError,
     ("sweep axis resolution='720P'", "non-empty list", "resolution=['720P']")),
    ("sweep_axis_scalar", lambda c: c.lab.sweep(BASE, seed=3), ValidationError, ("sweep axis seed=3", "non-empty list")),
    ("sweep_axis_dict", lambda c: c.lab.sweep(BASE, seed={1: 2}), ValidationError, ("sweep axis seed=", "list of values")),
    ("sweep_base_not_request", lambda c: c.lab.sweep({"prompt": "x"}, seed=[1]), ValidationError,
     ("the base must be a wanlab request", "got dict")),
    ("sweep_study_int", lambda c: c.lab.sweep(BASE, study=5, seed=[1]), ValidationError, ("study must be a str", "int")),
    ("sweep_reuse_str", lambda c: c.lab.sweep(BASE, reuse="no", seed=[1]), ValidationError,
     ("reuse='no'", "True or False")),
    ("sweep_bad_cell_np_seed", lambda c: c.lab.sweep(BASE, seed=np.array([1, -1])), ValidationError,
     ("sweep cell", "seed=", "or None for a random seed")),
    ("sweep_bad_cell_extra", lambda c: c.lab.sweep(BASE, extra=[{}, {"seed": 3}]), ValidationError,
     ("sweep cell", "use the field seed=")),
    ("sweep_bad_cell_duration", lambda c: c.lab.sweep(BASE, duration=[5, 20]), ValidationError,
     ("duration=20", "2–15 s")),
    # sweep.run
    ("run_budget_negative", lambda c: c.sweep.run(budget=-1, progress=False), ValidationError,
     ("budget=-1", "≥ 0")),
    ("run_budget_nan", lambda c: c.sweep.run(budget=math.nan, progress=False), ValidationError,
     ("budget=nan", "not NaN")),
    ("run_budget_str", lambda c: c.sweep.run(budget="5", progress=False), ValidationError,
     ("budget='5'", "without quotes")),
    ("run_budget_np_inf", lambda c: c.sweep.run(budget=np.float64("inf"), progress=False), ValidationError,
     ("budget=", "or None for no budget")),
    ("run_concurrency_negative", lambda c: c.sweep.run(max_concurrency=-1, progress=False), ValidationError,
     ("max_concurrency=-1", "integer ≥ 1")),
    ("run_concurrency_zero", lambda c: c.sweep.run(max_concurrency=0, progress=False), ValidationError,
     ("max_concurrency=0", "or None for the host's limit")),
    ("run_concurrency_fraction", lambda c: c.sweep.run(max_concurrency=1.5, progress=False), ValidationError,
     ("max_concurrency=1.5", "an integer")),
    ("run_concurrency_str", lambda c: c.sweep.run(max_concurrency="2", progress=False), ValidationError,
     ("max_concurrency='2'", "without quotes")),
    ("run_concurrency_bool", lambda c: c.sweep.run(max_concurrency=True, progress=False), ValidationError,
     ("max_concurrency=True", "not a bool")),
    ("run_timeout_zero", lambda c: c.sweep.run(timeout=0, progress=False), ValidationError, ("timeout=0", "> 0")),
    ("run_timeout_nan", lambda c: c.sweep.run(timeout=math.nan, progress=False), ValidationError,
     ("timeout=nan", "not NaN")),
    ("run_timeout_negative", lambda c: c.sweep.run(timeout=-5, progress=False), ValidationError,
     ("timeout=-5", "or None to wait")),
    ("run_progress_str", lambda c: c.sweep.run(progress="yes"), ValidationError, ("progress='yes'", "True or False")),
    # lab.rerun (c.run_id is a finished run)
    ("rerun_bogus", lambda c: c.lab.rerun(c.run_id, bogus=1), ValidationError,
     ("has no field 'bogus'", "valid fields: prompt")),
    ("rerun_typo_seeds", lambda c: c.lab.rerun(c.run_id, seeds=3), ValidationError,
     ("no field 'seeds'", "did you mean 'seed'")),
    ("rerun_unknown_id", lambda c: c.lab.rerun("no-such-run"), ValidationError,
     ("no run 'no-such-run'", "pick a run_id from lab.log.frame()")),
    ("rerun_id_int", lambda c: c.lab.rerun(5), ValidationError, ("run_id=5", "run id string")),
    ("rerun_id_empty", lambda c: c.lab.rerun(""), ValidationError, ("run_id=''", "run id string")),
    ("rerun_seed_negative", lambda c: c.lab.rerun(c.run_id, seed=-1), ValidationError,
     ("seed=-1", "or None for a random seed")),
    ("rerun_resolution_lower", lambda c: c.lab.rerun(c.run_id, resolution="1080p"), ValidationError,
     ("resolution='1080p'", "did you mean '1080P'")),
    ("rerun_extra_duration", lambda c: c.lab.rerun(c.run_id, extra={"duration": 100}), ValidationError,
     ("extra['duration']", "use the field duration=")),
    ("rerun_prompt_surrogate", lambda c: c.lab.rerun(c.run_id, prompt="\ud800"), ValidationError,
     ("prompt", "remove it")),
    # what a submit files the run under
    ("submit_tags_object", lambda c: c.lab.submit(T2V("x", seed=1), tags={"x": object()}), ValidationError,
     ("tags['x']", "use a str, number")),
    ("submit_study_int", lambda c: c.lab.submit(T2V("x", seed=1), study=5), ValidationError,
     ("study", "must be a str")),
    # requests the Lab's host cannot run
    ("submit_wavespeed_id_on_dashscope", lambda c: c.lab.submit(T2V("x", model="alibaba/wan-2.7/text-to-video")),
     CatalogError, ("is a wavespeed model ID", "use model='wan2.7-t2v'")),
    ("estimate_480p_on_default", lambda c: c.lab.estimate(T2V("x", model="wan2.5-t2v-preview", duration=7)),
     ValidationError, ("duration=7", "accepts 5 or 10 s")),
]

NEEDS_RUN = {i for i, *_ in LAB_CALLS if i.startswith("rerun_")}


def _host_traffic(sim) -> dict:
    s = sim.stats()
    return {"submits": s["submits"], "requests": s["requests"]}


@pytest.mark.parametrize("case_id, call, exc, needles", [pytest.param(i, c, e, n, id=i) for i, c, e, n in LAB_CALLS])
def test_bad_lab_call_sends_nothing_and_logs_nothing(case_id, call, exc, needles, make_lab, sim):
    ctx = Ctx(make_lab(resume=False))
    if case_id in NEEDS_RUN:
        job = ctx.lab.run_sync(BASE, timeout=60)
        ctx.run_id = job.id
    traffic, rows = _host_traffic(sim), len(ctx.lab.log)
    with pytest.raises(exc) as info:
        call(ctx)
    _assert_message(info.value, needles)
    assert _host_traffic(sim) == traffic, "a refused call reached the host"
    assert len(ctx.lab.log) == rows, "a refused call wrote a row"
    if case_id not in NEEDS_RUN:
        assert traffic["submits"] == 0 and rows == 0


# -- Lab(...) itself: refused before the sim starts or any file is made ----------------------------

def _lab(**kw: Any) -> Callable[[Any, Path], Lab]:
    """Lab(provider='sim', ...) by default; `url=True` points it at the test sim instead."""
    def make(sim, home: Path) -> Lab:
        args = {"provider": "sim", "quiet": True, "home": home, "time_scale": 0.002} | kw
        if args.pop("url", False):
            args |= {"provider": "dashscope", "api_key": KEY, "base_url": sim.dashscope_url()}
        return Lab(**args)
    return make


LAB_ARGS: list[Case] = [
    ("lab_budget_str", _lab(budget="5"), ConfigError, ("budget='5'", "write 5 without quotes")),
    ("lab_budget_nan", _lab(budget=math.nan), ConfigError, ("budget=nan", "not NaN")),
    ("lab_budget_negative", _lab(budget=-1), ConfigError, ("budget=-1", "≥ 0")),
    ("lab_budget_np_inf", _lab(budget=np.float64("inf")), ConfigError, ("budget=", "or None for no budget")),
    ("lab_budget_list", _lab(budget=[5]), ConfigError, ("budget=[5]", "not a list")),
    ("lab_home_proc", _lab(home="/proc/x"), ConfigError, ("home='/proc/x'", "choose a writable folder")),
    ("lab_home_under_file", _lab(home="FILE/sub"), ConfigError, ("is a file, not a folder", "choose a writable folder")),
    ("lab_home_int", _lab(home=5), ConfigError, ("home must be a folder path", "got int")),
    ("lab_home_nul", _lab(home="a\0b"), ConfigError, ("home=", "choose a writable folder")),
    ("lab_media_dir_proc", _lab(media_dir="/proc/y"), ConfigError, ("media_dir='/proc/y'", "writable folder")),
    ("lab_log_is_folder", _lab(log="DIR"), ConfigError, ("is a folder", "give a file path such as")),
    ("lab_base_url_ftp", _lab(base_url="ftp://example.com/api"), ConfigError,
     ("base_url='ftp://example.com/api'", "use a https:// or http:// URL")),
    ("lab_base_url_no_host", _lab(base_url="https://"), ConfigError, ("has no host", "https://example.com")),
    ("lab_base_url_space", _lab(base_url="http://127.0.0.1: 80/api"), ConfigError, ("contains a space", "%20")),
    ("lab_base_url_no_scheme", _lab(base_url="dashscope-intl.aliyuncs.com/api/v1"), ConfigError,
     ("unsupported scheme", "https://")),
    ("lab_base_url_int", _lab(base_url=8000), ConfigError, ("base_url must be a", "got int")),
    ("lab_submit_timeout_zero", _lab(submit_timeout=0), ConfigError, ("submit_timeout=0", "> 0 seconds")),
    ("lab_submit_timeout_negative", _lab(submit_timeout=-1), ConfigError, ("submit_timeout=-1", "default 60")),
    ("lab_submit_timeout_nan", _lab(submit_timeout=math.nan), ConfigError, ("submit_timeout=nan", "not NaN")),
    ("lab_submit_timeout_str", _lab(submit_timeout="60"), ConfigError, ("submit_timeout='60'", "without quotes")),
    ("lab_time_scale_zero", _lab(time_scale=0), ConfigError, ("time_scale=0", "1.0 is real time")),
    ("lab_time_scale_negative", _lab(time_scale=-0.5), ConfigError, ("time_scale=-0.5", "> 0")),
    ("lab_time_scale_nan", _lab(time_scale=math.nan), ConfigError, ("time_scale=nan", "not NaN")),
    ("lab_limits_tuple", _lab(limits=(5, 20, 5)), ConfigError, ("limits must be a wanlab.Limits", "got tuple")),
    ("lab_retry_dict", _lab(retry={"max_attempts": 3}), ConfigError, ("retry must be a wanlab.RetryPolicy", "dict")),
    ("lab_poll_number", _lab(poll=5), ConfigError, ("poll must be a poll policy", "EtaPoll()")),
    ("lab_prices_dict", _lab(prices={"wan2.7-t2v": 0.1}), ConfigError, ("prices must be a", "override(")),
    ("lab_region_case", _lab(region="Singapore"), ConfigError, ("region='Singapore'", "did you mean 'singapore'")),
    ("lab_region_unknown", _lab(region="mars"), ConfigError, ("region='mars'", "use one of singapore")),
    ("lab_protocol_unknown", _lab(protocol="grpc"), ConfigError, ("protocol='grpc'", "'dashscope' or 'wavespeed'")),
    ("lab_provider_int", _lab(provider=5), ConfigError, ("provider=5", "'dashscope', 'wavespeed' or 'sim'")),
    ("lab_resume_str", _lab(resume="yes"), ConfigError, ("resume='yes'", "True or False")),
    ("lab_quiet_none", _lab(quiet=None), ConfigError, ("quiet=None", "True or False")),
    ("lab_sim_options_list", _lab(sim_options=["seed", 1]), ConfigError, ("sim_options must be a dict", "list")),
    ("lab_transport_object", _lab(transport=object()), ConfigError, ("transport must be an httpx", "object")),
    ("lab_url_budget_nan", _lab(url=True, budget=math.nan), ConfigError, ("budget=nan", "not NaN")),
    ("lab_url_submit_timeout_inf", _lab(url=True, submit_timeout=math.inf), ConfigError,
     ("submit_timeout=inf", "not NaN or infinity")),
]


def _sim_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("wanlab-sim")}


@pytest.mark.parametrize("make, exc, needles", [pytest.param(c, e, n, id=i) for i, c, e, n in LAB_ARGS])
def test_bad_lab_arguments_leak_nothing(make, exc, needles, sim, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "FILE").write_text("not a folder")
    (scratch / "DIR").mkdir()
    monkeypatch.chdir(scratch)                       # relative paths in the table resolve here
    home = tmp_path / "lab-home"
    threads, traffic = _sim_threads(), _host_traffic(sim)
    with pytest.raises(exc) as info:
        make(sim, home)
    _assert_message(info.value, needles)
    assert _sim_threads() == threads, "a refused Lab started a simulator"
    assert not home.exists() and not (tmp_path / "wanlab-home").exists(), "a refused Lab created files"
    assert sorted(p.name for p in scratch.iterdir()) == ["DIR", "FILE"]
    assert _host_traffic(sim) == traffic


def test_the_table_is_large_distinct_and_says_what_to_change():
    ids = [i for i, *_ in PURE + LAB_CALLS + LAB_ARGS]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(ids) >= 150
    assert all(len(needles) >= 2 for *_, needles in PURE + LAB_CALLS + LAB_ARGS)


# --------------------------------------------------------------------------------------------------
# good inputs: accepted, numpy normalised to Python types
# --------------------------------------------------------------------------------------------------

def _is_py_int(x: Any) -> bool:
    return type(x) is int


GOOD: list[tuple[str, Callable[[dict], Any], Callable[[Any], bool]]] = [
    ("np_int64_seed", lambda m: T2V("x", seed=np.int64(3)), lambda r: r.seed == 3 and _is_py_int(r.seed)),
    ("np_uint32_seed_max", lambda m: T2V("x", seed=np.uint32(SEED_MAX)), lambda r: _is_py_int(r.seed)),
    ("np_int32_duration", lambda m: T2V("x", duration=np.int32(5)), lambda r: r.duration == 5 and _is_py_int(r.duration)),
    ("np_float_whole_duration", lambda m: I2V("x", image=URL, duration=np.float64(4.0)),
     lambda r: r.duration == 4 and _is_py_int(r.duration)),
    ("whole_float_seed", lambda m: T2V("x", seed=7.0), lambda r: r.seed == 7 and _is_py_int(r.seed)),
    ("np_str_prompt_and_resolution", lambda m: T2V(np.str_("a fox"), resolution=np.str_("1080P")),
     lambda r: type(r.prompt) is str and type(r.resolution) is str),
    ("edit_zero_duration", lambda m: Edit("x", video=VURL, duration=np.int8(0)), lambda r: r.duration == 0),
    ("url_percent20", lambda m: I2V("x", image="https://cdn.example.com/my%20frame.png"),
     lambda r: r.image.url.endswith("my%20frame.png")),
    ("url_query_string", lambda m: I2V("x", image="https://cdn.example.com/f.png?sig=a%2Fb&e=1"),
     lambda r: r.image.name == "f.png"),
    ("url_unicode_path", lambda m: I2V("x", image="https://cdn.example.com/图片.png"), lambda r: r.image.is_remote),
    ("url_oss", lambda m: I2V("x", image="oss://bucket/key/frame.png"), lambda r: r.image.url.startswith("oss://")),
    ("url_loopback_http", lambda m: I2V("x", image="http://127.0.0.1:9000/f.png"), lambda r: r.image.is_remote),
    ("url_no_extension", lambda m: T2V("x", audio="https://cdn.example.com/a/track"), lambda r: r.audio.is_remote),
    ("wav_bytes_audio", lambda m: I2V("x", image=URL, audio=m["wav_bytes"]),
     lambda r: r.audio.mime == "audio/wav" and r.audio.seconds == pytest.approx(1.0, abs=0.05)),
    ("wav_path_audio", lambda m: T2V("x", audio=m["wav_path"]), lambda r: r.audio.name == "track.wav"),
    ("mp3_audio", lambda m: FLF2V("x", first=URL, last=URL, audio=m["mp3_bytes"]), lambda r: r.audio.mime == "audio/mpeg"),
    ("m4a_audio", lambda m: T2V("x", audio=m["m4a_path"]), lambda r: r.audio.mime == "audio/mp4"),
    ("aac_adts_audio", lambda m: T2V("x", audio=m["aac_bytes"]), lambda r: r.audio.mime == "audio/aac"),
    ("flac_audio", lambda m: T2V("x", audio=m["flac_bytes"]), lambda r: r.audio.mime == "audio/flac"),
    ("ogg_audio", lambda m: T2V("x", audio=m["ogg_bytes"]), lambda r: r.audio.mime == "audio/ogg"),
    ("data_wav_audio", lambda m: T2V("x", audio=data_uri("audio/x-wav", m["wav_bytes"])),
     lambda r: r.audio.url.startswith("data:audio/x-wav")),
    ("data_jpg_alias", lambda m: I2V("x", image=data_uri("image/jpg", m["jpg_bytes"])), lambda r: r.image.is_remote),
    ("data_mp4_video", lambda m: Edit("x", video=data_uri("video/mp4", m["mp4_bytes"])),
     lambda r: r.video.seconds == pytest.approx(3.0, abs=0.1)),
    ("extra_np_values", lambda m: T2V("x", extra={"watermark": np.bool_(True), "n": np.int64(3),
                                                  "w": [np.float32(0.5)]}),
     lambda r: r.extra == {"watermark": True, "n": 3, "w": [0.5]} and _is_py_int(r.extra["n"])),
    ("extra_prompt_extend_01", lambda m: T2V("x", extra={"prompt_extend": 1}), lambda r: r.extra["prompt_extend"] is True),
    ("extra_unknown_nested", lambda m: T2V("x", extra={"input.extend_prompt": True, "opts": {"a": [1, "b", None]}}),
     lambda r: r.extra["opts"] == {"a": [1, "b", None]}),
    ("extra_np_0d_array", lambda m: T2V("x", extra={"k": np.array(2.5)}), lambda r: r.extra == {"k": 2.5}),
    ("extra_legacy_audio_switch", lambda m: T2V("x", model="wan2.6-t2v", extra={"audio": False, "shot_type": "multi"}),
     lambda r: r.extra == {"audio": False, "shot_type": "multi"}),
    ("replace_np_seed", lambda m: BASE.replace(seed=np.int64(9)), lambda r: r.seed == 9 and _is_py_int(r.seed)),
    ("limits_numpy", lambda m: Limits(np.float64(5), np.int64(20), np.int64(3)),
     lambda x: x == Limits(5.0, 20.0, 3) and _is_py_int(x.concurrent_jobs) and type(x.submits_per_s) is float),
    ("limits_whole_float_jobs", lambda m: Limits(5, 20, 2.0), lambda x: _is_py_int(x.concurrent_jobs)),
    ("price_override_numpy", lambda m: default_prices().override("dashscope", "wan2.7-*", "720P", np.float64(0.2)),
     lambda t: type(t.rows[-1].amount) is float),
    ("price_override_clip", lambda m: default_prices().override("wavespeed", "alibaba/wan-2.7/reference-to-video",
                                                                "720P", 0.8, per="clip:5"),
     lambda t: t.rows[-1].per == "clip:5"),
    ("budget_numpy", lambda m: Budget(np.float64(2.5)), lambda b: b.limit == 2.5 and type(b.limit) is float),
    ("budget_zero", lambda m: Budget(0), lambda b: b.limit == 0.0),
    ("retry_numpy", lambda m: RetryPolicy(max_attempts=np.int64(3), base_s=np.float32(0.5)),
     lambda p: _is_py_int(p.max_attempts) and type(p.base_s) is float),
    ("eta_poll_numpy", lambda m: EtaPoll(expected=np.float64(30), lead_in=np.int64(2)),
     lambda p: _is_py_int(p.lead_in) and p.expected == 30.0),
]


@pytest.mark.parametrize("make, ok", [pytest.param(f, ok, id=i) for i, f, ok in GOOD])
def test_good_input_is_accepted_and_normalised(make, ok, media):
    assert ok(make(media))


def test_numpy_numbers_run_end_to_end(make_lab, sim):
    """A Lab, a sweep and a rerun driven by numpy numbers: accepted, logged as plain JSON numbers."""
    lab = make_lab(budget=np.float64(50), time_scale=np.float64(0.002), submit_timeout=np.int64(30),
                   limits=Limits(np.int64(50), np.int64(100), np.int64(4)))
    assert type(lab.budget.limit) is float
    sweep = lab.sweep(BASE, seed=np.arange(1, 3), duration=np.array([2]))
    sweep.run(budget=np.float64(10), max_concurrency=np.int64(2), timeout=np.float64(60), progress=False)
    df = sweep.df
    assert len(df) == 2 and (df["status"] == "SUCCEEDED").all()
    job = lab.rerun(sweep.run_ids[0], seed=np.int64(9))
    job.result(60)
    assert job.request.seed == 9 and _is_py_int(job.request.seed)
    assert sim.stats()["submits"] == 3 and len(lab.log) == 3
