"""The log's writer thread (issue 15): a job's updates leave the Lab's loop thread and are committed in
batches (one fsync for many), in order with every synchronous write, seen by every read of this process,
durable before the runner waits on a task id, loud when they fail, and drained by close.

No sleeps and no timing: the writer is held by a call that waits on an event, and a test lets it go once the
code under test is seen waiting for it (or has gone on without it, which is the failure being tested)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from wanlab import T2V, Status
from wanlab.jobs import Job
from wanlab.log import ExperimentLog, LogError
from wanlab.log.writer import Writer, WriterClosed

REQ = T2V("a red kite over a green hill", duration=2, seed=11)


def _row(i: int, **kw) -> dict:
    return {"run_id": f"r{i}", "created": 1_700_000_000.0 + i, "host": "dashscope", "model": "wan2.7-t2v",
            "mode": "t2v", "prompt": f"p{i}", "resolution": "720P", "duration": 5, "seed": i, "status": "PENDING", **kw}


def _fresh(path: Path, sql: str) -> list[tuple]:
    """Read with a second connection, as another kernel (or the file after a crash) sees the log."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _alter(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def _hold(writer: Writer) -> threading.Event:
    """Hold the writer thread (it runs a call that waits) until the returned event is set."""
    gate = threading.Event()
    running = threading.Event()

    def wait(_conn: sqlite3.Connection) -> None:
        running.set()
        gate.wait()

    writer.call(wait)
    running.wait()
    return gate


def _when_it_waits(monkeypatch, writer: Writer, fn) -> tuple[threading.Thread, list]:
    """Run `fn` in a thread; return once it waits for the writer (its `flush` or `close`) or has finished
    without."""
    entered = threading.Event()
    for name in ("flush", "close"):
        real = getattr(writer, name)
        monkeypatch.setattr(writer, name, lambda real=real: (entered.set(), real())[1])
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    while t.is_alive() and not entered.wait(0.01):
        pass
    return t, out


def _update(log: ExperimentLog, run_id: str, **values) -> concurrent.futures.Future:
    fut = log._write(run_id, values)
    assert fut is not None
    return fut


# -- order and visibility --------------------------------------------------------------------------------
def test_a_synchronous_write_comes_after_the_deferred_ones_queued_before_it(tmp_path, monkeypatch):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    log.insert(_row(1))
    gate = _hold(log._db.writer)
    deferred = _update(log, "r1", notes="deferred")               # queued, not yet written
    t, _ = _when_it_waits(monkeypatch, log._db.writer,
                          lambda: log._db.write("UPDATE runs SET notes = 'sync' WHERE run_id = 'r1'", []))
    written_before_the_writer_went = not t.is_alive()
    gate.set()
    t.join()
    deferred.result()
    assert not written_before_the_writer_went
    assert _fresh(log.path, "SELECT notes FROM runs WHERE run_id = 'r1'") == [("sync",)]
    log.close()


def test_inserts_and_updates_keep_their_order_in_the_change_counter(tmp_path):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    for i in range(30):                       # insert (synchronous), update (deferred), insert, update, …
        log.insert(_row(i))
        _update(log, f"r{i}", notes=f"n{i}")
    got = log._db.query("SELECT run_id, notes FROM runs ORDER BY seq")
    assert got == [(f"r{i}", f"n{i}") for i in range(30)]
    seqs = dict(_fresh(log.path, "SELECT run_id, seq FROM runs"))
    assert [seqs[f"r{i}"] for i in range(30)] == sorted(seqs.values())
    log.close()


