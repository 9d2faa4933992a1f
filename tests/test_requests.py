"""wanlab.requests / wanlab.inputs: every mode's request built from every kind of input, and the bad
requests each caught before anything is sent, with a message that says what to change."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from media_fixtures import image_bytes, media_files, pil_image  # noqa: E402,F401  (fixture import)

from wanlab import FLF2V, I2V, T2V, CatalogError, Edit, Extend, Grid9, Ref2V, ValidationError  # noqa: E402
from wanlab.inputs import Media, to_media  # noqa: E402
from wanlab.requests import SEED_MAX  # noqa: E402

URL = "https://cdn.example.com/in/frame.png"
VURL = "https://cdn.example.com/in/clip.mp4"


def urls(n: int, kind: str = "png") -> list[str]:
    return [f"https://cdn.example.com/in/{i}.{kind}" for i in range(n)]


# --------------------------------------------------------------------------------------------------
# valid requests
# --------------------------------------------------------------------------------------------------

def test_t2v_defaults_and_fields():
    r = T2V("a red fox runs through snow", resolution="1080P", ratio="9:16", duration=15, seed=SEED_MAX,
            negative_prompt="blurry")
    assert r.mode == "t2v"
    assert (r.resolution, r.ratio, r.duration, r.seed) == ("1080P", "9:16", 15, SEED_MAX)
    assert r.media() == []
    assert r.output_seconds() == 15.0
    d = T2V("a fox")
    assert (d.resolution, d.ratio, d.duration, d.seed, d.model) == ("720P", "16:9", 5, None, None)


def test_t2v_whole_float_duration_becomes_int():
    r = T2V("a fox", duration=5.0)
    assert r.duration == 5 and isinstance(r.duration, int)


def test_t2v_with_audio_url_is_audio_url_role():
    r = T2V("a fox", audio="https://cdn.example.com/a/track.mp3")
    [(role, m)] = r.media()
    assert role == "audio_url" and m.kind == "audio" and m.url.endswith("track.mp3")


@pytest.mark.parametrize("source", ["url", "png_path", "png_str", "jpeg_path", "bytes", "pil"])
def test_i2v_from_every_source(source, media_files):
    value = {
        "url": URL,
        "png_path": media_files["red"],
        "png_str": str(media_files["red"]),
        "jpeg_path": media_files["blue"],
        "bytes": image_bytes((1, 2, 3), size=(300, 260)),
        "pil": pil_image(size=(400, 300)),
    }[source]
    r = I2V("the fox turns its head", image=value)
    [(role, m)] = r.media()
    assert role == "first_frame"
    assert isinstance(r.image, Media) and r.image.kind == "image"
    if source == "url":
        assert m.is_remote and m.url == URL and m.data is None and m.name == "frame.png"
        return
    assert not m.is_remote and m.data
    expected = {"png_path": ((320, 240), "image/png", "red.png"), "png_str": ((320, 240), "image/png", "red.png"),
                "jpeg_path": ((480, 270), "image/jpeg", "blue.jpg"), "bytes": ((300, 260), "image/png", None),
                "pil": ((400, 300), "image/png", None)}[source]
    assert (m.width, m.height) == expected[0]
    assert m.mime == expected[1]
    if expected[2]:
        assert m.name == expected[2]
    # what was validated is what gets uploaded: the bytes are the file's
    if source in ("png_path", "jpeg_path"):
        assert m.data == Path(value).read_bytes()


def test_i2v_local_file_read_once_at_creation(tmp_path):
    p = tmp_path / "frame.png"
    p.write_bytes(image_bytes((10, 20, 30)))
    r = I2V("x", image=p)
    before = r.image.data
    p.write_bytes(image_bytes((200, 200, 200), size=(500, 500)))
    assert r.image.data == before and r.image.width == 320


def test_flf2v_from_path_and_bytes(media_files):
    r = FLF2V("day turns to night", first=media_files["red"], last=image_bytes((5, 5, 5)))
    assert [role for role, _ in r.media()] == ["first_frame", "last_frame"]
    assert r.first.mime == "image/png" and r.last.width == 320


def test_flf2v_with_urls_and_audio():
    r = FLF2V("x", first=URL, last="https://cdn.example.com/in/last.jpg", audio="https://cdn.example.com/a/v.wav")
    assert [role for role, _ in r.media()] == ["first_frame", "last_frame", "driving_audio"]


def _pixel(img: Image.Image, xy) -> tuple[int, int, int]:
    return img.getpixel(xy)[:3]


def _close(a, b, tol=24) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


COLOURS = [(230, 20, 20), (20, 230, 20), (20, 20, 230), (230, 230, 20), (20, 230, 230), (230, 20, 230),
           (250, 250, 250), (10, 10, 10), (128, 64, 0)]


def test_grid9_composes_nine_images_into_one_3x3_picture(media_files, tmp_path):
    # mixed sources: PIL, bytes, local paths
    tiles = []
    for i, c in enumerate(COLOURS):
        if i % 3 == 0:
            tiles.append(pil_image(c, size=(300, 300)))
        elif i % 3 == 1:
            tiles.append(image_bytes(c, size=(320, 240), fmt="JPEG"))
        else:
            p = tmp_path / f"tile{i}.png"
            p.write_bytes(image_bytes(c, size=(260, 400)))
            tiles.append(p)
    r = Grid9("a heist in nine shots", images=tiles)
    assert len(r.images) == 9 and all(isinstance(m, Media) for m in r.images)
    [(role, grid)] = r.media()
    assert role == "reference_image"
    assert grid is r.grid_picture and grid.kind == "image" and grid.data and r.grid is None
    img = Image.open(io.BytesIO(grid.data))
    assert img.size == (grid.width, grid.height)
    w, h = img.size
    assert w == h and w >= 720
    cell = w // 3
    img = img.convert("RGB")
    for i, colour in enumerate(COLOURS):
        row, col = divmod(i, 3)
        centre = (col * cell + cell // 2, row * cell + cell // 2)
        assert _close(_pixel(img, centre), colour), (i, _pixel(img, centre), colour)
    # the composed picture itself passes the hosts' image checks
    assert to_media(grid.data, "image", "grid").width == w


def test_grid9_tiles_are_centre_cropped(tmp_path):
    # a wide 600×300 tile: blue | green (x 150–450) | blue; its square centre crop is green only,
    # while a squash-to-fit would put blue at the cell's edges
    wide = Image.new("RGB", (600, 300), (20, 20, 230))
    wide.paste((20, 230, 20), (150, 0, 450, 300))
    tiles = [wide] + [pil_image((250, 250, 250), size=(300, 300))] * 8
    r = Grid9("x", images=tiles)
    img = Image.open(io.BytesIO(r.grid_picture.data)).convert("RGB")
    cell = img.size[0] // 3
    # near the left and right edges of cell 0: still green after the crop
    assert _close(_pixel(img, (cell // 10, cell // 2)), (20, 230, 20))
    assert _close(_pixel(img, (cell - cell // 10, cell // 2)), (20, 230, 20))


def test_grid9_from_ready_made_grid(media_files):
    r = Grid9("a story", grid=media_files["blue"])
    assert r.images == () or len(r.images) == 0
    [(role, m)] = r.media()
    assert role == "reference_image" and m.name == "blue.jpg" and (m.width, m.height) == (480, 270)
    assert m.data == media_files["blue"].read_bytes()


def test_grid9_ready_made_grid_by_url():
    r = Grid9("a story", grid="https://cdn.example.com/grid.jpg")
    assert r.grid.url == "https://cdn.example.com/grid.jpg"


def test_grid9_shots_become_shot_by_shot_prompt():
    r = Grid9(grid=URL, shots=["a door opens ", "a cat walks in", "it sits"])
    assert r.wire_prompt() == "Shot 1: a door opens Shot 2: a cat walks in Shot 3: it sits"
    assert r.shots == ("a door opens ", "a cat walks in", "it sits")
    r2 = Grid9("A quiet morning.", grid=URL, shots=["sunrise", "coffee"])
    assert r2.wire_prompt() == "A quiet morning. Shot 1: sunrise Shot 2: coffee"


def test_ref2v_videos_then_images_then_first_frame(media_files):
    r = Ref2V("Video 1 dances with Image 1", videos=[media_files["clip3"]], images=[URL, image_bytes()],
              first_frame=media_files["red"], duration=10)
    roles = [role for role, _ in r.media()]
    assert roles == ["reference_video", "reference_image", "reference_image", "first_frame"]
    v = r.videos[0]
    assert v.kind == "video" and v.mime == "video/mp4" and (v.width, v.height) == (320, 240)
    assert v.seconds == pytest.approx(3.0, abs=0.15)
    assert r.has_video_reference


def test_ref2v_video_bytes_and_image_only_allows_15s(media_files):
    r = Ref2V("x", videos=[media_files["clip3"].read_bytes()])
    assert r.videos[0].seconds == pytest.approx(3.0, abs=0.15)
    r2 = Ref2V("Image 1 waves", images=[URL], duration=15)   # no reference video: 2–15 s
    assert r2.duration == 15 and not r2.has_video_reference


def test_ref2v_five_references_is_the_maximum():
    r = Ref2V("x", videos=urls(2, "mp4"), images=urls(3))
    assert len(r.media()) == 5


def test_edit_from_path_with_references(media_files):
    r = Edit("make it snow", video=media_files["clip3"], images=[URL, media_files["red"], pil_image()],
             audio_setting="origin")
    assert [role for role, _ in r.media()] == ["video", "reference_image", "reference_image", "reference_image"]
    assert r.duration == 0
    assert r.output_seconds() == pytest.approx(3.0, abs=0.15)   # 0 = the whole input video
    assert r.audio_setting == "origin" and r.ratio is None


def test_edit_from_url_and_explicit_duration():
    r = Edit("make it snow", video=VURL, duration=4, ratio="1:1")
    assert r.video.url == VURL and r.output_seconds() == 4.0 and r.ratio == "1:1"


@pytest.mark.parametrize("source", ["url", "path", "bytes", "pil"])
@pytest.mark.parametrize("mode", ["i2v", "flf2v", "grid9", "ref2v", "edit", "extend"])
def test_every_media_mode_from_every_source(mode, source, media_files):
    """Each mode's image inputs from each kind of source; videos from a URL, a path or bytes."""
    def img(i=0):
        return {"url": f"https://cdn.example.com/in/{i}.png", "path": media_files["red"],
                "bytes": image_bytes((i * 20, 0, 0)), "pil": pil_image((0, i * 20, 0))}[source]

    video = {"url": VURL, "path": media_files["clip3"], "bytes": media_files["clip3"].read_bytes(),
             "pil": media_files["clip3"]}[source]
    r = {"i2v": lambda: I2V("x", image=img()),
         "flf2v": lambda: FLF2V("x", first=img(1), last=img(2)),
         "grid9": lambda: Grid9("x", grid=img()),
         "ref2v": lambda: Ref2V("x", videos=[video], images=[img(1), img(2)]),
         "edit": lambda: Edit("x", video=video, images=[img(1)]),
         "extend": lambda: Extend("x", video=video, last=img(1))}[mode]()
    assert r.media(), mode
    for role, m in r.media():
        is_video = role in ("video", "reference_video", "first_clip")
        assert isinstance(m, Media) and m.kind == ("video" if is_video else "image")
        assert m.is_remote == (source == "url")
        if not m.is_remote:
            assert m.data and m.mime in ("image/png", "image/jpeg", "video/mp4") and m.width and m.height


