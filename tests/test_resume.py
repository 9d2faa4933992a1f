"""Resume after a crash, two kernels on one log (leases + heartbeat), the 24 h window, and rerun."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from wanlab import I2V, T2V, Lab, Status, WanlabError
from wanlab.log import ExperimentLog
from wanlab.sim import SimServer

from .conftest import FAST_RETRY, KEY
from .media_fixtures import image_bytes

REQ = T2V("a red kite over a green hill", duration=2, seed=11)
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")


def _statuses(db: Path) -> list[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return [r[0] for r in c.execute("SELECT status FROM runs")]
    except sqlite3.OperationalError:
        return []


def _count(db: Path, where: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
        return c.execute(f"SELECT COUNT(*) FROM runs WHERE {where}").fetchone()[0]


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


CHILD = textwrap.dedent("""
    import sys, time
    from wanlab import Lab, T2V, RetryPolicy
    from wanlab.log import ExperimentLog
    url, home, ts, lease = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    lab = Lab(provider="dashscope", api_key="{key}", base_url=url, home=home, time_scale=ts,
              log=ExperimentLog(home + "/runs.sqlite", lease_s=lease), resume=False,
              retry=RetryPolicy(base_s=0.02, max_backoff_s=0.2, budget_s=30.0))
    for i in range(40):
        lab.submit(T2V("a paper boat on a stream, take %d" % i, duration=2, resolution="720P", seed=1000 + i),
                   study="sigkill")
    print("submitted", flush=True)
    time.sleep(600)