@pytest.mark.parametrize("read", ["get", "len", "rows", "df", "query"])
def test_reads_see_this_processes_pending_writes(tmp_path, monkeypatch, read):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    log.insert(_row(1))
    gate = _hold(log._db.writer)
    _update(log, "r1", status="RUNNING", polls=3)
    log._db.write_later(log_insert_sql(), ["r2", 1_700_000_010.0, "SUCCEEDED"])
    reads = {
        "get": lambda: (log.get("r1")["status"], log.get("r2")["status"]),
        "len": lambda: len(log),
        "rows": lambda: [(r["run_id"], r["status"]) for r in log.rows()],
        "df": lambda: list(zip(log.df["run_id"], log.df["status"], strict=True)),
        "query": lambda: log._db.query("SELECT polls FROM runs WHERE run_id = 'r1'")[0][0],
    }
    t, out = _when_it_waits(monkeypatch, log._db.writer, reads[read])
    answered_before_the_writer_went = not t.is_alive()
    gate.set()
    t.join()
    assert not answered_before_the_writer_went
    assert out == [{"get": ("RUNNING", "SUCCEEDED"), "len": 2, "rows": [("r1", "RUNNING"), ("r2", "SUCCEEDED")],
                    "df": [("r1", "RUNNING"), ("r2", "SUCCEEDED")], "query": 3}[read]]
    log.close()


def test_a_read_through_another_log_object_on_the_same_file_sees_the_pending_writes(tmp_path, monkeypatch):
    """Two Labs on one log in one process (compare_hosts, a cell re-run before the old Lab closed): each has its
    own ExperimentLog and writer; a read through either waits for what both queued for that file."""
    one = ExperimentLog(tmp_path / "runs.sqlite")
    other = ExperimentLog(tmp_path / "." / "runs.sqlite")     # the same file, named another way
    one.insert(_row(1))
    gate = _hold(one._db.writer)
    _update(one, "r1", status="SUCCEEDED")
    t, out = _when_it_waits(monkeypatch, one._db.writer, lambda: other.get("r1")["status"])
    answered_before_the_writer_went = not t.is_alive()
    gate.set()
    t.join()
    assert not answered_before_the_writer_went and out == ["SUCCEEDED"]
    one.close()
    other.close()


def log_insert_sql() -> str:
    return ("INSERT INTO runs (run_id, created, status, seq) "
            "VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM runs))")


# -- group commit --------------------------------------------------------------------------------------------
def test_what_is_queued_while_the_writer_is_busy_is_one_commit(tmp_path):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    n = 25
    for i in range(n):
        log.insert(_row(i))
    statements: list[str] = []
    log._db.writer.call(lambda conn: conn.set_trace_callback(statements.append)).result()
    gate = _hold(log._db.writer)                                # busy: a commit under way, say
    futs = [_update(log, f"r{i}", status="RUNNING", polls=i) for i in range(n)]
    gate.set()
    concurrent.futures.wait(futs)
    assert all(f.exception() is None for f in futs)
    commits = sum(s == "COMMIT" for s in statements)
    assert commits == 1 < n
    assert _fresh(log.path, "SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'") == [(n,)]
    log.close()


def test_a_bad_statement_fails_alone_and_the_writer_keeps_serving(tmp_path):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    log.insert(_row(1))
    log.insert(_row(2))
    gate = _hold(log._db.writer)
    good = _update(log, "r1", notes="first")
    bad = log._db.write_later("UPDATE runs SET no_such_column = 1 WHERE run_id = ?", ["r1"])
    boom = log._db.writer.call(lambda conn: 1 / 0)
    also_good = _update(log, "r2", notes="second")
    gate.set()
    assert good.result() is None and also_good.result() is None
    assert isinstance(bad.exception(), sqlite3.OperationalError)
    assert isinstance(boom.exception(), ZeroDivisionError)
    assert _update(log, "r1", rating=5).result() is None           # still serving
    assert [(r["notes"], r["rating"]) for r in log.rows()] == [("first", 5), ("second", None)]
    log.close()


# -- the writer thread's life ---------------------------------------------------------------------------------
def test_no_thread_until_the_first_deferred_write_and_none_after_close(tmp_path):
    before = {t.name for t in threading.enumerate()}
    log = ExperimentLog(tmp_path / "runs.sqlite")
    log.insert(_row(1))
    assert log.rows() and log._db._writer is None
    assert not any(t.name.startswith("wanlab-log-writer") for t in threading.enumerate() if t.name not in before)
    _update(log, "r1", notes="x").result()
    thread = log._db.writer._thread
    assert thread is not None and thread.daemon and thread.is_alive()    # never keeps the interpreter alive
    log.close()
    assert not thread.is_alive()


