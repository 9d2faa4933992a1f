"""Blind side-by-side judging without a browser: pairs, hidden labels, random sides, the log, the ranking,
and the widget's traits (built directly; widgets work without a kernel). Against the embedded sim."""
from __future__ import annotations

import shutil
from collections import Counter

import pandas as pd
import pytest

from wanlab import T2V, Lab, judging
from wanlab.ui.judge import KEYS, JudgeWidget, judge_view

PROMPTS = ["a red kite over a green hill", "a paper boat on a rainy street", "a lighthouse at dusk"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One Lab with 3 prompts × 2 seeds of 2 s clips, shared by the tests (each test judges in a copy of
    the log where it writes judgments; see `lab`)."""
    home = tmp_path_factory.mktemp("judge-home")
    with Lab(provider="sim", time_scale=0.002, quiet=True, home=home) as lab:
        sweep = lab.sweep(T2V(PROMPTS[0], duration=2, seed=1), prompt=PROMPTS, seed=[1, 2]).run(progress=False)
        assert (sweep.df["status"] == "SUCCEEDED").all()
        run_ids = list(sweep.run_ids)
    return home, run_ids


@pytest.fixture
def lab(bench, tmp_path):
    """A Lab on a fresh copy of the bench's log (no judgments yet); the videos stay where they are."""
    home, _ = bench
    shutil.copy(home / "runs.sqlite", tmp_path / "runs.sqlite")
    with Lab(provider="sim", time_scale=0.002, quiet=True, home=tmp_path, resume=False) as lab:
        yield lab


def items(lab: Lab) -> dict[str, str]:
    df = lab.log.frame()
    return dict(zip(df["run_id"], df["prompt"], strict=True))


def test_pairs_show_two_different_items_in_random_order(lab, bench):
    session = lab.judge(bench[1], by="prompt", judge="ann", seed=11)
    prompt_of = items(lab)
    sides: Counter[str] = Counter()
    seen_pairs: Counter[frozenset[str]] = Counter()
    for n in range(24):
        pair = session.pair
        assert pair is not None and pair.left != pair.right
        assert prompt_of[pair.left] != prompt_of[pair.right]  # never the same prompt on both sides
        assert session.reveal() == {"left": prompt_of[pair.left], "right": prompt_of[pair.right]}
        seen_pairs[frozenset((prompt_of[pair.left], prompt_of[pair.right]))] += 1
        sides[min(pair.left, pair.right) == pair.left and "first-left" or "first-right"] += 1
        session.choose(["a", "b", "tie"][n % 3])
        if session.done:
            session.more()
    assert sides["first-left"] > 0 and sides["first-right"] > 0, sides  # both orders occur
    assert len(seen_pairs) == 3  # every pair of prompts was asked about
    # every run of every prompt is shown (the least-shown run of an item comes next)
    shown = lab.log.judgments()
    assert set(shown["a"]) | set(shown["b"]) == set(bench[1])


def test_choices_land_in_the_log_with_run_ids_and_the_left_run(lab, bench):
    session = lab.judge(bench[1], judge="ann", seed=3)
    made = []
    for choice in ["a", "b", "tie", "skip", "a"]:
        pair = session.pair
        jid = session.choose(choice)
        made.append((jid, pair, choice))
    j = lab.log.judgments().set_index("judgment_id")
    assert len(j) == 5
    for jid, pair, choice in made:
        row = j.loc[jid]
        assert {row["a"], row["b"]} == {pair.left, pair.right}
        assert row["left"] == pair.left and row["judge"] == "ann" and row["by"] == "prompt"
        # "a" is the LEFT video as the judge saw it; the log's choice is relative to its own (a, b)
        winner = {"a": pair.left, "b": pair.right}.get(choice)
        expected = choice if winner is None else ("a" if row["a"] == winner else "b")
        assert row["choice"] == expected
    assert pd.api.types.is_datetime64_any_dtype(j["time"])
    assert session.judged == 4 and session.skipped == 1  # skip is logged, not counted


def test_ranking_puts_the_always_preferred_prompt_first(lab, bench):
    session = lab.judge(bench[1], by="prompt", judge="ann", seed=5)
    best = PROMPTS[1]
    while not session.done:
        shown = session.reveal()
        if best in shown.values():
            session.choose("a" if shown["left"] == best else "b")
        else:
            session.choose("tie")
    assert session.judged >= 8  # 3 prompts × 5 comparisons each, two per pair
    assert "done" in session.status() and session.remaining == 0
    ranking = lab.ranking(by="prompt")
    assert ranking.index[0] == best
    assert set(ranking.index) == set(PROMPTS)
    assert ranking.loc[best, "losses"] == 0 and ranking.loc[best, "wins"] > 0
    assert {"score", "lo", "hi", "comparisons", "wins", "ties", "losses"} <= set(ranking.columns)
    # judgments are of runs: the same judgments rank seeds too (pairs of one seed are left out)
    by_seed = lab.ranking(by="seed")
    assert set(by_seed.index) <= {"1", "2"}


def test_skips_are_logged_but_do_not_count(lab, bench):
    session = lab.judge(bench[1], judge="ann", seed=1)
    for _ in range(3):
        session.choose("skip")
    assert session.judged == 0 and session.skipped == 3
    assert (lab.log.judgments()["choice"] == "skip").sum() == 3
    ranking = lab.ranking(by="prompt", runs=bench[1])
    assert ranking["comparisons"].sum() == 0 and ranking["score"].isna().all()
    assert "0 judged" in session.status() and "3 skipped" in session.status()


def test_a_bad_choice_is_refused_and_nothing_is_logged(lab, bench):
    session = lab.judge(bench[1], judge="ann", seed=1)
    pair = session.pair
    with pytest.raises(ValueError, match="choice='left'.*'a'.*'b'.*'tie'.*'skip'"):
        session.choose("left")
    assert session.pair == pair and len(lab.log.judgments()) == 0


def test_fewer_than_two_items_says_what_to_pass(lab, bench):
    ids = bench[1]
    same_prompt = [r for r in ids if items(lab)[r] == PROMPTS[0]]
    with pytest.raises(ValueError, match=r"nothing to compare by 'prompt'.*Pass runs.*by='run_id'"):
        lab.judge(same_prompt)
    with pytest.raises(ValueError, match="nothing to compare"):
        lab.judge(ids[:1], by="run_id")
    with pytest.raises(ValueError, match="not a log column"):
        lab.judge(ids, by="colour")
    with pytest.raises(TypeError, match="list of run ids or Jobs"):
        lab.judge(42)
    # runs of one prompt are still comparable one by one
    assert lab.judge(same_prompt, by="run_id", judge="ann").pair is not None


def test_runs_come_as_a_frame_a_sweep_ids_or_jobs_and_only_playable_ones_count(lab, bench, tmp_path):
    ids = bench[1]
    df = lab.log.df
    from_frame = lab.judge(df[df["run_id"].isin(ids)], judge="ann")
    assert set(from_frame.item_of) == set(ids)
    sweep = lab.sweep(T2V(PROMPTS[0], duration=2, seed=1), prompt=PROMPTS, seed=[1, 2]).run(progress=False)
    assert sorted(sweep.run_ids) == sorted(ids)  # reused from the log: nothing new was run
    assert set(lab.judge(sweep, judge="ann").item_of) == set(ids)
    everything = lab.judge(judge="ann")  # None: every succeeded run with a video
    assert set(everything.item_of) == set(ids)
    job = lab.run_sync(T2V("a fourth prompt", duration=2, seed=9), timeout=60)
    with_job = lab.judge([job, ids[0]], judge="ann")
    assert set(with_job.item_of) == {job.id, ids[0]}
    job.video_path.unlink()  # a run whose file is gone cannot be shown
    assert job.id not in lab.judge(judge="ann").item_of


def test_the_judge_defaults_to_the_user_name(lab, bench, monkeypatch):
    monkeypatch.setattr(judging.getpass, "getuser", lambda: "tester")
    session = lab.judge(bench[1], seed=2)
    session.choose("a")
    assert list(lab.log.judgments()["judge"]) == ["tester"]

    def no_user() -> str:
        raise KeyError("no user")

    monkeypatch.setattr(judging.getpass, "getuser", no_user)
    assert lab.judge(bench[1]).judge == "anonymous"


def test_the_widget_carries_both_videos_and_no_labels(lab, bench):
    session = judging.start(lab, bench[1], by="prompt", judge="ann", seed=4, view=judge_view)
    widget = session.widget()
    assert isinstance(widget, JudgeWidget) and session.widget() is widget
    pair = session.pair
    assert widget.left == session.video(pair.left) and widget.right == session.video(pair.right)
    assert widget.left[4:8] == b"ftyp" and widget.right[4:8] == b"ftyp" and widget.left != widget.right
    assert KEYS in widget.key_help and "A better" in widget._esm and "Skip" in widget._esm
    # nothing the browser receives names a prompt or a run (the videos' own bytes aside)
    state = widget.get_state()
    text = repr({k: v for k, v in state.items() if k not in ("left", "right")}) + widget._esm + widget._css
    df = lab.log.frame()
    for secret in [*PROMPTS, *df["run_id"], *map(str, df["path"])]:
        assert secret not in text
    for word in ("kite", "boat", "lighthouse"):
        assert word not in text
    # a click in the browser is a message: the choice is logged, the next pair is loaded
    before = widget.pair
    widget._on_msg(widget, {"choice": "a", "pair": widget.pair}, [])
    j = lab.log.judgments()
    assert len(j) == 1 and j.loc[0, "left"] == pair.left and widget.pair == before + 1
    assert widget.status.startswith("1 judged")
    # a late click on a pair already gone logs nothing
    widget._on_msg(widget, {"choice": "b", "pair": before}, [])
    assert len(lab.log.judgments()) == 1
    # the notebook shows the widget
    bundle = session._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.model_id


def test_the_widget_says_done_and_can_ask_for_more(lab, bench):
    session = judging.start(lab, bench[1], by="prompt", judge="ann", seed=4, target=1, view=judge_view)
    widget = session.widget()
    while not session.done:
        widget._on_msg(widget, {"choice": "tie", "pair": widget.pair}, [])
    assert widget.done and widget.left == b"" and widget.right == b"" and widget.can_continue
    assert "done" in widget.status
    widget._on_msg(widget, {"more": True}, [])
    assert not session.done and not widget.done and widget.left and session.target == 1 + judging.TARGET
