"""`Sweep.run(on_progress=...)`: the progress record a hook receives, and the default display (wanlab.ui.progress)."""
from __future__ import annotations

import pytest

import wanlab
from wanlab import T2V, SweepProgress
from wanlab.ui.progress import ProgressDisplay

BASE = T2V("a kite over a hill", duration=2, seed=1)


def test_on_progress_gets_records_from_start_to_a_final_one(make_lab, capsys):
    lab = make_lab()
    seen: list[SweepProgress] = []
    sweep = lab.sweep(BASE, seed=[1, 2, 3]).run(on_progress=seen.append, timeout=120)
    assert isinstance(sweep, wanlab.Sweep)
    first, last = seen[0], seen[-1]
    assert (first.done, first.in_flight, first.total, first.eta, first.final) == (0, 0, 3, None, False)
    assert [p.final for p in seen].count(True) == 1 and last.final
    assert (last.done, last.failed, last.in_flight, last.total, last.stopped) == (3, 0, 0, 3, "")
    assert last.spent == pytest.approx(3 * 2 * 0.10) and last.eta == 0
    assert all(a.done <= b.done for a, b in zip(seen, seen[1:], strict=False))
    assert str(last).startswith("3/3 done, 0 failed, 0 in flight, spent 0.60, ETA 0 s")
    assert capsys.readouterr().err == ""           # a hook replaces the default display

    again: list[SweepProgress] = []
    lab.sweep(BASE, seed=[1, 2, 3]).run(on_progress=again.append)    # every run reused from the log
    assert (again[-1].done, again[-1].reused, again[-1].in_flight) == (3, 3, 0)


def test_default_display_is_a_line_on_stderr_outside_a_kernel(make_lab, capsys):
    lab = make_lab()
    lab.sweep(BASE, seed=[1, 2]).run(timeout=120)
    err = capsys.readouterr().err
    assert "2/2 done, 0 failed, 0 in flight" in err.splitlines()[-1]
    lab.sweep(BASE, seed=[5]).run(progress=False)
    assert capsys.readouterr().err == ""


def test_display_says_why_submitting_stopped(capsys):
    show = ProgressDisplay()
    show(SweepProgress(done=1, failed=1, in_flight=0, total=4, spent=0.5, eta=None))
    show(SweepProgress(done=1, failed=1, in_flight=0, total=4, spent=0.5, eta=None, stopped="budget spent",
                       final=True))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "1/4 done, 1 failed, 0 in flight, spent 0.50, ETA —"
    assert lines[-1].endswith("ETA — — stopped: budget spent")


def test_on_progress_must_be_callable(make_lab):
    lab = make_lab()
    with pytest.raises(wanlab.ValidationError, match="on_progress=3 must be a function"):
        lab.sweep(BASE, seed=[1]).run(on_progress=3)
