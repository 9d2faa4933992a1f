"""Nothing paid twice across kernels: kill -9 mid-sweep and Run All again at once (the real default lease),
two kernels running the same sweep at once, two kernels on one key with dropped submit answers, and the
lease rules behind them (a dead owner on this machine is seen at once; another machine's lease runs out)."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wanlab import T2V, Lab, Status, WanlabError
from wanlab.log import LEASE_S, ExperimentLog, owner_alive
from wanlab.sim import SimServer

from .conftest import FAST_RETRY, KEY

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
TS = 0.004

# One notebook's cells as a script: make a Lab, run a seeded sweep (or submit distinct runs), wait.
KERNEL = textwrap.dedent("""
    import json, sys
    from wanlab import Lab, T2V, RetryPolicy
    args = json.loads(sys.argv[1])
    lab = Lab(provider="dashscope", api_key=args["key"], base_url=args["url"], home=args["home"],
              time_scale=args["ts"], retry=RetryPolicy(base_s=0.02, max_backoff_s=0.2, budget_s=60.0), quiet=True)
    if args["mode"] == "sweep":
        sweep = lab.sweep(T2V("a paper boat on a stream", duration=2, seed=1), seed=args["seeds"], study="restart")
        sweep.run(progress=False, timeout=240)
    else:
        jobs = [lab.submit(T2V("a paper boat, take %d" % s, duration=2, seed=s)) for s in args["seeds"]]
        lab.wait(jobs, timeout=240)
    print("done", flush=True)
    lab.close()
""")


def _kernel(tmp_path: Path, **args) -> subprocess.Popen:
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL)
    return subprocess.Popen([sys.executable, str(script), json.dumps({"key": KEY, "ts": TS, **args})],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)


def _rows(db: Path) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT status, task_id FROM runs").fetchall()
    except sqlite3.OperationalError:
        return []


def _same_sweep(lab: Lab, seeds: list[int]):
    return lab.sweep(T2V("a paper boat on a stream", duration=2, seed=1), seed=seeds, study="restart")


def test_kill_9_mid_sweep_then_run_all_again_pays_once(tmp_path):
    """The most common recovery: the kernel dies mid-sweep, a new one starts at once (the dead kernel's
    60 s leases have not run out), and Run All re-runs the same cell. Every run finishes, each sent once."""
    seeds = list(range(1000, 1040))
    home = tmp_path / "home"
    db = home / "runs.sqlite"
    with SimServer(time_scale=TS, seed=5, faults="submit:slow=0.1@0.3, download:slow=0.1@0.3") as sim:
        child = _kernel(tmp_path, url=sim.dashscope_url(), home=str(home), mode="sweep", seeds=seeds)
        try:
            deadline = time.monotonic() + 120
            while True:
                rows = _rows(db)
                done = sum(s in TERMINAL for s, _ in rows)
                if done >= 8 and sum(s not in TERMINAL for s, _ in rows) >= 3:
                    break
                assert child.poll() is None, child.stderr.read().decode()[-3000:]
                assert time.monotonic() < deadline, f"never mid-sweep: {rows}"
                time.sleep(0.005)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
            with child:  # closes its pipes (else a ResourceWarning at exit)
                pass
        left = [s for s, _ in _rows(db) if s not in TERMINAL]
        assert left, "the kill left nothing unfinished"
        lab = Lab(provider="dashscope", api_key=KEY, base_url=sim.dashscope_url(), home=home, time_scale=TS,
                  retry=FAST_RETRY, quiet=True)
        try:
            assert lab.log.lease_s == LEASE_S                # the real default: nothing waited for it
            assert len(lab.resumed) == len(left) and lab.left_to_others == []
            sweep = _same_sweep(lab, seeds).run(progress=False, timeout=240)
            stats = sim.stats()
            rows = lab.log.rows()
            assert len(rows) == 40 and stats["submits"] == 40, (stats["submits"], len(rows), left)
            assert [r["status"] for r in rows] == ["SUCCEEDED"] * 40, [(r["status"], r["error_message"]) for r in rows]
            assert len({r["task_id"] for r in rows}) == 40 and lab.log.unfinished() == []
            assert {sim.task_info(r["task_id"])["seed"] for r in rows} == set(seeds)
            assert sweep.df["status"].tolist() == ["SUCCEEDED"] * 40
        finally:
            lab.close()


def test_two_kernels_running_the_same_sweep_at_once_pay_once(tmp_path):
    seeds = list(range(2000, 2012))
    home = tmp_path / "home"
    with SimServer(time_scale=TS, seed=6) as sim:
        kernels = [_kernel(tmp_path, url=sim.dashscope_url(), home=str(home), mode="sweep", seeds=seeds)
                   for _ in range(2)]
        for k in kernels:
            out, err = k.communicate(timeout=300)
            assert k.returncode == 0 and b"done" in out, err.decode()[-3000:]
        log = ExperimentLog(home / "runs.sqlite")
        rows = log.rows()
        assert sim.stats()["submits"] == 12 and len(rows) == 12
        assert all(r["status"] == "SUCCEEDED" for r in rows) and len({r["task_id"] for r in rows}) == 12


def test_two_kernels_on_one_key_with_dropped_submit_answers_orphan_nothing(tmp_path):
    """A third of the submits create their task but the answer is lost: each kernel must find its own task,
    even with the other kernel's tasks appearing on the same account (the shared log knows them all)."""
    home = tmp_path / "home"
    with SimServer(time_scale=TS, seed=7, faults="submit:accept_reset@0.33") as sim:
        kernels = [_kernel(tmp_path, url=sim.dashscope_url(), home=str(home), mode="submit",
                           seeds=list(range(3000 + 100 * i, 3010 + 100 * i))) for i in range(2)]
        for k in kernels:
            out, err = k.communicate(timeout=300)
            assert k.returncode == 0, err.decode()[-3000:]
        rows = ExperimentLog(home / "runs.sqlite").rows()
        stats = sim.stats()
        assert sum(stats["faults"].values()) >= 3, stats["faults"]     # several answers were lost
        assert len(rows) == 20 and stats["submits"] == 20, (stats["submits"], stats["faults"])
        assert [r["status"] for r in rows] == ["SUCCEEDED"] * 20, [(r["status"], r["error_message"]) for r in rows]
        for r in rows:
            assert sim.task_info(r["task_id"])["seed"] == r["seed"], "a row adopted another row's task"


