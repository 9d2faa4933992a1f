"""Sweeps, plots and the demo, against the sim."""
from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import wanlab  # noqa: E402
from wanlab import T2V, plots  # noqa: E402

BASE = T2V("a kite over a hill", duration=2, seed=1)


def test_sweep_expands_validates_estimates_and_runs(make_lab, sim):
    lab = make_lab()
    sweep = lab.sweep(BASE, resolution=["720P", "1080P"], duration=[2, 3], seed=[1, 2])
    assert len(sweep) == 8
    est = sweep.estimate()
    # 720P $0.10/s, 1080P $0.15/s (dated third-party rows): 2×(2+3)×0.10 + 2×(2+3)×0.15
    assert est.amount == pytest.approx(2.5) and est.currency == "USD" and est.items == 8
    sweep.run(progress=False)
    df = sweep.df
    assert len(df) == 8 and (df["status"] == "SUCCEEDED").all()
    assert set(df["cell_resolution"]) == {"720P", "1080P"}
    assert df["cost"].sum() == pytest.approx(2.5)
    assert sim.stats()["submits"] == 8
    assert (df["width"].astype(int) == df["cell_resolution"].map({"720P": 1280, "1080P": 1920})).all()
    assert sweep.stopped == "" and df["not_started"].isna().all()


def test_a_bad_cell_fails_before_anything_is_sent(make_lab, sim):
    lab = make_lab()
    with pytest.raises(wanlab.ValidationError, match=r"sweep cell \{'duration': 20\}.*2–15 s"):
        lab.sweep(BASE, duration=[5, 20])
    with pytest.raises(wanlab.ValidationError, match="480P"):
        lab.sweep(BASE, resolution=["480P", "720P"])
    with pytest.raises(wanlab.ValidationError, match="non-empty list"):
        lab.sweep(BASE, seed=[])
    assert sim.stats()["submits"] == 0


def test_logged_runs_are_reused_unless_asked(make_lab, sim):
    lab = make_lab()
    lab.sweep(BASE, seed=[1, 2]).run(progress=False)
    again = lab.sweep(BASE, seed=[1, 2, 3])
    assert again.estimate().items == 1                  # only seed 3 is new
    again.run(progress=False)
    assert sim.stats()["submits"] == 3
    assert again.df["reused"].tolist() == [True, True, False]
    fresh = lab.sweep(BASE, seed=[1], reuse=False).run(progress=False)
    assert sim.stats()["submits"] == 4 and fresh.df["reused"].tolist() == [False]


def test_a_cell_another_kernel_finished_after_the_sweep_began_is_reused_not_paid_again(make_lab, sim, monkeypatch):
    """Two kernels run the same sweep: each looks for finished runs when it starts, then submits cell after cell.
    A cell the other one finishes in between must be found when this one comes to it — in the transaction that
    would log a new run — not sent again (two kernels at once paid for 13–16 runs of 12 before)."""
    other, this = make_lab(), make_lab()                   # one log, as two kernels on one notebook's folder
    monkeypatch.setattr(wanlab.sweep.Sweep, "_reusable", lambda self: {})   # what this sweep saw at its start
    done = other.run_sync(BASE.replace(seed=2), timeout=60)                 # … the other kernel finishes seed 2
    sweep = this.sweep(BASE, seed=[1, 2]).run(progress=False)
    assert sim.stats()["submits"] == 2                     # the other kernel's seed 2, and this one's seed 1
    df = sweep.df
    assert df["reused"].tolist() == [False, True] and df["run_id"].tolist()[1] == done.id
    assert (df["status"] == "SUCCEEDED").all()
    assert this.submit(BASE.replace(seed=2)).id != done.id  # `submit` itself still pays for a new sample


def test_budget_stops_a_sweep_and_never_overspends(make_lab, sim):
    lab = make_lab()
    sweep = lab.sweep(BASE, seed=list(range(10)))          # 10 × $0.20
    sweep.run(budget=1.0, progress=False)
    df = sweep.df
    ran = df[df["status"].notna()]
    assert len(ran) == 5 and df["cost"].sum() <= 1.0 + 1e-9
    assert "budget" in sweep.stopped
    assert sim.stats()["submits"] == 5
    assert df["not_started"].notna().tolist() == [False] * 5 + [True] * 5


