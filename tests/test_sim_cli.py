"""`wanlab sim` from the command line: prints both base URLs and serves them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wanlab.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def start_sim(*args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """`python -m wanlab.cli sim --port 0 …` in a subprocess, and the URLs it prints: "dashscope" (the
    Singapore base URL), "wavespeed" and "stats". Stop it with `stop_sim`."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wanlab.cli", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines = []
    deadline = time.time() + 30
    while time.time() < deadline and len(lines) < 4:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    text = "".join(lines)
    ds = re.search(r"DashScope:\s+(http://127\.0\.0\.1:\d+/api/v1)", text)
    ws = re.search(r"WaveSpeed:\s+(http://127\.0\.0\.1:\d+)", text)
    if not (ds and ws):
        stop_sim(proc)
        raise AssertionError(f"wanlab sim did not print its URLs: {text}{proc.stderr.read()}")
    return proc, {"dashscope": ds.group(1), "wavespeed": ws.group(1), "stats": ws.group(1) + "/_sim/stats"}


def stop_sim(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_cli_sim_prints_urls_and_serves():
    proc, urls = start_sim("--time-scale", "0.01", "--faults", "query:503#1")
    try:
        h = {"Authorization": "Bearer sk-cli"}
        for _ in range(100):
            try:
                r = httpx.get(urls["dashscope"] + "/tasks/abc", headers=h)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert r.status_code == 503  # the --faults spec is in force
        assert httpx.get(urls["dashscope"] + "/tasks/abc", headers=h).json()["output"]["task_status"] == "UNKNOWN"
        assert httpx.get(urls["stats"]).json()["requests"]["query"] == 2
    finally:
        stop_sim(proc)


def test_cli_rejects_bad_fault_spec(capsys):
    assert main(["sim", "--faults", "query:teapot"]) == 2
    assert "teapot" in capsys.readouterr().err


def test_parser_has_sim_and_is_extensible():
    parser = build_parser()
    args = parser.parse_args(["sim", "--time-scale", "0.5"])
    assert args.command == "sim" and args.time_scale == 0.5 and args.port == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["nope"])
