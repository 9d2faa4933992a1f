"""ExperimentLog: a row at submit, updates at every transition, the typed DataFrame (and its snapshot
cache), filters and exports, and no API key anywhere on disk."""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from wanlab import T2V, Status
from wanlab.errors import AuthError
from wanlab.log import NAMES, ExperimentLog
from wanlab.sim import SimServer

from .conftest import FAST_RETRY, KEY

REQ = T2V("a red kite over a green hill", duration=2, seed=11)


def _ro(path: Path) -> sqlite3.Connection:
    """A second, read-only reader of the log, like another kernel's."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def test_row_written_at_submit_and_task_id_before_any_polling(make_lab):
    lab = make_lab()
    seen = {}

    def before_the_first_poll(job, ev):
        # the log's writer commits the task id off the loop thread; the runner waits for that commit before
        # it plans (poll_policy) and sends its first poll: another connection sees the task id by then
        if ev.kind == "poll_policy":
            with _ro(lab.log.path) as c:
                seen["row"] = c.execute("SELECT task_id, status, polls FROM runs WHERE run_id = ?",
                                        [job.id]).fetchone()

    lab.observe(before_the_first_poll)
    job = lab.submit(REQ)
    with _ro(lab.log.path) as c:           # inserted before submit() returned, before anything was sent
        status, = c.execute("SELECT status FROM runs WHERE run_id = ?", [job.id]).fetchone()
    assert status in ("QUEUED", "SUBMITTING")
    job.result(60)
    task_id, status, polls = seen["row"]
    assert task_id == job.task_id and status in ("SUBMITTING", "PENDING") and polls == 0


def test_a_finished_row_holds_every_field(make_lab):
    lab = make_lab()
    job = lab.submit(REQ, study="kites", tags={"take": 1})
    job.result(60)
    row = lab.log.get(job.id)
    assert row["status"] == "SUCCEEDED" and row["study"] == "kites" and json.loads(row["tags"]) == {"take": 1}
    assert (row["host"], row["region"], row["mode"], row["model"]) == ("dashscope", "singapore", "t2v", job.model.id)
    assert (row["prompt"], row["resolution"], row["duration"], row["seed"]) == (REQ.prompt, "720P", 2, 11)
    assert row["task_id"] == job.task_id and row["request_id"] == job.request_id
    assert row["created"] <= row["submitted"] <= row["ended"] <= row["downloaded"]
    assert row["latency_s"] == pytest.approx(job.latency) and row["polls"] == job.polls >= 1
    assert row["video_url"] and row["url_expires"] == pytest.approx(row["ended"] + 24 * 3600)
    assert Path(row["path"]).exists() and row["sha256"] == job.sha256 and row["bytes"] == job.bytes
    assert (row["width"], row["height"], row["frames"], row["fps"]) == (1280, 720, 60, 30.0)
    assert row["est_cost"] == pytest.approx(0.20) and row["cost"] == pytest.approx(0.20)
    assert row["currency"] == "USD" and "host usage: 2 s" in row["price_source"]
    assert row["claimed_until"] == 0.0           # a finished row holds no lease


def test_failed_run_logs_its_error(make_lab, sim):
    sim.faults.set("task:fail=InternalError.Algo#1")
    lab = make_lab()
    job = lab.submit(REQ)
    with pytest.raises(Exception):
        job.result(60)
    row = lab.log.get(job.id)
    assert row["status"] == "FAILED" and row["error_code"] == "InternalError.Algo" and row["error_message"]
    assert row["cost"] == 0.0 and row["path"] is None


def test_df_is_typed(make_lab):
    lab = make_lab()
    lab.wait([lab.submit(REQ.replace(seed=s)) for s in (1, 2)] + [lab.submit(REQ.replace(seed=None))], timeout=60)
    df = lab.log.df
    assert list(df.columns) == NAMES and len(df) == 3
    assert isinstance(df["resolution"].dtype, pd.CategoricalDtype) and df["resolution"].cat.ordered
    assert list(df["resolution"].cat.categories) == ["480P", "720P", "1080P"]
    assert str(df["seed"].dtype) == "Int64" and str(df["polls"].dtype) == "Int64"
    for col in ("created", "submitted", "ended", "downloaded", "url_expires", "updated"):
        assert str(df[col].dtype) == "datetime64[ns, UTC]" or (
            isinstance(df[col].dtype, pd.DatetimeTZDtype) and str(df[col].dtype.tz) == "UTC"), col
    assert str(df["cost"].dtype) == "Float64" and str(df["prompt"].dtype).startswith("string")
    assert df["created"].is_monotonic_increasing
    # a random seed the host does not report (DashScope) stays missing, not 0
    assert df["seed"].isna().tolist() == [False, False, True]


def test_filters_and_exports_round_trip(make_lab, sim, tmp_path):
    sim.faults.set("task:fail#2")
    lab = make_lab(measure=False)  # a measurement landing between two reads below would make them differ
    jobs = [lab.submit(REQ.replace(seed=s)) for s in (1, 2, 3)]
    lab.wait(jobs, timeout=60)
    log = lab.log
    failed = log.filter(status="FAILED")
    assert len(failed) == 1 and failed["status"].iloc[0] == "FAILED"
    assert len(log.filter(status=["FAILED", "SUCCEEDED"])) == 3
    assert len(log.filter(seed=3, status="SUCCEEDED")) == 1
    assert len(log.filter(since=pd.Timestamp.now(tz="UTC") - pd.Timedelta("1h"))) == 3
    assert len(log.filter(until=pd.Timestamp("2000-01-01", tz="UTC"))) == 0
    with pytest.raises(KeyError, match="not a log column"):
        log.filter(stauts="FAILED")
    df = log.df
    back = pd.read_parquet(log.to_parquet(tmp_path / "runs.parquet"))
    pd.testing.assert_frame_equal(back, df)
    csv = pd.read_csv(log.to_csv(tmp_path / "runs.csv"))
    assert list(csv.columns) == NAMES and sorted(csv["seed"]) == [1, 2, 3]
    assert sorted(csv["status"]) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]


def test_default_home_next_to_the_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv("WANLAB_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert ExperimentLog().path.resolve() == (tmp_path / "wanlab-runs" / "runs.sqlite").resolve()
    monkeypatch.setenv("WANLAB_HOME", str(tmp_path / "elsewhere"))
    assert ExperimentLog().path == tmp_path / "elsewhere" / "runs.sqlite"


def test_wal_and_durable_commits(tmp_path):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    assert log._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log._conn.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL


def _row(i: int, **kw) -> dict:
    return {"run_id": f"r{i}", "created": 1_700_000_000.0 + i, "host": "dashscope", "model": "wan2.7-t2v",
            "mode": "t2v", "prompt": f"p{i}", "resolution": "720P", "duration": 5, "seed": i, "status": "PENDING", **kw}


def test_df_snapshot_is_exact_across_processes(tmp_path):
    """Kernel A writes while kernel B reads its cached frame: B always sees exactly the table."""
    a = ExperimentLog(tmp_path / "runs.sqlite")
    b = ExperimentLog(tmp_path / "runs.sqlite")
    for i in range(50):
        a.insert(_row(i))
    assert len(b.df) == 50 and b.cache_path.exists()          # first full load leaves a snapshot
    a.update("r3", status="SUCCEEDED", cost=0.5)
    a.insert(_row(50, host="wavespeed"))                      # a new category value
    a.claim("r7")
    df = b.df
    assert len(df) == 51 and df.set_index("run_id").loc["r3", "status"] == "SUCCEEDED"
    assert df.set_index("run_id").loc["r7", "claimed_by"] == a.owner
    assert isinstance(df["host"].dtype, pd.CategoricalDtype) and set(df["host"]) == {"dashscope", "wavespeed"}
    assert df["created"].is_monotonic_increasing
    c = ExperimentLog(tmp_path / "runs.sqlite")                # a new kernel: snapshot file + changes
    pd.testing.assert_frame_equal(c.df, b.frame(since=0), check_categorical=False)
    # a damaged snapshot is ignored, not trusted
    c.cache_path.write_bytes(b"garbage")
    d = ExperimentLog(tmp_path / "runs.sqlite")
    assert len(d.df) == 51
    # a different log file at the same path: the old snapshot is not served
    for p in tmp_path.glob("runs.sqlite*"):
        if not p.name.endswith(".arrow"):
            p.unlink()
    e = ExperimentLog(tmp_path / "runs.sqlite")
    e.insert(_row(99))
    assert list(e.df["run_id"]) == ["r99"]


def test_older_file_gains_new_columns(tmp_path):
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, created REAL, status TEXT)")
        c.execute("INSERT INTO runs VALUES ('old', 1.0, 'SUCCEEDED')")
    log = ExperimentLog(path)
    df = log.df
    assert list(df.columns) == NAMES and df["run_id"].tolist() == ["old"]


def test_rating_and_notes(tmp_path):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    log.insert(_row(1))
    log.set_rating("r1", 4, notes="nice motion")
    assert (log.get("r1")["rating"], log.get("r1")["notes"]) == (4, "nice motion")
    with pytest.raises(ValueError):
        log.set_rating("r1", 9)


def test_no_api_key_in_the_log_or_the_media_folder(tmp_path):
    """Runs that succeed, fail, are refused with 401 (a key bound to another region) and upload an image:
    the key's bytes appear nowhere in runs.sqlite (+ -wal, -shm, the snapshot) or under media/."""
    from wanlab import I2V, Lab

    from .media_fixtures import image_bytes

    other = "sk-beijing-only-key-7f3a9c2e1d"
    with SimServer(time_scale=0.002, key_regions={other: "beijing"}) as sim:
        home = tmp_path / "home"
        common = dict(time_scale=0.002, retry=FAST_RETRY, home=home)
        lab = Lab(provider="dashscope", api_key=KEY, base_url=sim.dashscope_url(), **common)
        sim.faults.set("task:fail#2")
        img = tmp_path / "in.png"
        img.write_bytes(image_bytes())
        jobs = [lab.submit(REQ), lab.submit(REQ.replace(seed=5)), lab.submit(I2V("it moves", image=img, duration=2))]
        lab.wait(jobs, timeout=60)
        assert [j.status for j in jobs].count(Status.FAILED) == 1
        bad = Lab(provider="dashscope", api_key=other, base_url=sim.dashscope_url(), **common)
        job = bad.submit(REQ)
        with pytest.raises(AuthError):
            job.result(60)
        lab.log.df                                       # writes the snapshot too
        assert lab.log.get(job.id)["status"] == "FAILED"
        files = [p for p in home.rglob("*") if p.is_file()]
        assert any(p.name == "runs.sqlite-wal" for p in files) and any(p.suffix == ".mp4" for p in files)
        assert any(p.suffix == ".png" for p in files)
        for key in (KEY, other):
            for needle in (key.encode(), key.encode("utf-16-le"), key[6:].encode()):
                hits = [p for p in files if needle in p.read_bytes()]
                assert not hits, f"API key found in {hits}"
        bad.close()
        lab.close()


