"""The media store: content-addressed downloads, PyAV probe, posters, contact sheets."""
from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops

from wanlab import T2V
from wanlab.media import MediaStore, contact_sheet

REQ = T2V("a red kite over a green hill", duration=2, seed=11)


def test_downloads_are_content_addressed_and_stored_once(make_lab):
    lab = make_lab()
    a = lab.run_sync(REQ, timeout=60)
    b = lab.run_sync(REQ, timeout=60)                      # same request and seed: same bytes
    c = lab.run_sync(REQ.replace(seed=12), timeout=60)
    root = lab.store.root
    assert a.video_path == root / a.sha256[:2] / f"{a.sha256}.mp4"
    assert b.video_path == a.video_path and c.video_path != a.video_path
    assert sorted(p.name for p in root.rglob("*.mp4")) == sorted({f"{a.sha256}.mp4", f"{c.sha256}.mp4"})
    assert lab.store.verify(a.video_path) and not any((root / ".partial").iterdir())
    assert root == lab.home / "media"


def test_probe_reads_the_video(make_lab):
    lab = make_lab()
    job = lab.run_sync(REQ, timeout=60)
    info = lab.store.probe(job.video_path)
    assert (info["width"], info["height"], info["fps"], info["frames"], info["codec"]) == (1280, 720, 30.0, 60, "h264")
    assert info["duration"] == pytest.approx(2.0, abs=0.05) and info["sha256"] == job.sha256


def test_the_download_check_reads_without_decoding_what_a_decoding_probe_reads(make_lab):
    """probe_file keeps FFmpeg from decoding frames while it probes (its CPU); nothing it records may change."""
    from wanlab.video import probe

    job = make_lab().run_sync(REQ, timeout=60)
    fast = probe(job.video_path, complete=True, decode=False)
    assert fast == probe(job.video_path, complete=True)
    assert (fast["width"], fast["height"], fast["fps"], fast["frames"]) == (1280, 720, 30.0, 60)


@pytest.mark.parametrize("keep", [0.5, 0.99, -1], ids=["half", "99 %", "all but the last byte"])
def test_the_download_check_refuses_a_file_cut_anywhere_in_its_packets(make_lab, tmp_path, keep):
    """The check reads the MP4's index (where each packet lies) instead of demuxing: a cut inside the last packet,
    which demuxing counted as a whole frame, is refused too."""
    from wanlab.video import probe_file

    data = make_lab().run_sync(REQ, timeout=60).video_path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[:keep])
    with pytest.raises(ValueError, match="cut short"):
        probe_file(cut)


def test_verify_catches_a_changed_file(tmp_path):
    store = MediaStore(tmp_path)
    p = store.put_bytes(b"some input", ".png")
    assert store.put_bytes(b"some input", ".png") == p and store.verify(p)
    p.write_bytes(b"tampered")
    assert not store.verify(p)


def test_poster_is_a_small_jpeg(make_lab):
    lab = make_lab()
    job = lab.run_sync(REQ, timeout=60)
    poster = lab.store.poster(job.video_path, width=320)
    img = Image.open(poster)
    assert poster.suffix == ".jpg" and img.format == "JPEG" and img.size == (320, 180)
    assert lab.store.poster(job.video_path, width=320) == poster            # cached


def test_contact_sheet_of_a_set_of_runs(make_lab, tmp_path):
    lab = make_lab()
    lab.wait([lab.submit(REQ.replace(seed=s)) for s in (1, 2, 3)], timeout=60)
    df = lab.log.df
    out = lab.store.contact_sheet(df, cols=2, cell=200)
    img = Image.open(out).convert("RGB")
    cell_h = 200 * 9 // 16 + 22
    assert out.suffix == ".png" and img.size == (2 * 200, 2 * cell_h)
    cells = [img.crop((x, y, x + 200, y + 200 * 9 // 16)) for x, y in ((0, 0), (200, 0), (0, cell_h))]
    assert ImageChops.difference(cells[0], cells[1]).getbbox() is not None      # different seeds, different frames
    assert ImageChops.difference(cells[0], cells[2]).getbbox() is not None
    empty = img.crop((200, cell_h, 400, 2 * cell_h))                             # the 4th cell is blank
    assert empty.getextrema() == ((255, 255), (255, 255), (255, 255))
    png = contact_sheet([str(lab.jobs[0].video_path), tmp_path / "missing.mp4"], cols=2, cell=160)
    assert isinstance(png, bytes) and Image.open(io.BytesIO(png)).size == (320, 160 * 9 // 16 + 22)
    from_jobs = lab.store.contact_sheet(lab.jobs, out=tmp_path / "jobs.png", cols=3, cell=160)
    assert Image.open(from_jobs).size == (480, 160 * 9 // 16 + 22)