# -- the lease rules, with an injected clock -----------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


HOLDER = textwrap.dedent("""
    import sys, time
    from wanlab.log import ExperimentLog
    log = ExperimentLog(sys.argv[1], lease_s=3600)
    log.insert({"run_id": sys.argv[2], "created": time.time(), "status": "RUNNING", "claimed_by": log.owner,
                "claimed_until": time.time() + 3600})
    print(log.owner, flush=True)
    time.sleep(float(sys.argv[3]))
""")


def _holder(tmp_path: Path, run_id: str, sleep: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "runs.sqlite"), run_id, str(sleep)],
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_a_dead_owner_on_this_machine_is_taken_over_at_once(tmp_path):
    proc, owner = _holder(tmp_path, "r1", 0)
    proc.wait(30)
    log = ExperimentLog(tmp_path / "runs.sqlite", clock=Clock())    # the lease says an hour to go
    assert owner_alive(owner) is False
    assert log.claim("r1") and log.get("r1")["claimed_by"] == log.owner


def test_a_live_owner_keeps_its_rows_until_it_dies(tmp_path):
    proc, owner = _holder(tmp_path, "r1", 600)
    try:
        log = ExperimentLog(tmp_path / "runs.sqlite", clock=Clock())
        assert owner_alive(owner) is True
        assert not log.claim("r1") and log.holder("r1") == owner
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()
    assert log.claim("r1")


