"""The command line, each command run as a subprocess (`python -m wanlab …`) with no API key in its
environment: generate, runs, show, resume, estimate and export on the embedded sim or on a `wanlab sim`
subprocess; bad input exits 2 with nothing sent (the sim's stats say so), a task the host fails exits 1, and
Ctrl-C cancels the task on the host."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wanlab.cli import build_parser
from wanlab.log import NAMES, ExperimentLog

from .media_fixtures import media_files  # noqa: F401  (a fixture)
from .test_sim_cli import ROOT, start_sim, stop_sim

FAST = ("--time-scale", "0.002")
BANNER = "using the embedded simulator"


def _env(home: Path, **extra: str) -> dict[str, str]:
    keys = ("DASHSCOPE_API_KEY", "WAVESPEED_API_KEY", "WANLAB_PROVIDER", "DASHSCOPE_REGION")
    env = {k: v for k, v in os.environ.items() if k not in keys}
    env.update(WANLAB_HOME=str(home), PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **extra)
    return env


def wanlab(home: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wanlab", *args],
        capture_output=True,
        text=True,
        env=_env(home, **env),
        cwd=home.parent,
        timeout=timeout,
    )


def _rows(home: Path) -> list[dict]:
    db = home / "runs.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute("SELECT * FROM runs ORDER BY created")]


@pytest.fixture(scope="module")
def sim():
    """One `wanlab sim` subprocess for the module: its URLs."""
    proc, urls = start_sim("--time-scale", "0.002", "--seed", "3")
    yield urls
    stop_sim(proc)


def _stats(sim: dict[str, str]) -> dict:
    return httpx.get(sim["stats"]).json()


def _on(sim: dict[str, str]) -> tuple[str, ...]:
    return ("--provider", "sim", "--base-url", sim["dashscope"], *FAST)


# -- generate ---------------------------------------------------------------------------------------
def test_generate_t2v_on_the_embedded_sim_then_reuses_it_unless_fresh(tmp_path):
    home = tmp_path / "home"
    first = wanlab(home, "generate", "a red kite over a green hill", "--duration", "2", "--seed", "4", *FAST)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("SUCCEEDED") and BANNER not in first.stdout
    assert BANNER in first.stderr and "SUCCEEDED at" in first.stderr  # progress lines (stderr is not a TTY)
    (row,) = _rows(home)
    assert row["status"] == "SUCCEEDED" and Path(row["path"]).is_file() and row["path"] in first.stdout
    assert f"run {row['run_id']}" in first.stdout and "USD" in first.stdout

    again = wanlab(home, "generate", "a red kite over a green hill", "--duration", "2", "--seed", "4", *FAST, "--json")
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)  # stdout is the JSON object alone: no banner, no progress
    assert out["reused"] is True and out["run_id"] == row["run_id"] and out["path"] == row["path"]
    assert len(_rows(home)) == 1  # nothing paid twice

    fresh = wanlab(home, "generate", "a red kite over a green hill", "--duration", "2", "--seed", "4", *FAST, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert len(_rows(home)) == 2


@pytest.mark.parametrize(
    "mode, media", [("i2v", ("--image", "red", "--duration", "2")), ("extend", ("--video", "clip3", "--duration", "5"))]
)
def test_generate_with_media_prints_one_json_object(tmp_path, media_files, mode, media):  # noqa: F811
    home = tmp_path / "home"
    flags = [media_files[m] if m in media_files else m for m in media]
    got = wanlab(home, "generate", "it starts to rain", "--mode", mode, *map(str, flags), "--json", *FAST)
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert set(out) >= {"run_id", "status", "task_id", "path", "latency_s", "cost", "currency", "model", "host"}
    assert out["status"] == "SUCCEEDED" and Path(out["path"]).is_file() and out["latency_s"] > 0
    assert out["currency"] and out["cost"] > 0 and out["reused"] is False
    (row,) = _rows(home)
    assert row["mode"] == mode and row["task_id"] == out["task_id"]


@pytest.mark.parametrize(
    "args, said",
    [
        (("x", "--mode", "i2v", "--image", "{missing}"), "no such file"),
        (("x", "--resolution", "4K"), "4K"),
        (("x", "--duration", "2", "--budget", "0.01"), "budget"),
        (("x", "--mode", "flf2v", "--image", "{red}"), "two --image"),
        (("x", "--image", "{red}"), "--image is not an input of --mode t2v"),
        (("x", "--mode", "i2v", "--image", "{red}", "--ratio", "1:1"), "--ratio does not apply"),
        (("x", "--model", "wan2.7-t2v", "--region", "virginia"), "not served in DashScope virginia"),
        (("x", "--provider", "nope"), "invalid choice"),
        (("x", "--duration", "99"), "duration=99"),
    ],
)
def test_bad_input_exits_2_with_the_message_and_sends_nothing(sim, tmp_path, media_files, args, said):  # noqa: F811
    home = tmp_path / "home"
    args = tuple(a.format(missing=media_files["missing"], red=media_files["red"]) for a in args)
    before = _stats(sim)
    got = wanlab(home, "generate", *args, *_on(sim))
    assert got.returncode == 2, got.stderr
    assert said in got.stderr and got.stdout == ""
    after = _stats(sim)
    assert after["submits"] == before["submits"] and after["requests"] == before["requests"]  # no submit, no upload
    assert _rows(home) == []  # nothing logged either


def test_a_task_the_host_fails_exits_1_with_its_code(sim, tmp_path):
    httpx.post(sim["stats"].replace("stats", "faults"), json={"spec": "task:fail=InternalError.Algo#1", "append": True})
    home = tmp_path / "home"
    got = wanlab(home, "generate", "a storm at sea", "--duration", "2", "--json", *_on(sim))
    assert got.returncode == 1, got.stderr
    out = json.loads(got.stdout)
    assert out["status"] == "FAILED" and out["error_code"] == "InternalError.Algo" and out["path"] is None
    assert "InternalError.Algo" in got.stderr


def test_ctrl_c_cancels_the_task_on_the_host(tmp_path):
    # a slow sim (time scale 10: a task waits ~40 s PENDING), so the cancel lands while DashScope accepts it
    proc, urls = start_sim("--time-scale", "10")
    home = tmp_path / "home"
    try:
        gen = subprocess.Popen(
            [sys.executable, "-m", "wanlab", "generate", "a slow kite", "--duration", "2", "--json",
             "--provider", "sim", "--base-url", urls["dashscope"], "--time-scale", "0.01"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(home), cwd=tmp_path,
            # a shell that started pytest in the background ignores SIGINT for its children: restore Ctrl-C
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(r["task_id"] for r in _safe_rows(home)):
            assert gen.poll() is None, gen.communicate()
            time.sleep(0.05)
        (row,) = _rows(home)
        gen.send_signal(signal.SIGINT)
        out, err = gen.communicate(timeout=60)
        assert gen.returncode == 130, err
        assert "cancelled on the host" in err
        assert httpx.get(f"{urls['wavespeed']}/_sim/tasks/{row['task_id']}").json()["status"] == "CANCELED"
        assert json.loads(out)["status"] == "CANCELED"
        (after,) = _rows(home)
        assert after["status"] == "CANCELED" and after["cancel"]
    finally:
        stop_sim(proc)


def _safe_rows(home: Path) -> list[dict]:
    try:
        return _rows(home)
    except sqlite3.OperationalError:  # the log is being created
        return []


# -- resume -----------------------------------------------------------------------------------------
def test_resume_finishes_a_run_left_unfinished(sim, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    log = ExperimentLog(home / "runs.sqlite")
    log.insert({"run_id": "leftover", "created": time.time(), "status": "QUEUED", "host": "sim",
                "protocol": "dashscope", "region": "singapore", "base_url": sim["dashscope"], "model": "wan2.7-t2v",
                "mode": "t2v", "prompt": "a kite left behind", "resolution": "720P", "duration": 2, "seed": 5,
                "params": json.dumps({"ratio": "16:9"}), "inputs": "{}"})
    log.close()
    before = _stats(sim)["submits"]
    got = wanlab(home, "resume", "--json", *_on(sim))
    assert got.returncode == 0, got.stderr
    (out,) = json.loads(got.stdout)
    assert out["run_id"] == "leftover" and out["status"] == "SUCCEEDED" and Path(out["path"]).is_file()
    assert _stats(sim)["submits"] == before + 1 and "resumed 1" in got.stderr
    again = wanlab(home, "resume", "--json", *_on(sim))
    assert again.returncode == 0 and json.loads(again.stdout) == [] and _stats(sim)["submits"] == before + 1


# -- estimate ---------------------------------------------------------------------------------------
def test_estimate_prices_a_grid_and_logs_nothing(tmp_path):
    home = tmp_path / "home"
    grid = ("estimate", "a kite", "--resolution", "720P", "1080P", "--duration", "5", "10", "--seed", "1", "2")
    got = wanlab(home, *grid, "--json")
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["runs"] == len(out["cells"]) == 8 and out["unknown"] == 0
    (currency,) = out["totals"]
    assert out["totals"][currency] == pytest.approx(sum(c["amount"] for c in out["cells"]))
    by = {(c["resolution"], c["duration"]): c["amount"] for c in out["cells"]}
    assert by[("1080P", 10)] > by[("720P", 10)] > by[("720P", 5)]
    text = wanlab(home, *grid)
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 1 + 8 + 2
    assert f"total: {out['totals'][currency]:.2f} {currency} for 8 run(s)" in text.stdout
    assert not home.exists()  # nothing logged: not even a log file


# -- reading the log --------------------------------------------------------------------------------
@pytest.fixture
def logged(tmp_path) -> Path:
    """A home whose log holds three runs: two kites (one FAILED, half an hour ago) and an old boat."""
    home = tmp_path / "home"
    home.mkdir()
    now = time.time()
    base = {"host": "sim", "protocol": "dashscope", "region": "singapore", "model": "wan2.7-t2v", "mode": "t2v",
            "resolution": "720P", "duration": 5}
    log = ExperimentLog(home / "runs.sqlite")
    log.insert({**base, "run_id": "aaa111kite01", "study": "kites", "created": now - 3600, "status": "SUCCEEDED",
                "prompt": "a red kite", "seed": 1, "latency_s": 12.5, "cost": 0.5, "currency": "USD",
                "path": str(home / "v1.mp4")})
    log.insert({**base, "run_id": "aaa222kite02", "study": "kites", "created": now - 1800, "status": "FAILED",
                "prompt": "a blue kite", "seed": 2, "error_code": "InternalError.Algo", "error_message": "boom"})
    log.insert({**base, "run_id": "bbb333boat03", "study": "boats", "created": now - 3 * 86400,
                "status": "SUCCEEDED", "prompt": "a paper boat", "seed": 3, "cost": 0.5, "currency": "USD"})
    log.close()
    return home


def _ids(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines()[1:]]


def test_runs_table_and_filters(logged):
    got = wanlab(logged, "runs")
    assert got.returncode == 0, got.stderr
    assert _ids(got.stdout) == ["bbb333boat03", "aaa111kite01", "aaa222kite02"]  # oldest first
    assert "12.5 s" in got.stdout and "0.50 USD" in got.stdout and "a paper boat" in got.stdout
    assert _ids(wanlab(logged, "runs", "--study", "kites").stdout) == ["aaa111kite01", "aaa222kite02"]
    assert _ids(wanlab(logged, "runs", "--status", "failed").stdout) == ["aaa222kite02"]
    assert _ids(wanlab(logged, "runs", "--since", "2h").stdout) == ["aaa111kite01", "aaa222kite02"]
    limited = wanlab(logged, "runs", "--limit", "1")
    assert _ids(limited.stdout) == ["aaa222kite02"] and "newest 1 of 3" in limited.stderr
    bad = wanlab(logged, "runs", "--since", "last tuesday")
    assert bad.returncode == 2 and "--since" in bad.stderr and bad.stdout == ""
    missing = wanlab(logged.parent / "elsewhere", "runs")
    assert missing.returncode == 2 and "no wanlab log" in missing.stderr
    assert not (logged.parent / "elsewhere").exists()  # reading never creates a log


def test_runs_csv_json_parquet(logged, tmp_path):
    got = wanlab(logged, "runs", "--format", "csv", "--study", "kites")
    assert got.returncode == 0, got.stderr
    rows = list(csv.DictReader(io.StringIO(got.stdout)))
    assert [r["run_id"] for r in rows] == ["aaa111kite01", "aaa222kite02"] and set(rows[0]) == set(NAMES)
    records = json.loads(wanlab(logged, "runs", "--format", "json", "--status", "SUCCEEDED").stdout)
    assert [r["run_id"] for r in records] == ["bbb333boat03", "aaa111kite01"] and records[1]["cost"] == 0.5
    assert wanlab(logged, "runs", "--format", "parquet").returncode == 2  # a file format needs --out
    out = tmp_path / "runs.parquet"
    assert wanlab(logged, "runs", "--format", "parquet", "--out", str(out)).returncode == 0
    import pandas as pd

    assert list(pd.read_parquet(out)["run_id"]) == ["bbb333boat03", "aaa111kite01", "aaa222kite02"]


def test_show_one_run_by_id_or_unique_prefix(logged):
    got = wanlab(logged, "show", "aaa2")
    assert got.returncode == 0, got.stderr
    fields = dict(line.split(None, 1) for line in got.stdout.splitlines() if len(line.split(None, 1)) == 2)
    assert fields["run_id"] == "aaa222kite02" and fields["error_code"] == "InternalError.Algo"
    assert fields["error_message"] == "boom" and fields["status"] == "FAILED"
    out = json.loads(wanlab(logged, "show", "aaa111kite01", "--json").stdout)
    assert set(out) == set(NAMES) and out["path"].endswith("v1.mp4") and out["created"].endswith("+00:00")
    ambiguous = wanlab(logged, "show", "aaa")
    assert ambiguous.returncode == 2 and "aaa111kite01" in ambiguous.stderr and "aaa222kite02" in ambiguous.stderr
    assert wanlab(logged, "show", "zzz").returncode == 2


def test_export_csv_and_parquet(logged, tmp_path):
    got = wanlab(logged, "export", "csv", "--out", str(tmp_path / "all.csv"))
    assert got.returncode == 0, got.stderr
    assert len(list(csv.DictReader((tmp_path / "all.csv").open()))) == 3 and "3 runs" in got.stdout
    assert wanlab(logged, "export", "parquet", "--out", str(tmp_path / "all.parquet")).returncode == 0
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "all.parquet")) == 3
    assert wanlab(logged, "export", "csv", "--out", str(tmp_path / "no" / "dir.csv")).returncode == 2


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow not installed: export mlflow untested")
def test_export_mlflow(logged, tmp_path):
    uri = f"sqlite:///{tmp_path}/tracking.db"
    got = wanlab(logged, "export", "mlflow", "--experiment", "cli-test", "--tracking-uri", uri)
    assert got.returncode == 0, got.stderr
    assert "3 runs" in got.stdout and (tmp_path / "tracking.db").is_file()
    assert not (logged.parent / "mlflow.db").exists()  # the URI given, not MLflow's default in the cwd


# -- the command line itself ------------------------------------------------------------------------
def test_every_command_is_there_and_importing_the_cli_does_nothing(tmp_path):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) >= {"generate", "runs", "show", "resume", "estimate", "export", "demo", "sim"}
    helped = wanlab(tmp_path / "home", "--help")
    assert helped.returncode == 0 and "generate" in helped.stdout
    probe = ("import sys, wanlab.cli; heavy = ('pandas', 'wanlab.sim', 'uvicorn', 'ipywidgets');"
             "print([m for m in heavy if m in sys.modules])")
    got = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=_env(tmp_path / "home"))
    assert got.stdout.strip() == "[]", got.stderr
    assert not (tmp_path / "home").exists()


def test_generate_reuses_a_run_another_process_finished_after_its_first_look(tmp_path, monkeypatch, capsys, sim):
    """`generate` looks for a finished twin first, for its message; one finished in between (another process
    running the same command) is found again where the new run would be logged, and nothing is sent."""
    import wanlab.cli._generate as generate
    from wanlab.cli import main

    home = tmp_path / "home"
    monkeypatch.setenv("WANLAB_HOME", str(home))
    cmd = ["generate", "a red kite over a green hill", "--duration", "2", "--seed", "6", *_on(sim), "--json"]
    submits = _stats(sim)["submits"]
    assert main(cmd) == 0
    first = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(generate, "finished_twin", lambda *a, **k: None)    # its first look found nothing …
    assert main(cmd) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["reused"] is True and again["run_id"] == first["run_id"]   # … the log's transaction did
    assert len(_rows(home)) == 1 and _stats(sim)["submits"] == submits + 1
