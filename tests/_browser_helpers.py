"""JupyterLab in a subprocess on a notebook of given cells, for real-browser tests (Debian's Chromium via
Playwright), shared by tests/test_browser.py and tests/test_browser_judge.py."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


@contextmanager
def jupyter_lab(root: Path, cells: list[str], name: str) -> Iterator[str]:
    """Write `root/name` with `cells`, serve `root` with JupyterLab (the embedded sim: no keys; WANLAB_HOME
    under `root`; no news, no update checks) and yield its base URL."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    # a kernelspec, or JupyterLab asks which kernel in a modal dialog
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / name)
    port = _free_port()
    share = str(Path(sys.prefix) / "share" / "jupyter")  # the venv's lab extensions (anywidget's among them)
    env = {**os.environ, "WANLAB_HOME": str(root / "wanlab-runs"),
           "JUPYTER_PATH": os.pathsep.join(p for p in (share, os.environ.get("JUPYTER_PATH", "")) if p),
           "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces")}
    for key in ("DASHSCOPE_API_KEY", "WAVESPEED_API_KEY", "WANLAB_PROVIDER"):
        env.pop(key, None)                       # the embedded sim, whatever the machine has set
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(root / "jupyter.log", "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_all_cells(page, ready_selector: str, attempts: int = 4, timeout_ms: int = 60_000) -> None:
    """Wait for the kernel, then Run ▸ Run All Cells until `ready_selector` appears (a click that lands
    while JupyterLab is still settling is dropped, so it is tried again)."""
    page.locator(".jp-Notebook").wait_for(timeout=60_000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=60_000)
    for attempt in range(attempts):
        page.locator(".jp-Cell").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.locator(ready_selector).first.wait_for(timeout=timeout_ms)
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