@pytest.mark.parametrize("snapshot", [True, False], ids=["with-frame-snapshot", "script-without-pandas"])
def test_close_drains_the_queue_then_refuses_writes(tmp_path, monkeypatch, snapshot):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    if not snapshot:                             # close reads nothing before it ends the writer
        monkeypatch.setattr(log._frames, "keep_current", lambda: None)
    n = 40
    for i in range(n):
        log.insert(_row(i))
    writer = log._db.writer
    gate = _hold(writer)
    futs = [_update(log, f"r{i}", status="SUCCEEDED", notes=f"n{i}") for i in range(n)]
    t, _ = _when_it_waits(monkeypatch, writer, log.close)
    closed_without_waiting = not t.is_alive()
    done = "SELECT COUNT(*) FROM runs WHERE status = 'SUCCEEDED'"
    if closed_without_waiting:                  # what close left undone is what the file lacks now
        assert _fresh(log.path, done) == [(n,)], "close returned with writes still queued"
    gate.set()
    t.join()
    assert all(f.done() and f.exception() is None for f in futs)
    assert _fresh(log.path, done) == [(n,)]
    with pytest.raises(LogError, match="was closed"):
        log.update("r1", notes="late")
    with pytest.raises(LogError, match="was closed"):
        log._db.write_later("UPDATE runs SET notes = 'late'", [])
    with pytest.raises(WriterClosed):
        writer.submit("UPDATE runs SET notes = 'late'", [])
    assert len(log) == n                         # a closed log still reads


def test_update_is_durable_on_return(tmp_path):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    log.insert(_row(1))
    log.set_rating("r1", 4, notes="kept")
    assert _fresh(log.path, "SELECT rating, notes FROM runs") == [(4, "kept")]   # another connection, at once
    with pytest.raises(KeyError, match="not log columns"):
        log.update("r1", nope=1)
    log.close()


# -- Job.durable --------------------------------------------------------------------------------------------
def _job() -> Job:
    from wanlab import catalog

    return Job(REQ, catalog.default_model("dashscope", "t2v"), host="dashscope", region="singapore")


def _held_on(job: Job) -> concurrent.futures.Future:
    """A running future the job is held on, as the log holds it for a write in flight."""
    fut: concurrent.futures.Future = concurrent.futures.Future()
    fut.set_running_or_notify_cancel()
    job.hold_until(fut)
    return fut


async def test_durable_waits_for_what_is_held_and_a_cancelled_waiter_cancels_no_write():
    job = _job()
    await job.durable()                          # nothing held: at once
    held = _held_on(job)
    waiter = asyncio.ensure_future(job.durable())
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not held.cancelled()
    held.set_result(None)
    again = _held_on(job)
    waiter = asyncio.ensure_future(job.durable())
    await asyncio.sleep(0)
    assert not waiter.done()
    threading.Thread(target=again.set_exception, args=(OSError("disk full"),)).start()
    await waiter                                 # a failure is the observer's to tell: the job goes on
    assert job._holds == []


# -- through a Lab: durable before the host is waited on, loud when it fails --------------------------------------
class Watching(httpx.AsyncBaseTransport):
    """The loopback transport; at the submit and at the first poll it reads the log file with a connection of
    its own (what a kill -9 right then would leave) and keeps what it saw; then lets the log's writer go."""

    def __init__(self, db: Path) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.db = db
        self.release = threading.Event()
        self.at_submit: list[tuple] = []
        self.at_first_poll: list[tuple] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/video-synthesis"):
            self.at_submit = _fresh(self.db, "SELECT status, task_id FROM runs")
        elif "/tasks/" in path and not self.at_first_poll:
            rows = _fresh(self.db, "SELECT status, task_id FROM runs")
            self.at_first_poll = [("asked", path.rsplit("/", 1)[-1]), *rows]
            self.release.set()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _gated_writer(lab, monkeypatch, release: threading.Event) -> None:
    """The log's writer begins a transaction only when the runner waits for it (`Job.durable` with something
    held) or once `release` is set: a runner that went on without waiting is caught before the write lands."""
    go = threading.Event()
    real = Job.durable

    async def durable(self) -> None:
        if self._holds:
            go.set()
        await real(self)

    monkeypatch.setattr(Job, "durable", durable)

    passed = []

    def trace(sql: str) -> None:
        if sql == "BEGIN IMMEDIATE" and not release.is_set():
            while not (go.wait(0.05) or release.is_set()):
                pass
            go.clear()
            passed.append(sql)
            if len(passed) == 2:      # SUBMITTING and the task id: the writes after them need not wait
                release.set()

    lab.log._db.writer.call(lambda conn: conn.set_trace_callback(trace)).result()