def test_another_machines_lease_runs_out_by_the_clock(tmp_path):
    clock = Clock()
    log = ExperimentLog(tmp_path / "runs.sqlite", lease_s=60, clock=clock)
    stranger = "other-host|boot-x|4242|12345|abcd1234"
    log.insert({"run_id": "r1", "created": 0.0, "status": "RUNNING", "claimed_by": stranger,
                "claimed_until": clock.now + 60})
    assert owner_alive(stranger) is None
    assert not log.claim("r1")
    clock.now += 59
    assert not log.claim("r1")
    clock.now += 2
    assert log.claim("r1")


def test_a_closed_log_in_this_process_lets_go_at_once(tmp_path):
    clock = Clock()
    a = ExperimentLog(tmp_path / "runs.sqlite", clock=clock)
    b = ExperimentLog(tmp_path / "runs.sqlite", clock=clock)
    a.insert({"run_id": "r1", "created": 0.0, "status": "RUNNING", "claimed_by": a.owner,
              "claimed_until": clock.now + 60})
    a.hold("r1")
    assert not b.claim("r1")
    a.close()
    assert b.claim("r1")
    assert a.get("r1")["claimed_by"] == b.owner          # a closed log still reads


def test_submit_after_close_sends_and_logs_nothing(make_lab, sim):
    lab = make_lab()
    lab.close()
    with pytest.raises(WanlabError, match="closed"):
        lab.submit(T2V("late", duration=2, seed=1))
    assert len(lab.log) == 0 and sim.stats()["submits"] == 0
    assert lab.log.closed            # no heartbeat renews anything for a closed Lab


def test_lab_says_what_it_resumed_and_what_it_left(tmp_path, capsys):
    with SimServer(time_scale=TS, seed=8, queue_base_s=100_000) as sim:
        common = dict(provider="dashscope", api_key=KEY, base_url=sim.dashscope_url(), home=tmp_path,
                      time_scale=TS, retry=FAST_RETRY)
        a = Lab(quiet=True, **common)
        job = a.submit(T2V("held by a live kernel", duration=2, seed=1))
        deadline = time.monotonic() + 30
        while job.task_id is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        b = Lab(**common)
        try:
            assert b.resumed == [] and b.left_to_others == [job.id]
            assert "left 1 to the live kernel" in capsys.readouterr().out
            # the same seeded request in b follows a's run instead of paying again
            follower = b.submit(T2V("held by a live kernel", duration=2, seed=1))
            assert follower.id == job.id and "following" in follower.attached
            assert sim.stats()["submits"] == 1
            job.cancel()
            b.wait([follower], timeout=30)
            assert follower.status is Status.CANCELED
        finally:
            a.close()
            b.close()


HOLDING_KERNEL = textwrap.dedent("""
    import sys, time
    from wanlab import Lab, T2V
    lab = Lab(provider="dashscope", api_key=sys.argv[1], base_url=sys.argv[2], home=sys.argv[3],
              time_scale=float(sys.argv[4]), quiet=True)
    job = lab.submit(T2V("a run two kernels want", duration=2, seed=77))
    while job.task_id is None:
        time.sleep(0.01)
    print("submitted", flush=True)
    time.sleep(600)
""")


def test_a_follower_takes_the_run_over_when_its_kernel_dies(tmp_path):
    ts = 0.01
    with SimServer(time_scale=ts, seed=9, queue_base_s=300, latency_sigma=0.0) as sim:   # ≈ 3 s queued
        child = subprocess.Popen([sys.executable, "-c", HOLDING_KERNEL, KEY, sim.dashscope_url(), str(tmp_path),
                                  str(ts)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "submitted"
            with Lab(provider="dashscope", api_key=KEY, base_url=sim.dashscope_url(), home=tmp_path,
                     time_scale=ts, retry=FAST_RETRY, quiet=True) as lab:
                follower = lab.submit(T2V("a run two kernels want", duration=2, seed=77))
                assert "following" in follower.attached and not follower.done
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
                lab.wait([follower], timeout=120)
                assert follower.status is Status.SUCCEEDED and follower.video_path.exists()
                assert "taken over" in follower.attached
                assert sim.stats()["submits"] == 1 and lab.log.unfinished() == []
        finally:
            if child.poll() is None:
                child.kill()
            with child:  # closes its pipes (else a ResourceWarning at exit)
                pass