async def test_a_lingering_turn_is_taken_once_for_back_to_back_blocks_and_let_go_after(tmp_path):
    """A sweep's submits take the cross-kernel submit lock once (two durable writes saved per submit); another
    holder gets it as soon as the lingering ends, and closing the log lets it go at once."""
    import asyncio

    log = ExperimentLog(tmp_path / "runs.sqlite")
    taken = []
    real = log.try_lock

    def counting(scope, token, hold_s):
        ok = real(scope, token, hold_s)
        if ok:
            taken.append(token.rsplit("#", 1)[1])
        return ok

    log.try_lock = counting
    for _ in range(3):
        async with log.turn("submit|k", "a", 60, linger_s=1.0):
            pass
    assert taken == ["a"]
    assert log._db.query("SELECT owner FROM locks")[0][0].endswith("#a")  # still held while lingering

    order = []

    async def other():
        async with log.turn("submit|k", "b", 60):
            order.append("b")

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    assert order == []  # a lingers: b waits for it
    await asyncio.wait_for(task, 30)
    assert order == ["b"] and taken == ["a", "b"]
    assert log._db.query("SELECT COUNT(*) FROM locks")[0][0] == 0

    async with log.turn("submit|k", "a", 60, linger_s=30):
        pass
    assert log._db.query("SELECT COUNT(*) FROM locks")[0][0] == 1
    log.close()  # another kernel must not wait out the lingering (or the hold) for it
    assert ExperimentLog(tmp_path / "runs.sqlite")._db.query("SELECT COUNT(*) FROM locks")[0][0] == 0


def test_closing_a_lab_on_a_shared_log_lets_its_lingering_submit_turn_go(tmp_path):
    """A Lab on a log it does not own: its turn's release timer dies with its loop, so close() ends the turn;
    another kernel must not wait out the lock's hold."""
    from wanlab import T2V, Lab

    log = ExperimentLog(tmp_path / "runs.sqlite")
    lab = Lab(time_scale=1.0, quiet=True, home=tmp_path, log=log)  # the task runs for minutes: close mid-run
    job = lab.submit(T2V("a kite", duration=2, seed=1))
    for _ in range(600):
        if job.task_id:
            break
        time.sleep(0.01)
    assert job.task_id and log._turns  # submitted, the turn still lingering
    lab.close()
    assert not log.closed and not log._turns and log._db.query("SELECT COUNT(*) FROM locks")[0][0] == 0
    log.close()