def test_loopback_http_is_allowed_for_local_servers():
    assert to_media("http://127.0.0.1:8000/x.png", "image", "w").url.startswith("http://127.0.0.1")
    assert to_media("http://localhost/x.png", "image", "w").is_remote


# --------------------------------------------------------------------------------------------------
# bad requests: each refused with a message saying what to change
# --------------------------------------------------------------------------------------------------

def _unreadable(m, tmp):
    p = tmp / "locked.png"
    p.write_bytes(image_bytes())
    os.chmod(p, 0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root: chmod 000 leaves the file readable (see directory_path/not_an_image)")
        return I2V("x", image=p)
    finally:
        os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)


BAD = [
    # resolution
    ("res_480P_on_wan27", lambda m, t: T2V("x", resolution="480P"), ValidationError,
     r"480P.*wan2\.7-t2v.*720P and 1080P only \(480P is wan2\.5 and older"),
    ("res_4K", lambda m, t: T2V("x", resolution="4K"), ValidationError,
     r"resolution='4K' is not a resolution; use '720P' or '1080P'"),
    ("res_lowercase", lambda m, t: T2V("x", resolution="720p"), ValidationError, r"did you mean '720P'\?"),
    ("res_1080p_on_wan21_plus", lambda m, t: T2V("x", model="wanx2.1-t2v-plus", resolution="1080P"),
     ValidationError, r"wanx2\.1-t2v-plus \(WAN 2\.1\) renders 720P only"),
    # duration
    ("duration_20_t2v", lambda m, t: T2V("x", duration=20), ValidationError, r"duration=20: .*accepts 2–15 s"),
    ("duration_1", lambda m, t: I2V("x", image=URL, duration=1), ValidationError, r"duration=1: .*accepts 2–15 s"),
    ("duration_7_wan25", lambda m, t: T2V("x", model="wan2.5-t2v-preview", duration=7), ValidationError,
     r"wan2\.5-t2v-preview .*accepts 5 or 10 s"),
    ("duration_12_r2v_with_video", lambda m, t: Ref2V("x", videos=[VURL], duration=12), ValidationError,
     r"accepts 2–10 s when a reference video is given"),
    ("duration_11_edit", lambda m, t: Edit("x", video=VURL, duration=11), ValidationError,
     r"accepts 2–10 s \(or 0 for the whole input video\)"),
    ("duration_5_5", lambda m, t: T2V("x", duration=5.5), ValidationError, r"duration=5\.5 must be a whole number"),
    ("duration_bool", lambda m, t: T2V("x", duration=True), ValidationError, r"duration=True must be a whole number"),
    ("duration_str", lambda m, t: T2V("x", duration="5"), ValidationError, r"must be a whole number of seconds"),
    # seed
    ("seed_too_big", lambda m, t: T2V("x", seed=SEED_MAX + 1), ValidationError, r"must be an integer 0–2147483647"),
    ("seed_negative", lambda m, t: T2V("x", seed=-1), ValidationError, r"seed=-1 .*or None for a random seed"),
    ("seed_str", lambda m, t: T2V("x", seed="42"), ValidationError, r"seed='42' must be an integer"),
    ("seed_bool", lambda m, t: T2V("x", seed=True), ValidationError, r"seed=True must be an integer"),
    # grid
    ("grid_8_images", lambda m, t: Grid9("x", images=[image_bytes()] * 8), ValidationError,
     r"got 8 image\(s\); a 3×3 grid takes exactly 9"),
    ("grid_10_images", lambda m, t: Grid9("x", images=[image_bytes()] * 10), ValidationError,
     r"got 10 image\(s\); a 3×3 grid takes exactly 9 \(or pass one ready-made grid"),
    ("grid_and_images", lambda m, t: Grid9("x", images=[image_bytes()] * 9, grid=image_bytes()), ValidationError,
     r"either nine images= or one grid= picture, not both"),
    ("grid_remote_tiles", lambda m, t: Grid9("x", images=urls(9)), ValidationError,
     r"needs their pixels; give local paths, bytes or PIL"),
    ("grid_no_prompt", lambda m, t: Grid9(grid=URL), ValidationError, r"prompt is empty.*shots=\[\.\.\.\]"),
    ("grid_ten_shots", lambda m, t: Grid9(grid=URL, shots=["s"] * 10), ValidationError,
     r"shots must be up to 9 strings"),
    # references
    ("ref_six_videos", lambda m, t: Ref2V("x", videos=urls(6, "mp4")), ValidationError,
     r"got 6 references \(6 videos \+ 0 images\); wan2\.7-r2v takes 1–5 in total"),
    ("ref_four_on_wan26", lambda m, t: Ref2V("x", model="wan2.6-r2v", images=urls(4)), ValidationError,
     r"got 4 references .*wan2\.6-r2v takes 1–3 in total"),
    ("ref_none", lambda m, t: Ref2V("x"), ValidationError, r"no references; give 1–5 in total as videos="),
    # missing media
    ("flf_missing_last", lambda m, t: FLF2V("x", first=URL), ValidationError,
     r"the last frame is missing; give both first= and last="),
    ("flf_missing_first", lambda m, t: FLF2V("x", last=URL), ValidationError,
     r"the first frame is missing; give both first= and last="),
    ("i2v_no_image", lambda m, t: I2V("x"), ValidationError, r"I2V: image is missing; give the first frame"),
    ("edit_no_video", lambda m, t: Edit("x"), ValidationError, r"Edit: video is missing"),
    # local files
    ("unreadable_chmod000", _unreadable, ValidationError, r"cannot be read .*check its permissions"),
    ("directory_path", lambda m, t: I2V("x", image=m["dir"]), ValidationError, r"is a directory, not a image file"),
    ("nonexistent_path", lambda m, t: I2V("x", image=m["missing"]), ValidationError,
     r"no such file; give an existing local path or an https:// URL"),
    ("not_an_image", lambda m, t: I2V("x", image=m["notes"]), ValidationError,
     r"notes\.txt is not a readable image; use JPEG, PNG, BMP or WEBP"),
    ("tiny_image", lambda m, t: I2V("x", image=m["tiny"]), ValidationError,
     r"100×100; each side must be 240–8000 px"),
    ("aspect_1_10", lambda m, t: I2V("x", image=m["thin"]), ValidationError,
     r"240×2400; the aspect ratio must be between 1:8 and 8:1"),
    ("png_alpha", lambda m, t: FLF2V("x", first=URL, last=m["alpha"]), ValidationError,
     r"FLF2V\.last: .*alpha channel.*convert\('RGB'\)"),
    ("empty_bytes", lambda m, t: I2V("x", image=b""), ValidationError, r"the image is empty \(0 bytes\)"),
    ("video_file_as_image", lambda m, t: I2V("x", image=m["clip3"]), ValidationError,
     r"clip3\.mp4 is not a readable image"),
    ("image_file_as_video", lambda m, t: Edit("x", video=m["red"]), ValidationError, r"Edit\.video: .*MP4 or MOV"),
    ("media_of_wrong_kind", lambda m, t: I2V("x", image=Media(kind="video", url=VURL)), ValidationError,
     r"got a video, expected a image"),
    ("not_a_media_type", lambda m, t: I2V("x", image=12345), ValidationError,
     r"a int is not a image input; give an https:// URL"),
    # URLs
    ("http_url", lambda m, t: I2V("x", image="http://cdn.example.com/a.png"), ValidationError,
     r"fetch inputs over https; use an https:// URL"),
    ("ftp_url", lambda m, t: I2V("x", image="ftp://cdn.example.com/a.png"), ValidationError,
     r"unsupported URL scheme; use https://"),
    # model IDs
    ("stale_wan27_flf2v", lambda m, t: FLF2V("x", first=URL, last=URL, model="wan2.7-flf2v"), CatalogError,
     r"no wan2\.7-flf2v: first \+ last frame is 'wan2\.7-i2v'"),
    ("typo_wan21_turbo", lambda m, t: T2V("x", model="wan2.1-t2v-turbo"), CatalogError,
     r"did you mean 'wanx2\.1-t2v-turbo'"),
    ("wrong_mode_model", lambda m, t: T2V("x", model="wan2.7-i2v"), CatalogError,
     r"model='wan2\.7-i2v' does image-to-video .* not text-to-video; use model='wan2\.7-t2v'"),
    ("i2v_on_flf_only_model", lambda m, t: I2V("x", image=URL, model="wanx2.1-kf2v-plus"), CatalogError,
     r"not image-to-video; use model='wan2\.7-i2v'"),
    # prompts and parameters
    ("empty_prompt_t2v", lambda m, t: T2V(""), ValidationError, r"T2V: prompt is empty; describe what to show"),
    ("blank_prompt_ref2v", lambda m, t: Ref2V("   ", images=[URL]), ValidationError, r"prompt is empty"),
    ("empty_edit_instruction", lambda m, t: Edit("", video=VURL), ValidationError,
     r"prompt is empty; describe the edit instruction"),
    ("prompt_5001", lambda m, t: T2V("x" * 5001), ValidationError, r"prompt is 5001 characters; the hosts accept ≤ 5000"),
    ("prompt_not_str", lambda m, t: T2V(None), ValidationError, r"prompt must be a str, got NoneType"),
    ("negative_501", lambda m, t: T2V("x", negative_prompt="n" * 501), ValidationError,
     r"negative_prompt must be a str of ≤ 500 characters"),
    ("bad_ratio", lambda m, t: T2V("x", ratio="21:9"), ValidationError,
     r"ratio='21:9'; use one of 16:9, 9:16, 1:1, 4:3, 3:4"),
    ("bad_ratio_edit", lambda m, t: Edit("x", video=VURL, ratio="16/9"), ValidationError, r"ratio='16/9'; use one of"),
    # edit
    ("edit_video_1s", lambda m, t: Edit("x", video=m["clip1"]), ValidationError,
     r"Edit\.video is 1\.0 s long; the editor takes a 2–10 s clip \(trim it first\)"),
    ("edit_video_12s", lambda m, t: Edit("x", video=m["clip12"]), ValidationError, r"Edit\.video is 12\.0 s long"),
    ("edit_four_images", lambda m, t: Edit("x", video=VURL, images=urls(4)), ValidationError,
     r"got 4 reference images; wan2\.7-videoedit takes 0–3"),
    ("edit_audio_setting", lambda m, t: Edit("x", video=VURL, audio_setting="mute"), ValidationError,
     r"audio_setting='mute'; use 'auto' or 'origin'"),
    ("extra_not_dict", lambda m, t: T2V("x", extra=[("watermark", True)]), ValidationError,
     r"extra must be a dict of host parameters, got list"),
]


