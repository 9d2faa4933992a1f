"""Blind judging in a real browser: JupyterLab + Debian's Chromium (Playwright) run a notebook that makes
two runs with different prompts on the embedded sim and shows `lab.judge(...)`. Both videos must decode
and play in sync; "A better" and a key press must land in the log with the right run ids; the widget
must show no prompt and no run id. Screenshot: tests/artifacts/judge.png.

Skips (does not fail) when /usr/bin/chromium, jupyterlab, playwright or anywidget are missing.
"""
from __future__ import annotations

import importlib.util

import pytest

from tests._browser_helpers import jupyter_lab, run_all_cells
from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.test_browser import pytestmark as browser_marks

pytestmark = [*browser_marks,
              pytest.mark.skipif(importlib.util.find_spec("anywidget") is None, reason="needs anywidget (pip)")]

PROMPTS = ("a red kite over a green hill", "a paper boat on a rainy street")
CELLS = [
    "import wanlab\n"
    "lab = wanlab.Lab(time_scale=0.002, quiet=True)\n"
    f"jobs = [lab.run_sync(wanlab.T2V(p, duration=2, seed=7), timeout=120) for p in {PROMPTS!r}]",
    "session = lab.judge(jobs, judge='browser', seed=1)\n"
    "session",
]

BOTH_DECODED = """() => {
    const v = [...document.querySelectorAll('.wanlab-judge video')];
    return v.length === 2 && v.every(x => x.readyState >= 2 && x.videoWidth > 0);
}"""


def _videos(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('.wanlab-judge video')].map(v => ({
        paused: v.paused, t: v.currentTime, w: v.videoWidth, h: v.videoHeight, ready: v.readyState,
        src: v.currentSrc.slice(0, 5)}))""")


def test_judge_two_videos_in_sync_and_log_the_choice(tmp_path):
    from playwright.sync_api import sync_playwright

    from wanlab import ExperimentLog

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "judge.png"
    with jupyter_lab(tmp_path, CELLS, "judge.ipynb") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/judge.ipynb", wait_until="domcontentloaded")
            run_all_cells(page, ".wanlab-judge video")
            widget = page.locator(".wanlab-judge")
            page.wait_for_function(BOTH_DECODED, timeout=60_000)
            info = _videos(page)
            assert all(v["w"] == 1280 and v["h"] == 720 and v["src"] == "blob:" for v in info), info

            # in sync: pause one → both pause; play one → both play; seek one → the other follows
            page.evaluate("() => document.querySelector('.wanlab-judge .wj-a').pause()")
            page.wait_for_function("() => [...document.querySelectorAll('.wanlab-judge video')].every(v => v.paused)",
                                   timeout=10_000)
            page.evaluate("() => { const b = document.querySelector('.wanlab-judge .wj-b'); b.currentTime = 1.0; }")
            page.wait_for_function("""() => { const [a, b] = document.querySelectorAll('.wanlab-judge video');
                return !a.seeking && !b.seeking && Math.abs(a.currentTime - 1.0) < 0.15; }""", timeout=10_000)
            page.evaluate("() => document.querySelector('.wanlab-judge .wj-b').play()")
            page.wait_for_function("""() => [...document.querySelectorAll('.wanlab-judge video')]
                .every(v => !v.paused && v.currentTime > 1.2)""", timeout=10_000)
            assert all(v["w"] > 0 for v in _videos(page))

            # blind: the widget shows "A", "B", the buttons and a counter — no prompt, no run id
            text = widget.inner_text()
            for word in ("kite", "boat", "hill", "street"):
                assert word not in text, text
            assert "A better" in text and "B better" in text and "Tie" in text and "Skip" in text
            assert "0 judged" in text and "left to reach 5 per prompt" in text
            widget.scroll_into_view_if_needed()
            page.wait_for_timeout(300)  # let the frames under the controls paint before the picture
            widget.screenshot(path=str(shot))

            # "A better" by click, then "B better" by the b key; each loads the next pair
            page.locator(".wanlab-judge button", has_text="A better").click()
            page.locator(".wanlab-judge .wj-status", has_text="1 judged").wait_for(timeout=20_000)
            page.wait_for_function(BOTH_DECODED, timeout=30_000)
            page.locator(".wanlab-judge .wj-keys").click()  # focus the widget, as a user's click would
            page.keyboard.press("b")  # in JupyterLab's command mode, b would insert a cell below
            page.locator(".wanlab-judge .wj-status", has_text="2 judged").wait_for(timeout=20_000)
            # the key went to the widget, not to JupyterLab: no cell was added
            assert page.locator(".jp-Cell").count() == len(CELLS)
            page.wait_for_function(BOTH_DECODED, timeout=30_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "judge-failure.png"))   # what the browser showed
            raise
        finally:
            browser.close()

    log = ExperimentLog(tmp_path / "wanlab-runs" / "runs.sqlite")
    try:
        runs = log.frame(status="SUCCEEDED")
        run_of = dict(zip(runs["prompt"], runs["run_id"], strict=True))
        j = log.judgments()
    finally:
        log.close()
    assert set(run_of) == set(PROMPTS)
    assert len(j) == 2 and (j["judge"] == "browser").all() and (j["by"] == "prompt").all()
    for (_, row), winner_side in zip(j.iterrows(), ("left", "right"), strict=True):
        assert {row["a"], row["b"]} == set(run_of.values())
        assert row["left"] in (row["a"], row["b"])
        shown_right = row["b"] if row["left"] == row["a"] else row["a"]
        winner = row["left"] if winner_side == "left" else shown_right
        assert row["choice"] == ("a" if winner == row["a"] else "b"), row.to_dict()
    assert shot.stat().st_size > 20_000