""").format(key=KEY)

SIGKILL_RUNS = int(os.environ.get("WANLAB_SIGKILL_RUNS", "1"))


@pytest.mark.parametrize("attempt", range(SIGKILL_RUNS))
def test_sigkill_mid_sweep_then_resume_finishes_all_40_exactly_once(tmp_path, attempt):
    """A kernel is SIGKILLed in the middle of a 40-job sweep, with a submit and a download slowed so
    that rows are caught mid-submit (task created on the host, answer never read) and mid-download.
    A new process resumes: 40 submits in all, 40 SUCCEEDED rows, 40 files that hash to their names,
    and each row's video is of its own seed."""
    lease = 1.0
    ts = 0.004
    home = tmp_path / "home"
    db = home / "runs.sqlite"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    with SimServer(time_scale=ts, seed=attempt, faults="submit:slow=0.12@0.5, download:slow=0.1@0.5") as sim:
        child = subprocess.Popen([sys.executable, str(script), sim.dashscope_url(), str(home), str(ts), str(lease)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        try:
            # Kill when a submit is in flight (the host created the task; the row has no task id yet)
            # and, if it comes together within a few seconds, a download is in progress too.
            deadline = time.time() + 60
            eligible_since = None
            at_kill: list[str] = []
            while time.time() < deadline:
                at_kill = _statuses(db)
                done = sum(s in TERMINAL for s in at_kill)
                if len(at_kill) == 40 and 6 <= done <= 30:
                    with_task = _count(db, "task_id IS NOT NULL")
                    inflight = sim.stats()["submits"] > with_task
                    if inflight or (eligible_since and time.time() - eligible_since > 6):
                        eligible_since = eligible_since or time.time()
                        if "DOWNLOADING" in at_kill or time.time() - eligible_since > 3:
                            break
                assert child.poll() is None, child.stderr.read().decode()[-3000:]
                time.sleep(0.005)
            else:
                pytest.fail(f"the child never got mid-sweep: {at_kill}")
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
            with child:  # closes its pipes (else a ResourceWarning at exit)
                pass
        at_kill = _statuses(db)                     # the state the dead kernel left
        assert sum(s not in TERMINAL for s in at_kill) > 0
        submits_at_kill = sim.stats()["submits"]
        inflight_at_kill = submits_at_kill - _count(db, "task_id IS NOT NULL")   # tasks whose answer was lost
        time.sleep(lease + 0.2)                     # the dead kernel's leases run out
        lab = Lab(provider="dashscope", api_key=KEY, base_url=sim.dashscope_url(), home=home, time_scale=ts,
                  retry=FAST_RETRY, log=ExperimentLog(db, lease_s=lease))
        try:
            resumed = lab.jobs[:]
            assert len(resumed) == sum(s not in TERMINAL for s in at_kill)
            lab.wait(timeout=90)
            assert all(j.done for j in lab.jobs)
            stats = sim.stats()
            assert stats["submits"] == 40, (stats, at_kill, submits_at_kill)
            rows = lab.log.rows()
            assert len(rows) == 40
            assert [r["status"] for r in rows] == ["SUCCEEDED"] * 40, [(r["status"], r["error_message"]) for r in rows]
            assert len({r["task_id"] for r in rows}) == 40
            for r in rows:
                assert r["path"], {k: r[k] for k in ("run_id", "status", "task_id", "downloaded", "sha256", "video_url")}
                assert _sha(r["path"]) == r["sha256"] == Path(r["path"]).stem
                assert sim.task_info(r["task_id"])["seed"] == r["seed"], "a row adopted another row's task"
                assert r["claimed_until"] == 0.0
            assert len({r["sha256"] for r in rows}) == 40
            assert lab.client.stats["reconciled"] == inflight_at_kill      # each adopted, none re-sent
            assert lab.log.unfinished() == []
            import collections
            print(f"\nat kill: {dict(collections.Counter(at_kill))}, sim submits {submits_at_kill}; resume: "
                  f"{len(resumed)} jobs, client {lab.client.stats}")
        finally:
            lab.close()


def test_heartbeat_keeps_a_lease_and_a_dead_one_runs_out(tmp_path):
    a = ExperimentLog(tmp_path / "runs.sqlite", lease_s=0.3)
    b = ExperimentLog(tmp_path / "runs.sqlite", lease_s=0.3)
    a.insert({"run_id": "r1", "created": time.time(), "status": "PENDING", "claimed_by": a.owner,
              "claimed_until": time.time() + 0.3})
    a.hold("r1")
    time.sleep(1.0)                                     # three leases long: only the heartbeat keeps it
    assert not b.claim("r1")
    assert a.get("r1")["claimed_until"] > time.time()
    a.release("r1")                                     # like a process that died: no more renewals
    time.sleep(0.45)
    assert b.claim("r1") and b.get("r1")["claimed_by"] == b.owner
    a.hold("r1")                                        # the old owner wakes up: it learns it lost the row
    assert a.renew() == ["r1"] and b.get("r1")["claimed_by"] == b.owner
    with pytest.raises(ValueError):
        ExperimentLog(tmp_path / "x.sqlite", lease_s=0)


def test_lease_s_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WANLAB_LEASE_S", "2.5")
    assert ExperimentLog(tmp_path / "runs.sqlite").lease_s == 2.5


def test_two_labs_on_one_log_never_poll_the_same_task(tmp_path):
    """Kernel B starts while kernel A's jobs run for several lease lengths: B takes none of them. A closes
    (its jobs detach, their leases end): B picks them up and finishes them, with no second submit."""
    lease, ts = 0.8, 0.03
    with SimServer(time_scale=ts, seed=3) as sim:
        db = tmp_path / "runs.sqlite"
        common = dict(api_key=KEY, base_url=sim.dashscope_url(), time_scale=ts, retry=FAST_RETRY, home=tmp_path)
        a = Lab(provider="dashscope", log=ExperimentLog(db, lease_s=lease), **common)
        jobs = [a.submit(REQ.replace(seed=s, duration=10)) for s in (1, 2, 3)]
        time.sleep(2.5 * lease)
        b = Lab(provider="dashscope", log=ExperimentLog(db, lease_s=lease), **common)
        try:
            assert b.jobs == [] and b.client.stats["requests"] == 0
            time.sleep(lease)
            assert b.resume() == []
            left = {j.id for j in jobs if not j.done}
            assert left, "A's jobs ended too soon for this test"
            a.close()
            time.sleep(0.1)
            unfinished = {r["run_id"] for r in b.log.unfinished()}
            assert unfinished and unfinished <= left
            picked = b.resume()
            assert {j.id for j in picked} == unfinished
            b.wait(timeout=60)
            assert sim.stats()["submits"] == 3
            assert [r["status"] for r in b.log.rows()] == ["SUCCEEDED"] * 3
        finally:
            a.close()
            b.close()


def test_resume_twice_does_not_run_a_job_twice(make_lab, sim):
    lab = make_lab()
    jobs = [lab.submit(REQ.replace(seed=s)) for s in range(4)]
    assert lab.resume() == []                     # this Lab's own live rows are not "unfinished" work
    lab.wait(jobs, timeout=60)
    assert sim.stats()["submits"] == 4 and len(lab.jobs) == 4


def test_rows_past_the_24h_window_become_unknown_with_the_reason(make_lab, sim, tmp_path):
    lab = make_lab(resume=False)
    base = dict(host="dashscope", protocol="dashscope", region="singapore", base_url=lab.provider.base_url,
                model="wan2.7-t2v", mode="t2v", prompt="old", resolution="720P", duration=2, seed=1)
    old = time.time() - 25 * 3600
    log = lab.log
    log.insert({"run_id": "polled", "created": old, "submitted": old, "task_id": "t-old", "status": "RUNNING", **base})
    log.insert({"run_id": "inflight", "created": old, "status": "SUBMITTING", **base})
    log.insert({"run_id": "queued", "created": old, "status": "QUEUED", **base})
    log.insert({"run_id": "fresh", "created": time.time(), "status": "QUEUED", **base})
    jobs = lab.resume()
    assert [j.id for j in jobs] == ["fresh"]
    lab.wait(jobs, timeout=60)
    rows = {r["run_id"]: r for r in log.rows()}
    assert rows["fresh"]["status"] == "SUCCEEDED"
    for rid, words in (("polled", "24 h window"), ("inflight", "not re-sent"), ("queued", "lab.rerun")):
        assert rows[rid]["status"] == "UNKNOWN" and rows[rid]["error_code"] == "wanlab.Expired"
        assert words in rows[rid]["error_message"]
    assert sim.stats()["submits"] == 1 and sim.stats()["requests"].get("query", 0) >= 1


class _SubmitThenHang(httpx.AsyncBaseTransport):
    """Delivers submits to the host, then never returns the answer: the process 'dies' mid-submit."""

    def __init__(self, deliver: bool = True) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.deliver = deliver

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/video-synthesis"):
            if self.deliver:
                await self.inner.handle_async_request(request)
            await asyncio.Event().wait()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_resume_adopts_the_task_a_dead_submit_created(make_lab, sim):
    a = make_lab(transport=_SubmitThenHang())
    job = a.submit(REQ)
    while sim.stats()["submits"] < 1:
        time.sleep(0.01)
    a.close()                                     # the answer was never read: the row says SUBMITTING
    assert a.log.get(job.id)["status"] == "SUBMITTING" and a.log.get(job.id)["task_id"] is None
    b = make_lab()
    assert [j.id for j in b.jobs] == [job.id]
    done = b.jobs[0].result(60)
    assert done.status is Status.SUCCEEDED and any(e.kind == "reconciled" for e in done.events)
    assert sim.stats()["submits"] == 1
    assert sim.task_info(done.task_id)["seed"] == 11


def test_reconcile_does_not_adopt_another_rows_task(make_lab, sim):
    a = make_lab(transport=_SubmitThenHang(deliver=False))
    first = a.submit(REQ.replace(prompt="first prompt", seed=1))
    second = a.submit(REQ.replace(prompt="second prompt", seed=2))
    while a.log.get(first.id)["status"] != "SUBMITTING":
        time.sleep(0.01)
    time.sleep(0.2)
    # one submit in flight at a time: the second row has not been sent, and says so
    assert a.log.get(second.id)["status"] == "QUEUED"
    a.close()
    # a task with another prompt appears on the account in that window (another kernel on the same key)
    body = {"model": "wan2.7-t2v", "input": {"prompt": "second prompt"},
            "parameters": {"resolution": "720P", "duration": 2, "seed": 2}}
    r = httpx.post(sim.dashscope_url() + "/services/aigc/video-generation/video-synthesis", json=body,
                   headers={"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"})
    assert r.status_code == 200, r.text
    stranger = r.json()["output"]["task_id"]
    deadline = time.time() + 30
    while httpx.get(f"{sim.dashscope_url()}/tasks/{stranger}", headers={"Authorization": f"Bearer {KEY}"}
                    ).json()["output"]["task_status"] != "SUCCEEDED" and time.time() < deadline:
        time.sleep(0.05)
    # its prompt is known once it ends: the dead submit of "first prompt" must not adopt it
    b = make_lab()
    b.wait(timeout=60)
    rows = {r["run_id"]: r for r in b.log.rows()}
    for run in (first, second):
        info = sim.task_info(rows[run.id]["task_id"])
        assert info["seed"] == rows[run.id]["seed"], f"row {run.id} (seed {rows[run.id]['seed']}) adopted {info}"


def test_rerun_t2v_reproduces_the_bytes(make_lab, sim):
    lab = make_lab()
    first = lab.run_sync(REQ, timeout=60)
    again = lab.rerun(first.id).result(60)
    assert again.id != first.id and again.task_id != first.task_id
    assert again.sha256 == first.sha256 and again.video_path == first.video_path
    row = lab.log.get(again.id)
    assert json.loads(row["tags"])["rerun_of"] == first.id and row["seed"] == 11
    other = lab.rerun(first.id, seed=12).result(60)
    assert other.sha256 != first.sha256 and other.request.seed == 12
    assert sim.stats()["submits"] == 3


def test_rerun_i2v_with_a_local_image_reproduces_the_bytes(make_lab, tmp_path):
    lab = make_lab()
    img = tmp_path / "start.png"
    img.write_bytes(image_bytes((30, 120, 200)))
    first = lab.run_sync(I2V("the scene comes alive", image=img, duration=2, seed=5), timeout=60)
    img.unlink()                                  # the input lives on in the media store
    kept = json.loads(lab.log.get(first.id)["inputs"])["image"]["file"]
    assert Path(kept).exists() and Path(kept).parent.parent == lab.store.root
    again = lab.rerun(first.id).result(60)
    assert again.sha256 == first.sha256


def test_rerun_of_an_unseeded_run_needs_a_seed(make_lab):
    lab = make_lab()
    first = lab.run_sync(REQ.replace(seed=None), timeout=60)
    with pytest.raises(WanlabError, match="no seed"):
        lab.rerun(first.id)
    assert lab.rerun(first.id, seed=3).result(60).status is Status.SUCCEEDED


def test_succeeded_is_announced_once_after_the_file_is_here(make_lab):
    lab = make_lab()
    seen = []
    lab.observe(lambda job, ev: seen.append((str(job.status), job.video_path is not None))
                if ev.kind == "status" else None)
    lab.run_sync(REQ, timeout=60)
    assert [s for s in seen if s[0] == "SUCCEEDED"] == [("SUCCEEDED", True)]


def test_attaching_to_a_row_another_live_kernel_drives_never_marks_it_failed(make_lab, tmp_path):
    """A matching row this kernel cannot rebuild (its input file is not here) is refused with a message,
    and left alone: its owner lives and drives it, and the host may be running its task."""
    from wanlab import _recovery

    lab = make_lab(resume=False)
    other = ExperimentLog(tmp_path / "runs" / "runs.sqlite")  # a second owner on the same file, alive
    row = {"run_id": "theirs", "created": time.time(), "status": "PENDING", "task_id": "t-theirs", "mode": "i2v",
           "model": "wan2.7-i2v", "resolution": "720P", "duration": 5, "seed": 1, "prompt": "p",
           "params": "{}", "inputs": json.dumps({"image": {"file": str(tmp_path / "gone.png")}}),
           "host": lab.host, "claimed_by": other.owner, "claimed_until": time.time() + 600}
    other.insert(row)
    with pytest.raises(WanlabError, match="cannot be rebuilt here"):
        _recovery.attach(lab, lab.log.get("theirs"))
    after = lab.log.get("theirs")
    assert after["status"] == "PENDING" and after["claimed_by"] == other.owner and after["error_code"] is None
    other.close()