@pytest.mark.parametrize("factory, exc, match", [pytest.param(f, e, mt, id=i) for i, f, e, mt in BAD])
def test_bad_request_is_refused_with_a_fix(factory, exc, match, media_files, tmp_path):
    with pytest.raises(exc, match=match) as info:
        factory(media_files, tmp_path)
    # every refusal is a ValidationError (CatalogError is one), i.e. a ValueError a caller can catch
    assert isinstance(info.value, ValidationError)


def test_unreadable_file_even_as_root(media_files, monkeypatch):
    """The permission branch, reached as root too: reading the file fails with EACCES."""
    target = media_files["red"]
    real = Path.read_bytes

    def deny(self):
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(ValidationError, match=r"red\.png' cannot be read \(Permission denied\); check its permissions"):
        I2V("x", image=target)


def test_bad_request_table_is_large_and_distinct():
    ids = [i for i, *_ in BAD]
    assert len(ids) == len(set(ids)) and len(ids) >= 30


def test_catalog_error_only_for_model_problems():
    with pytest.raises(ValidationError) as info:
        T2V("x", resolution="4K")
    assert not isinstance(info.value, CatalogError)


# --------------------------------------------------------------------------------------------------
# value semantics: frozen, params, fingerprint, replace
# --------------------------------------------------------------------------------------------------

