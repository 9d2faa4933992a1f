"""Every run is measured after its download, in a worker process, into the log; a measurement never
blocks or fails a run; `lab.measure` backfills; the sim's known defects move the figures they should."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from wanlab import FLF2V, I2V, T2V, Lab, Status
from wanlab import _outcomes


def picture(seed: int) -> Image.Image:
    """A structured 16:9 picture (shapes on a gradient): SSIM has edges and areas to compare."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, 1280)[None, :, None]
    y = np.linspace(0, 1, 720)[:, None, None]
    x, y = np.broadcast_to(x, (720, 1280, 1)), np.broadcast_to(y, (720, 1280, 1))
    img = Image.fromarray((np.concatenate([x * 200, y * 180, (1 - x) * 150], axis=2) + 30).astype("uint8"))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, 1100)), int(rng.integers(0, 560))
        draw.ellipse([x0, y0, x0 + 160, y0 + 140], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return img


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    home = tmp_path_factory.mktemp("quality-home")
    first, last = picture(1), picture(2)
    with Lab(provider="sim", time_scale=0.002, quiet=True, home=home) as lab:
        reqs = {
            "clean": T2V("a paper boat on a pond", duration=2, seed=3),
            "flicker": T2V("a paper boat on a pond [sim:flicker=0.6]", duration=2, seed=3),
            "frozen": T2V("a paper boat on a pond [sim:frozen=0.5]", duration=2, seed=3),
            "blur": T2V("a paper boat on a pond [sim:blur=0.7]", duration=2, seed=3),
            "i2v": I2V("a paper boat on a pond", image=first, duration=2, seed=3),
            "i2v_drift": I2V("a paper boat on a pond [sim:drift=1.0]", image=first, duration=2, seed=3),
            "flf2v": FLF2V("a paper boat on a pond", first=first, last=last, duration=2, seed=3),
        }
        jobs = {name: lab.submit(req) for name, req in reqs.items()}
        lab.wait(list(jobs.values()))
        assert all(j.status is Status.SUCCEEDED for j in jobs.values())
        figures = lab.measure(list(jobs.values()))  # waits for the measurements already under way
        rows = {name: lab.log.get(j.id) for name, j in jobs.items()}
        yield lab, jobs, figures, rows


def test_every_run_is_measured_into_its_log_row_and_onto_its_job(measured):
    lab, jobs, figures, rows = measured
    for name, row in rows.items():
        assert row["quality_error"] is None, (name, row["quality_error"])
        for col in ("flicker", "frozen", "motion", "sharpness", "exposure", "conforms"):
            assert row[col] is not None, (name, col)
        assert jobs[name].quality is not None and jobs[name].quality["flicker"] == pytest.approx(row["flicker"])
    assert rows["clean"]["conforms"] == 1 and rows["clean"]["conformance"] == ""  # 1280×720, 2 s, as asked
    df = lab.log.frame()
    assert str(df["flicker"].dtype) == "Float64" and str(df["conforms"].dtype) == "boolean"
    assert set(figures.index) == {j.id for j in jobs.values()}


def test_the_sims_known_defects_move_their_figures(measured):
    _, _, _, rows = measured
    clean = rows["clean"]
    assert rows["flicker"]["flicker"] > 10 * max(clean["flicker"], 0.1)
    assert rows["frozen"]["frozen"] > 0.3 > clean["frozen"]
    assert rows["blur"]["sharpness"] < 0.2 * clean["sharpness"]
    for name in ("flicker", "frozen", "blur"):
        assert rows[name]["conforms"] == 1  # a defect is not a misfit: same size, length and rate


def test_image_to_video_runs_are_compared_with_their_own_inputs(measured):
    _, _, _, rows = measured
    assert rows["clean"]["first_ssim"] is None and rows["clean"]["last_ssim"] is None  # T2V: nothing to compare
    assert rows["i2v"]["first_ssim"] is not None and rows["i2v"]["last_ssim"] is None
    assert rows["flf2v"]["first_ssim"] is not None and rows["flf2v"]["last_ssim"] is not None
    assert rows["i2v_drift"]["first_ssim"] < rows["i2v"]["first_ssim"]  # drifted away from the given frame


def test_backfill_measures_older_runs_and_records_errors_without_touching_the_run(tmp_path):
    with Lab(provider="sim", time_scale=0.002, quiet=True, home=tmp_path, measure=False) as lab:
        good = lab.run_sync(T2V("a kite", duration=2, seed=1))
        bad = lab.run_sync(T2V("a kite", duration=2, seed=2))
        assert lab.measurer.wait() and lab.log.get(good.id)["flicker"] is None  # measure=False: nothing yet
        bad.video_path.write_bytes(b"not a video any more")
        out = lab.measure()  # every successful run not measured yet
        assert out.loc[good.id, "flicker"] is not None and out.loc[good.id, "quality_error"] is pd.NA
        row = lab.log.get(bad.id)
        assert row["status"] == "SUCCEEDED" and row["quality_error"] and row["flicker"] is None
        before = lab.log.get(good.id)["updated"]
        lab.measure()  # nothing new: measured rows and recorded errors are not measured again
        assert lab.log.get(good.id)["updated"] == before
        again = lab.measure([good.id], again=True)
        assert again.loc[good.id, "flicker"] == pytest.approx(out.loc[good.id, "flicker"])


def test_a_dead_worker_becomes_an_error_in_the_row_and_the_next_video_gets_a_new_one(tmp_path):
    with Lab(provider="sim", time_scale=0.002, quiet=True, home=tmp_path, measure=False) as lab:
        job = lab.run_sync(T2V("a kite", duration=2, seed=1))
        lab.measure([job.id])
        worker = _outcomes._worker
        assert worker is not None and not worker.dead
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        out = lab.measure([job.id], again=True)  # sent to the dead worker, or to a new one
        if out.loc[job.id, "quality_error"] is not pd.NA:
            assert "worker" in out.loc[job.id, "quality_error"]
        again = lab.measure([job.id], again=True)
        assert again.loc[job.id, "quality_error"] is pd.NA and again.loc[job.id, "flicker"] is not pd.NA
        assert _outcomes._worker is not worker


def test_a_script_without_a_main_guard_is_not_run_again_by_the_worker(tmp_path):
    """multiprocessing's spawn would re-import the script as __main__ in the worker and pay for its jobs
    twice; the worker is a plain subprocess that imports only wanlab."""
    script = tmp_path / "study.py"
    marker = tmp_path / "ran.txt"
    script.write_text(
        textwrap.dedent(
            f"""
            import wanlab
            with open({str(marker)!r}, "a") as fh:
                fh.write("ran\\n")
            with wanlab.Lab(time_scale=0.002, quiet=True, home={str(tmp_path / "home")!r}) as lab:
                job = lab.run_sync(wanlab.T2V("a kite", duration=2, seed=1))
                print(lab.measure([job.id]).loc[job.id, "quality_error"], lab.sim.stats()["submits"])
            """
        )
    )
    out = subprocess.run([sys.executable, "-W", "always::ResourceWarning", str(script)], capture_output=True,
                         text=True, timeout=240, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["<NA>", "1"]
    assert marker.read_text() == "ran\n"
    assert "ResourceWarning" not in out.stderr, out.stderr[-2000:]   # the worker's pipe is closed at exit


def test_every_quality_figure_has_a_log_column():
    from wanlab.log import NAMES
    from wanlab.quality import QUALITY_COLUMNS

    assert set(QUALITY_COLUMNS) <= set(NAMES) and "quality_error" in NAMES