def test_a_budget_smaller_than_the_grid_runs_what_fits_and_says_what_it_stopped(make_lab, sim):
    lab = make_lab()
    sweep = lab.sweep(BASE, duration=[8, 2], seed=[1, 2])          # 0.80, 0.80, 0.20, 0.20 USD at 720P
    assert sweep.summary == "4 cells: none run yet" and sweep.df["not_started"].isna().all()
    sweep.run(budget=1.1, progress=False)
    df = sweep.df
    ran = df[df["status"].notna()]
    # in grid order while they fit: the second 8 s cell would pass 1.10, the 2 s cell after it still fits
    assert sorted(zip(ran["cell_duration"], ran["cell_seed"])) == [(2, 1), (8, 1)]
    assert (ran["status"] == "SUCCEEDED").all() and sim.stats()["submits"] == 2
    assert (df["status"].notna() != df["not_started"].notna()).all()      # each cell ran or says why not
    why = df.set_index(["cell_duration", "cell_seed"])["not_started"]
    assert why[(8, 2)] == "budget 1.10 USD: 1.00 spent + 0.00 in flight + 0.80 for this run would exceed it"
    assert why[(2, 2)].endswith("+ 0.20 for this run would exceed it")
    assert (sweep.budget.limit, sweep.budget.currency) == (1.1, "USD")
    assert sweep.budget.spent == pytest.approx(1.0) == ran["cost"].sum()
    assert sweep.stopped == f"the budget stopped 2 of 4 cells: {why[(8, 2)]}"
    assert sweep.summary == f"4 cells: 2 SUCCEEDED, 2 not started; spent 1.00 USD of a 1.10 USD budget — stopped: {sweep.stopped}"
    assert "not_started" in sweep._repr_html_() and "2 not started" in sweep._repr_html_()


def test_a_refused_cell_starts_once_a_run_settles_under_its_estimate(make_lab, sim):
    sim.faults.set("task:fail#1")                  # the first task fails: not billed, its reservation freed
    lab = make_lab()
    sweep = lab.sweep(BASE, seed=[1, 2]).run(budget=0.2, progress=False)     # room for one 0.20 run at a time
    df = sweep.df
    assert df["status"].tolist() == ["FAILED", "SUCCEEDED"] and sweep.stopped == ""
    assert df["not_started"].isna().all() and sweep.budget.spent == pytest.approx(0.2)


def test_cells_a_timeout_left_unsent_say_so(make_lab):
    lab = make_lab()
    sweep = lab.sweep(BASE, seed=[1, 2, 3])
    with pytest.raises(TimeoutError, match="2 not started"):      # checked after the first run's first event
        sweep.run(timeout=0.001, max_concurrency=1, progress=False)
    assert sweep.df["not_started"].tolist()[1:] == ["timeout: not done after 0.001 s"] * 2
    assert sweep.stopped == "timeout: not done after 0.001 s"


def test_max_concurrency_bounds_the_sweep(make_lab, sim):
    lab = make_lab()
    lab.sweep(BASE, seed=list(range(6))).run(max_concurrency=2, progress=False)
    assert max(sim.stats()["max_running_by_key"].values()) <= 2


def test_plots_label_units_and_source(make_lab):
    lab = make_lab()
    df = lab.sweep(BASE, resolution=["720P", "1080P"], duration=[2, 3]).run(progress=False).df
    for draw in (plots.latency_heatmap, plots.cost_heatmap, plots.latency_vs_duration, plots.queue_vs_run,
                 plots.spend_over_time, plots.estimate_vs_actual):
        fig, ax = plt.subplots()
        assert draw(df, ax=ax) is ax
        assert "source: dashscope/singapore" in ax.get_title()
        assert ax.get_xlabel() and ax.get_ylabel()
        plt.close(fig)
    fig, ax = plt.subplots()
    plots.cost_heatmap(df, ax=ax)
    cells = sorted(t.get_text() for t in ax.texts)
    assert cells == ["0.20", "0.30", "0.30", "0.45"]      # 720P/1080P × 2/3 s at $0.10/$0.15 per s
    plt.close(fig)
    fig, ax = plt.subplots()
    plots.seed_grid(df, rows="resolution", cols="duration", ax=ax)
    assert ax.images and ax.images[0].get_array().shape[:2] == (2 * 180, 2 * 320)
    plt.close(fig)


def test_demo_command_writes_a_report(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "wanlab", "demo", "--out", str(out), "--resolution", "720P",
                           "--duration", "2", "--seed", "1", "2"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert f"report: {out / 'report.html'}" in proc.stdout
    page = (out / "report.html").read_text()
    assert page.count("<video") == 2 and "source: <b>sim" in page.replace("Data source", "source")
    for png in ("contact_sheet.png", "latency_heatmap.png", "cost_heatmap.png"):
        assert (out / png).stat().st_size > 5_000