def test_the_submitting_row_and_the_task_id_are_on_disk_before_the_host_is_waited_on(make_lab, monkeypatch, tmp_path):
    transport = Watching(tmp_path / "runs" / "runs.sqlite")
    lab = make_lab(transport=transport)
    assert lab.log.path == transport.db
    _gated_writer(lab, monkeypatch, transport.release)
    try:
        job = lab.submit(REQ)
        job.result(60)
    finally:
        transport.release.set()
    assert transport.at_submit == [("SUBMITTING", None)]           # a crash now: reconciled, never re-sent
    asked, *rows = transport.at_first_poll
    assert asked == ("asked", job.task_id) and [r[1] for r in rows] == [job.task_id]
    assert lab.log.get(job.id)["status"] == "SUCCEEDED"


def test_a_deferred_write_that_fails_is_loud_on_the_loop_thread_and_the_job_goes_on(make_lab, caplog):
    lab = make_lab()
    _alter(lab.log.path,                         # the disk refuses the task id's write (and every one after)
           "CREATE TRIGGER refuse BEFORE UPDATE OF task_id ON runs WHEN NEW.task_id IS NOT NULL "
           "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    where: list[str] = []
    lab.observe(lambda job, ev: where.append(threading.current_thread().name) if ev.kind == "log_error" else None)
    with caplog.at_level(logging.ERROR, logger="wanlab"):
        job = lab.submit(REQ)
        lab.wait([job], timeout=60)
    assert job.status is Status.SUCCEEDED and job.task_id           # the job went on, the task id in memory
    assert isinstance(job.log_error, sqlite3.IntegrityError) and "disk is full" in str(job.log_error)
    kinds = [e.kind for e in job.events]
    assert "log_error" in kinds and kinds.index("log_error") < kinds.index("poll_policy")   # told before polling
    assert set(where) == {lab._loop._thread.name}
    assert sum("cannot record job" in r.getMessage() for r in caplog.records) == 1
    with pytest.warns(RuntimeWarning, match="could not record"):
        job.result(1)
    _alter(lab.log.path, "DROP TRIGGER refuse")
    lab.log.update(job.id, notes="the writer still serves")
    assert lab.log.get(job.id)["notes"] == "the writer still serves"


def test_observe_off_a_loop_writes_before_it_returns_and_is_loud(tmp_path):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    job = _job()
    log.record_created(job, {}, {})
    job.status = Status.SUBMITTING
    job.emit("status")                           # no observers yet: just an event to replay
    log.observe_loudly(job, job.events[-1])
    assert _fresh(log.path, "SELECT status FROM runs") == [("SUBMITTING",)]
    _alter(log.path, "CREATE TRIGGER refuse BEFORE UPDATE ON runs BEGIN SELECT RAISE(ABORT, 'read-only'); END")
    log.observe_loudly(job, job.events[-1])
    assert isinstance(job.log_error, sqlite3.IntegrityError) and job.events[-1].kind == "log_error"
    log.close()


def test_a_script_that_ends_without_closing_its_log_still_writes_what_it_queued(tmp_path):
    db = tmp_path / "runs.sqlite"
    script = f"""
import atexit, threading
from wanlab.log import ExperimentLog
log = ExperimentLog({str(db)!r})
for i in range(200):
    log.insert({{"run_id": f"r{{i}}", "created": float(i), "status": "PENDING"}})
gate = threading.Event()
log._db.writer.call(lambda conn: gate.wait())   # held until the interpreter is ending
for i in range(200):
    log._db.write_later("UPDATE runs SET status = 'RUNNING' WHERE run_id = ?", [f"r{{i}}"])
atexit.register(gate.set)                      # runs first at exit (last registered)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _fresh(db, "SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'") == [(200,)]
