"""A small fault soak (the full one is bench/soak.py): 60 jobs against the sim with random 429 / 5xx /
resets / task failures / truncated downloads, plus one scripted instance of each rare fault so every
recovery path runs in every CI run. Then: 0 runs lost, 0 duplicate submits, every row terminal, every
file verified, FAILED rows = the injected task failures."""
from __future__ import annotations

import importlib.util
import socket
import statistics
import time
from pathlib import Path

import pytest
import requests

from wanlab.sim import SimServer

_SOAK_PATH = Path(__file__).resolve().parents[1] / "bench" / "soak.py"
_spec = importlib.util.spec_from_file_location("wanlab_bench_soak", _SOAK_PATH)
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)

# Scripted on top of the random mix: the ambiguous submit (task created, connection dropped), a 500 on
# submit (reconciled: no task, so re-sent), a reset before the task exists, a truncated download and a
# failed task — each at least once regardless of the random draws.
# Listed first: when several faults match a request, the first listed that fires wins.
CI_FAULTS = ("submit:accept_reset#5,submit:500#9,submit:reset#13,download:truncate#3,task:fail#2,list:503#1,"
             + soak.FAULTS)


@pytest.mark.timeout(120)
def test_small_fault_soak(tmp_path):
    t0 = time.monotonic()
    r = soak.run_soak(60, time_scale=0.01, faults=CI_FAULTS, seed=11, concurrency=30, distinct=6,
                      home=tmp_path / "soak", timeout=90)
    assert r["findings"] == [], "\n".join(r["findings"])
    assert r["lost"] == 0 and r["non_terminal"] == 0 and r["log_rows"] == 60
    assert r["duplicate_task_ids"] == 0 and r["orphan_sim_tasks"] == 0
    assert r["sim_tasks_created"] == r["distinct_logged_task_ids"] == 60
    assert r["files_verified"] == r["statuses"].get("SUCCEEDED", 0) and r["bad_files"] == 0
    assert r["failed_rows"] == r["injected_task_failures"] >= 1
    assert r["unexplained_failures"] == []
    # the scripted faults really fired, and the client took the paths they exist for
    injected = r["faults_injected"]
    for name in ("submit:accept_reset", "submit:500", "submit:reset", "download:truncate", "task:fail",
                 "submit:429", "query:429"):
        assert injected.get(name, 0) >= 1, (name, injected)
    assert r["client_stats"]["reconciled"] >= 1          # the accept_reset task was adopted, not re-sent
    assert r["client_stats"]["resubmits"] >= 1           # the 500 with no task was proven, then re-sent
    assert time.monotonic() - t0 < 90


def _keepalive_get_ms(sim: SimServer) -> float:
    with requests.Session() as s:
        s.get(f"{sim.url}/_sim/health")
        times = []
        for _ in range(10):
            t = time.perf_counter()
            s.get(f"{sim.url}/_sim/health")
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def test_sim_answers_keepalive_requests_without_nagle_delay():
    with SimServer(time_scale=0.01) as sim:
        assert sim._sock.proto == socket.IPPROTO_TCP
        assert _keepalive_get_ms(sim) < 15