def _all_requests(media_files):
    return [
        T2V("a", seed=1),
        I2V("b", image=media_files["red"]),
        FLF2V("c", first=image_bytes(), last=pil_image()),
        Grid9("d", images=[image_bytes(c) for c in COLOURS]),
        Ref2V("e", videos=[media_files["clip3"]], images=[image_bytes()]),
        Edit("f", video=media_files["clip3"], images=[media_files["blue"]]),
    ]


def test_requests_are_frozen(media_files):
    for r in _all_requests(media_files):
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.seed = 3
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.prompt = "changed"


def _walk(value):
    yield value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(k)
            yield from _walk(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)


def test_params_never_contain_raw_bytes(media_files):
    for r in _all_requests(media_files):
        p = r.params()
        assert p["mode"] == r.mode
        for v in _walk(p):
            assert not isinstance(v, (bytes, bytearray, memoryview, Media, Image.Image)), (r.mode, type(v))
        json.dumps(p)   # JSON-able without a default= hook
        # the local inputs show up by hash, not content
        for _, m in r.media():
            if m.data is not None:
                assert m.sha256[:12] in json.dumps(p)


def test_fingerprint_is_stable_and_changes_with_seed_and_content(media_files):
    a = I2V("b", image=media_files["red"], seed=7)
    b = I2V("b", image=media_files["red"].read_bytes(), seed=7)   # same pixels, other source
    c = I2V("b", image=media_files["red"], seed=7)
    assert a.fingerprint() == c.fingerprint()
    assert len(a.fingerprint()) == 64
    assert a.fingerprint() != I2V("b", image=media_files["red"], seed=8).fingerprint()
    assert a.fingerprint() != I2V("b", image=media_files["red"]).fingerprint()
    assert a.fingerprint() != I2V("b", image=media_files["blue"], seed=7).fingerprint()
    assert T2V("x", seed=1).fingerprint() == T2V("x", seed=1).fingerprint()
    assert T2V("x", seed=1).fingerprint() != T2V("x", seed=2).fingerprint()
    assert b.fingerprint() != T2V("b", seed=7).fingerprint()


