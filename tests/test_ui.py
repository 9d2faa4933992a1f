"""The notebook UI driven as a user would: set the form's values, .click(), wait on the job, read the card.

Runs against the sim over loopback (tests/conftest.py `make_lab`); widgets work without a kernel.
"""
from __future__ import annotations

import datetime
import io
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

import wanlab
from tests.media_fixtures import image_bytes, write_mp4
from wanlab import Status, ui
from wanlab.ui.cards import expected_latency


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ui-media")
    out = {}
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        out[f"img{i}"] = d / f"img{i}.png"
        out[f"img{i}"].write_bytes(image_bytes(colour))
    out["clip"] = write_mp4(d / "clip.mp4", 2.0)
    out["clip3"] = write_mp4(d / "clip3.mp4", 3.0)
    return out


def upload(name: str, data: bytes, mime: str) -> dict:
    """A FileUpload value entry as the front end sends it."""
    return {"name": name, "type": mime, "size": len(data), "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.timezone.utc)}


def wait_card(card: ui.JobCard, timeout: float = 30.0) -> ui.JobCard:
    """Wait for the job, then for the card to show it ended (the loop thread updates it)."""
    card.job.wait(timeout)
    end = time.time() + 5
    while time.time() < end:
        if card.progress.value == 1.0 and (card.job.status is not Status.SUCCEEDED or card.video.outputs):
            return card
        time.sleep(0.02)
    raise AssertionError(f"card never showed the end of {card.job}")


def video_of(card: ui.JobCard) -> str:
    return "".join(o["data"]["text/html"] for o in card.video.outputs)


def click_and_wait(form: ui.GenerateForm) -> ui.JobCard:
    n = len(form.jobs)
    form.generate_button.click()
    assert len(form.jobs) == n + 1, form.error.value
    card = form.cards.children[0]
    assert card.job is form.jobs[-1]
    return wait_card(card)


# -- every mode, through the form ----------------------------------------------------------------

def _fill(form: ui.GenerateForm, mode: str, files: dict[str, Path]) -> None:
    form.mode.value = mode
    if mode == "t2v":
        form.prompt.value = "a red kite over a green hill"
        form.negative.value = "blur"
    elif mode == "i2v":
        form.inputs["image"].upload.value = (upload("red.png", files["img0"].read_bytes(), "image/png"),)
        form.prompt.value = "the kite lifts off"
    elif mode == "flf2v":
        form.inputs["first"].text.value = str(files["img0"])
        form.inputs["last"].text.value = str(files["img1"])
        form.prompt.value = "red turns green"
    elif mode == "grid9":
        form.inputs["tiles"].text.value = "\n".join(str(files[f"img{i % 3}"]) for i in range(9))
        form.prompt.value = "a story in nine shots"
    elif mode == "ref2v":
        form.inputs["ref_videos"].text.value = str(files["clip"])
        form.inputs["ref_images"].upload.value = (upload("b.png", files["img2"].read_bytes(), "image/png"),)
        form.prompt.value = "Video 1 walks past Image 1"
    elif mode == "edit":
        form.inputs["video"].upload.value = (upload("clip.mp4", files["clip"].read_bytes(), "video/mp4"),)
        form.prompt.value = "make it snow"
    elif mode == "extend":
        form.inputs["clip"].upload.value = (upload("clip.mp4", files["clip"].read_bytes(), "video/mp4"),)
        form.inputs["end_frame"].text.value = str(files["img2"])
        form.prompt.value = "the kite lands"
        form.duration.value = 3   # the total: the 2 s clip and 1 s more
        form.resolution.value = "720P"
        return
    form.duration.value = 2
    form.resolution.value = "720P"


MODES = ["t2v", "i2v", "flf2v", "grid9", "ref2v", "edit", "extend"]
TYPES = {"t2v": wanlab.T2V, "i2v": wanlab.I2V, "flf2v": wanlab.FLF2V, "grid9": wanlab.Grid9,
         "ref2v": wanlab.Ref2V, "edit": wanlab.Edit, "extend": wanlab.Extend}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_generates_and_the_card_shows_the_video(make_lab, files, mode):
    lab = make_lab()
    form = lab.form()
    _fill(form, mode, files)
    assert form.error.value == "", form.error.value
    assert "Estimated cost:" in form.cost.value and "USD" in form.cost.value
    seed = form.seed.value
    card = click_and_wait(form)
    job = card.job
    assert job.status is Status.SUCCEEDED, job
    assert isinstance(job.request, TYPES[mode]) and job.request.seed == seed
    assert "SUCCEEDED" in card.status.value and card.progress.bar_style == "success"
    assert f"request id {job.request_id}" in card.info.value and "elapsed" in card.info.value
    assert f"{job.cost:.2f} USD" in card.info.value
    page = video_of(card)
    assert '<video controls muted playsinline preload="none"' in page
    assert 'poster="data:image/jpeg;base64,' in page
    assert f'src="{ui.video.relative_src(job.video_path)}"' in page and "data:video" not in page
    assert lab.log.get(job.id)["status"] == "SUCCEEDED"


def test_uploaded_and_url_inputs_show_thumbnails(make_lab, files):
    lab = make_lab()
    form = lab.form(mode="ref2v")
    form.inputs["ref_videos"].text.value = str(files["clip"])
    form.inputs["ref_images"].upload.value = (upload("b.png", files["img2"].read_bytes(), "image/png"),)
    form.inputs["ref_images"].text.value = "https://example.com/pics/cat.png"
    thumbs = form.inputs["ref_images"].thumbs.children
    assert [type(t).__name__ for t in thumbs] == ["Label", "Image"]     # a URL is named, never fetched
    assert thumbs[0].value == "cat.png"
    assert Image.open(io.BytesIO(thumbs[1].value)).size[0] <= 72
    assert type(form.inputs["ref_videos"].thumbs.children[0]).__name__ == "Image"   # a frame of the clip
    form.inputs["ref_images"].clear()
    assert form.inputs["ref_images"].values == []


INVALID = {
    "t2v": (lambda f, files: setattr(f.prompt, "value", "   "), "prompt is empty"),
    "i2v": (lambda f, files: setattr(f.prompt, "value", "x"), "image is missing"),
    "flf2v": (lambda f, files: setattr(f.inputs["first"].text, "value", str(files["img0"])), "last frame is missing"),
    "grid9": (lambda f, files: (setattr(f.inputs["tiles"].text, "value", str(files["img0"]) + "\n" + str(files["img1"])),
                                setattr(f.prompt, "value", "story")), "got 2 image(s)"),
    "ref2v": (lambda f, files: setattr(f.prompt, "value", "Video 1"), "no references"),
    "edit": (lambda f, files: (setattr(f.inputs["video"].text, "value", "/nonexistent/clip.mp4"),
                               setattr(f.prompt, "value", "snow")), "no such file"),
    "extend": (lambda f, files: (setattr(f.inputs["clip"].text, "value", str(files["clip3"])),
                                 setattr(f.duration, "value", 3)), "leaves under 1 s to generate"),
}


@pytest.mark.parametrize("mode", MODES)
def test_invalid_input_is_shown_in_the_form_and_nothing_is_sent(make_lab, files, mode):
    lab = make_lab()
    form = lab.form(mode=mode)
    fill, message = INVALID[mode]
    fill(form, files)
    assert message in form.error.value                 # live, before any click
    assert "—" in form.cost.value
    form.generate_button.click()
    assert "Not sent" in form.error.value and message in form.error.value
    assert form.jobs == [] and lab.jobs == [] and len(lab.log) == 0
    assert form.cards.children == ()


def test_the_form_shows_only_what_the_mode_needs_and_the_hosts_models(make_lab, files):
    lab = make_lab()
    form = lab.form()
    shown = {m: None for m in MODES}
    for m in MODES:
        form.mode.value = m
        shown[m] = form.fields.children
        assert form.model.value == wanlab.catalog.default_model("dashscope", m).id
        assert set(form.model.options) == {(s.label, s.id) for s in lab.models(m)}
    assert form.inputs["image"] in shown["i2v"] and form.inputs["image"] not in shown["t2v"]
    form.mode.value = "edit"
    assert form.negative not in shown["edit"] and form.prompt.description == "Instruction"
    assert form.inputs["first"] in shown["flf2v"] and form.inputs["last"] in shown["flf2v"]
    assert form.ratio in shown["grid9"] and form.ratio not in shown["i2v"]
    # the duration control spans exactly the model's range
    form.mode.value = "t2v"
    assert [v for _, v in form.duration.options] == list(range(2, 16))
    form.model.value = "wan2.2-t2v-plus"
    assert [v for _, v in form.duration.options] == [5] and list(form.resolution.options) == ["480P", "1080P"]
    form.mode.value = "edit"
    assert [v for _, v in form.duration.options][:2] == [0, 2] and form.duration.value == 0
    form.mode.value = "ref2v"
    assert max(v for _, v in form.duration.options) == 15
    form.duration.value = 15
    form.inputs["ref_videos"].text.value = str(files["clip"])   # with a reference video: 2–10 s
    assert max(v for _, v in form.duration.options) == 10 and form.duration.value == 5
    form.mode.value = "extend"                  # the clip, an optional last frame; the slider is the total
    assert form.inputs["clip"] in form.fields.children and form.inputs["end_frame"] in form.fields.children
    assert form.duration.description == "Total (s)" and [v for _, v in form.duration.options] == list(range(2, 16))
    assert form.prompt.placeholder == "what happens after the clip"
    ws = make_lab("wavespeed")
    assert ws.form().model.value == "alibaba/wan-2.7/text-to-video"
    ws_extend = ws.form(mode="extend")
    assert ws_extend.model.value == "alibaba/wan-2.7/video-extend"
    assert [v for _, v in ws_extend.duration.options] == list(range(5, 16))


def test_live_cost_estimate_follows_the_inputs(make_lab):
    lab = make_lab()
    form = lab.form(prompt="a kite", duration=2)
    two = str(lab.estimate(form.request()))
    form.duration.value = 10
    ten = str(lab.estimate(form.request()))
    assert two != ten and ten in form.cost.value.replace("&quot;", '"')


def test_seed_lock_and_randomise(make_lab):
    lab = make_lab()
    form = lab.form(prompt="a kite", duration=2, seed=11)
    card = click_and_wait(form)
    assert card.job.request.seed == 11 and form.seed.value != 11     # unlocked: the next run is a new sample
    form.seed.value, form.lock.value = 12, True
    click_and_wait(form)
    click_and_wait(form)
    assert [j.request.seed for j in form.jobs[1:]] == [12, 12] and form.seed.value == 12
    form.randomise.click()
    assert form.seed.value != 12


def test_cancel_button_cancels_the_queued_job_on_the_host(tmp_path):
    from wanlab.sim import SimServer

    from .conftest import KEY

    with SimServer(time_scale=0.01, queue_base_s=100_000) as sim, \
            wanlab.Lab(provider="dashscope", api_key=KEY, base_url=sim.dashscope_url(), time_scale=0.01,
                       home=tmp_path, quiet=True) as lab:
        form = lab.form(prompt="long", duration=15, resolution="1080P")
        form.generate_button.click()
        job = form.jobs[-1]
        deadline = time.monotonic() + 30
        while job.status is not Status.PENDING:
            assert time.monotonic() < deadline, job
            time.sleep(0.01)
        form.cancel_button.click()
        card = wait_card(form.cards.children[0])
        assert job.status is Status.CANCELED and sim.task_info(job.task_id)["status"] == "CANCELED"
        assert "CANCELED" in card.status.value and card.video.outputs == () and card.cancel_button.disabled


def test_rating_and_notes_are_saved_to_the_log(make_lab):
    lab = make_lab()
    form = lab.form(prompt="a kite", duration=2)
    card = click_and_wait(form)
    card.rating.value = 4
    card.notes.value = "good wind"
    row = lab.log.get(card.job.id)
    assert row["rating"] == 4 and row["notes"] == "good wind"
    assert "saved" in card.saved.value


def test_new_seed_and_same_seed_edit_the_prompt(make_lab):
    lab = make_lab()
    form = lab.form(prompt="a kite", duration=2, seed=5, lock_seed=True)
    first = click_and_wait(form)
    first.new_seed_button.click()
    again = wait_card(form.cards.children[0])
    assert again.job.request.prompt == "a kite" and again.job.request.seed != 5
    assert again.job.status is Status.SUCCEEDED
    first.edit_button.click()                       # loads the request, seed locked, into the form
    assert form.prompt.value == "a kite" and form.seed.value == 5 and form.lock.value
    form.prompt.value = "a kite at dusk"
    edited = click_and_wait(form)
    assert edited.job.request.seed == 5 and edited.job.request.prompt == "a kite at dusk"
    # a card on its own (no form) opens a form below itself
    lone = ui.card(lab, first.job)
    f2 = lone.edit()
    assert isinstance(f2, ui.GenerateForm) and lone.followups.children[0] is f2 and f2.seed.value == 5


def test_edit_the_prompt_keeps_uploaded_media(make_lab, files):
    lab = make_lab()
    form = lab.form(mode="i2v", prompt="lift off", duration=2)
    form.inputs["image"].upload.value = (upload("red.png", files["img0"].read_bytes(), "image/png"),)
    card = click_and_wait(form)
    card.edit_button.click()
    form.prompt.value = "land"
    edited = click_and_wait(form)
    assert edited.job.request.image.data == files["img0"].read_bytes()


def test_edit_an_extend_card_brings_back_its_clip_and_last_frame(make_lab, files):
    lab = make_lab()
    form = lab.form()
    _fill(form, "extend", files)
    card = click_and_wait(form)
    form.mode.value = "t2v"
    card.edit_button.click()
    assert form.mode.value == "extend" and form.duration.value == 3 and form.error.value == ""
    req = form.request()
    assert req.video.data == files["clip"].read_bytes() and req.last.data == files["img2"].read_bytes()


def test_cards_move_from_the_loop_thread_and_eta_uses_the_log(make_lab):
    lab = make_lab(time_scale=0.01)
    job = lab.submit(wanlab.T2V("eta", duration=2, seed=1))
    seconds, source = expected_latency(lab, job)
    assert source == "model prior" and seconds == pytest.approx(job.model.expected_latency("720P", 2) * 0.01)
    card = ui.card(lab, job)
    threads = set()
    card.progress.observe(lambda _: threads.add(threading.current_thread().name), "value")
    wait_card(card)
    assert "wanlab-loop" in threads and threading.current_thread().name not in threads
    job2 = lab.submit(wanlab.T2V("eta", duration=2, seed=2))
    seconds, source = expected_latency(lab, job2)
    assert source == "median of 1 similar run(s)" and seconds == pytest.approx(job.latency, rel=1e-6)
    job2.result(30)


def test_a_cards_clock_ticks_on_its_own_thread_until_the_job_ends(make_lab):
    """The card's ETA clock uses only public Lab/Job API (Job.wait, Lab.closed): one ticker thread per
    running job's card, gone once the job ends; none for a job already done."""
    lab = make_lab(time_scale=0.01)
    job = lab.submit(wanlab.T2V("tick", duration=2, seed=3))
    card = ui.card(lab, job)
    tickers = [t for t in threading.enumerate() if t.name == f"wanlab-card-{job.id}"]
    assert len(tickers) == 1 or job.done
    wait_card(card)
    for t in tickers:
        t.join(5)
        assert not t.is_alive()
    ui.card(lab, job)
    assert not [t for t in threading.enumerate() if t.name == f"wanlab-card-{job.id}"]


# -- HTML rendering -------------------------------------------------------------------------------

def test_video_html_links_embeds_and_caps(tmp_path, monkeypatch, files):
    monkeypatch.chdir(files["clip"].parent)
    page = ui.video_html(files["clip"])
    assert 'src="clip.mp4"' in page and 'preload="none"' in page and "poster=\"data:image/jpeg" in page
    monkeypatch.setenv("VSCODE_PID", "1")                 # VS Code can't serve files: embed
    assert ui.front_end() == "vscode" and 'src="data:video/mp4;base64,' in ui.video_html(files["clip"])
    capped = ui.video_html(files["clip"], max_embed_bytes=100)
    assert 'src="clip.mp4"' in capped and "over the embed cap" in capped
    assert 'src="clip.mp4"' in ui.video_html(files["clip"], embed=False)
    monkeypatch.delenv("VSCODE_PID")
    monkeypatch.delenv("VSCODE_CWD", raising=False)
    assert "data:video" in ui.video_html(files["clip"], embed=True)
    assert "no video" in ui.video_html(tmp_path / "missing.mp4")


def test_job_log_and_sweep_html_and_the_gallery(make_lab):
    lab = make_lab()
    jobs = [lab.submit(wanlab.T2V(p, duration=2, seed=s)) for p in ("prompt A", "prompt B") for s in (1, 2, 3)]
    lab.wait(jobs, 60)
    page = ui.job_html(jobs[0])
    assert "SUCCEEDED" in page and "<video" in page
    g = ui.gallery(lab.log.df)                  # auto: prompt down, seed across
    rows, cols, cells = g.layout()
    assert rows == ["prompt A", "prompt B"] and cols == ["seed 1", "seed 2", "seed 3"]
    assert all(len(v) == 1 for v in cells.values())
    html = g._repr_html_()
    assert html.count("<video") == 6 and "6 run(s), 6 succeeded" in html
    assert ui.gallery(jobs, by="seed").layout()[0] == ["seed 1", "seed 2", "seed 3"]
    assert ui.gallery(jobs, by=None).layout()[0] == ["0", "1"]
    assert ui.log_html(lab.log).count("<video") == 6
    sweep = type("Sweep", (), {"jobs": [*jobs, None]})()     # None: a cell not started
    assert ui.sweep_html(sweep).count("<video") == 6
    png = g.contact_sheet()
    assert Image.open(io.BytesIO(png)).size == (3 * 320, 2 * (180 + 22))


def test_a_48_video_gallery_adds_at_most_100_kb_to_the_notebook(tmp_path):
    """48 real sim runs (a 6 × 8 prompt × seed grid) shown with wanlab.ui.show, saved with outputs."""
    cells = [
        "import wanlab\nfrom wanlab import ui\n"
        "lab = wanlab.Lab(provider='sim', time_scale=0.002, quiet=True)\n"
        "jobs = [lab.submit(wanlab.T2V(f'prompt {p}', duration=2, seed=s)) for p in range(6) for s in range(8)]\n"
        "lab.wait(jobs, 240)\n"
        "assert all(j.status is wanlab.Status.SUCCEEDED for j in jobs)",
        "ui.show(lab.log.df, by=('prompt', 'seed'))",
        "lab.close()",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    with_gallery = tmp_path / "with.ipynb"
    nbformat.write(nb, with_gallery)
    nb.cells[1].outputs = []
    without = tmp_path / "without.ipynb"
    nbformat.write(nb, without)
    delta = with_gallery.stat().st_size - without.stat().st_size
    html = nbformat.read(with_gallery, 4).cells[1].outputs[0]["data"]["text/html"]
    assert html.count("<video") == 48 and html.count('poster="data:image/jpeg') == 48
    print(f"48-video gallery: +{delta} bytes")
    assert 0 < delta <= 100 * 1024, delta
