"""End to end in a real browser: JupyterLab + Debian's Chromium driven by Playwright open a notebook,
run all cells, click the form's Generate button and wait until the card's video decodes.

Skips (does not fail) when /usr/bin/chromium, jupyterlab or playwright are missing; CI installs them
(`apt-get install -y chromium`, `pip install jupyterlab playwright`; never `playwright install`).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests._browser_helpers import jupyter_lab

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install -y chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs playwright (pip)"),
    pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None, reason="needs jupyterlab (pip)"),
]

CELLS = [
    "import wanlab\n"
    "lab = wanlab.Lab(time_scale=0.002, quiet=True)\n"
    "form = lab.form(prompt='a red kite over a green hill', duration=2, seed=7, lock_seed=True)\n"
    "form",
]


@pytest.fixture
def lab_server(tmp_path):
    with jupyter_lab(tmp_path, CELLS, "ui.ipynb") as url:
        yield url, tmp_path


def test_generate_in_jupyterlab_plays_the_video(lab_server):
    from playwright.sync_api import sync_playwright

    url, root = lab_server
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "ui.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(f"{url}/lab/tree/ui.ipynb", wait_until="domcontentloaded")
            page.locator(".jp-Notebook").wait_for(timeout=60_000)
            # the kernel must be up before Run All, or the run queues behind its start
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=60_000)
            generate = page.locator("button.jupyter-button", has_text="Generate")
            for attempt in range(4):
                # focus the notebook, then Run ▸ Run All Cells; a click that lands while JupyterLab is
                # still settling is dropped, so look for the form and try again
                page.locator(".jp-Cell").first.click()
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
                try:
                    generate.wait_for(timeout=15_000)
                    break
                except Exception:
                    if attempt == 3:
                        raise
                    page.keyboard.press("Escape")
            generate.click()
            video = page.locator(".widget-output video")
            video.wait_for(state="attached", timeout=60_000)
            # preload="none": nothing loads until asked; play (muted) as the user's click would
            page.evaluate("() => document.querySelectorAll('video').forEach(v => v.play())")
            page.wait_for_function(
                "() => [...document.querySelectorAll('video')].some(v => v.videoWidth > 0 && v.currentTime > 0.4)",
                timeout=30_000)
            info = page.evaluate("""() => [...document.querySelectorAll('video')].map(v => {
                v.pause(); return {w: v.videoWidth, h: v.videoHeight, src: v.currentSrc,
                                   poster: (v.poster || '').slice(0, 22)}; })""")
            video.first.scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "ui-failure.png"))   # what the browser showed
            raise
        finally:
            browser.close()
    assert info and info[0]["w"] == 1280 and info[0]["h"] == 720, info
    assert "/files/" in info[0]["src"], info          # JupyterLab served it: the src was rewritten
    assert info[0]["poster"].startswith("data:image/jpeg"), info
    assert list((root / "wanlab-runs" / "media").glob("*/*.mp4"))
    assert shot.stat().st_size > 10_000