def test_replace_revalidates(media_files):
    r = T2V("x", seed=1)
    r2 = r.replace(seed=2)
    assert r2.seed == 2 and r.seed == 1
    with pytest.raises(ValidationError, match="accepts 2–15 s"):
        r.replace(duration=99)
    e = Edit("x", video=media_files["clip3"])
    assert e.replace(seed=5).video is e.video    # checked Media is reused, not re-read


# --------------------------------------------------------------------------------------------------
# regressions of bugs found (and fixed) in review
# --------------------------------------------------------------------------------------------------

def test_grid9_shots_cannot_exceed_prompt_limit():
    with pytest.raises(ValidationError, match="5000"):
        Grid9(grid=URL, shots=["x" * 600] * 9)


def test_grid9_replace_seed_from_images():
    r = Grid9("x", images=[image_bytes(c) for c in COLOURS])
    assert r.replace(seed=3).seed == 3


def test_grid9_replace_keeps_prompt():
    r = Grid9(grid=URL, shots=["a", "b"])
    assert r.replace(seed=3).prompt == r.prompt


def test_infinite_duration_is_a_validation_error():
    with pytest.raises(ValidationError, match="whole number"):
        T2V("x", duration=float("inf"))


def test_ipv6_loopback_without_port_is_allowed():
    assert to_media("http://[::1]/x.png", "image", "w").is_remote


def test_userinfo_does_not_fake_loopback():
    with pytest.raises(ValidationError, match="https"):
        to_media("http://localhost:80@evil.example/x.png", "image", "w")
