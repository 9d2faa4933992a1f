"""The DataFrame snapshot is kept current at close and by `refresh` (the writer thread), so the next process's first
`log.df` reads Arrow; every path to a frame (Arrow conversion, snapshot, patch, merge) gives exactly what the general
path types. Checked by what the snapshot file holds and by comparing frames, not by timing."""
from __future__ import annotations

import random
import sys
import threading

import pandas as pd  # (a process that works with DataFrames: the notebook case)
import pyarrow.feather as feather
import pytest

from wanlab.log import NAMES, ExperimentLog, schema
from wanlab.log import frame as frame_mod


def _row(i: int) -> dict:
    return {"run_id": f"r{i}", "created": 1_770_000_000.0 + i, "host": "dashscope", "model": "wan2.7-t2v",
            "resolution": "720P", "duration": 5, "status": "SUCCEEDED", "prompt": f"p{i}"}


def _snapshot_hw(log: ExperimentLog) -> int:
    return int(feather.read_table(log.cache_path).schema.metadata[b"wanlab.hw"])


def test_close_leaves_the_snapshot_current_and_the_next_load_is_exact(tmp_path):
    path = tmp_path / "runs.sqlite"
    log = ExperimentLog(path)
    for i in range(30):
        log.insert(_row(i))
    assert not log.cache_path.exists()             # nothing read yet: no snapshot
    log.close()
    assert log.cache_path.exists() and _snapshot_hw(log) == 30

    again = ExperimentLog(path)
    for i in range(30, 35):
        again.insert(_row(i))
    again.update("r3", status="FAILED")
    df = again.df                                   # the snapshot plus the six rows changed since
    assert len(df) == 35 and df.set_index("run_id").loc["r3", "status"] == "FAILED"
    again.close()
    assert _snapshot_hw(again) == 36                # brought up to date at close

    third = ExperimentLog(path)
    assert third.df.equals(df) or len(third.df.compare(df)) == 0
    third.close()


def test_a_big_log_without_any_snapshot_is_not_read_whole_at_close(tmp_path):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    for i in range(12):
        log.insert(_row(i))
    log._frames.keep_current(small=10)              # over the size a close reads whole: left for the first load
    assert not log.cache_path.exists()
    log.close()


# -- refresh: the snapshot kept current by the writer thread, not only by a clean close ----------------------------

def _truth(log: ExperimentLog) -> pd.DataFrame:
    """The table as the general path types it: DataFrame.from_records of every row, then `typed`."""
    return schema.typed(pd.DataFrame.from_records(log._select("", []), columns=NAMES))


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert [repr(t) for t in got.dtypes] == [repr(t) for t in want.dtypes]  # categories, units, storage


def test_refresh_rewrites_the_snapshot_once_more_than_max_stale_rows_changed(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    log = ExperimentLog(path)
    for i in range(30):
        log.insert(_row(i))
    assert len(log.df) == 30                        # the first load leaves a snapshot
    assert _snapshot_hw(log) == 30
    for i in range(30, 33):
        log.insert(_row(i))
    assert log._frames.refresh(max_stale_rows=3) is False and _snapshot_hw(log) == 30   # 3 stale: allowed
    log.update("r5", status="FAILED")
    assert log._frames.refresh(max_stale_rows=3) is True and _snapshot_hw(log) == 34    # 4 stale: rewritten
    # nothing due: decided from the file's identity and an indexed count, the file is not read
    monkeypatch.setattr(frame_mod.FrameCache, "_read", lambda self: pytest.fail("read the snapshot"))
    assert log._frames.refresh(max_stale_rows=0) is False
    monkeypatch.undo()

    crashed = ExperimentLog(path)                   # a new kernel after a crash: nothing closed this log
    loads = []
    monkeypatch.setattr(frame_mod, "read", lambda conn, tail="", params=(): loads.append(tail) or schema.read(
        conn, tail, params))
    _assert_same(crashed.df, _truth(crashed))
    assert loads == [" WHERE seq > ? ORDER BY +created"]     # the snapshot plus the rows changed since: none


def test_refresh_in_a_process_that_never_asked_for_a_frame(tmp_path):
    path = tmp_path / "runs.sqlite"
    writer = ExperimentLog(path)
    for i in range(10):
        writer.insert(_row(i))
    assert writer._frames.refresh(max_stale_rows=5) is True          # no snapshot yet: read whole, once
    assert _snapshot_hw(writer) == 10 and writer._frames._mem is None  # and no frame kept in memory
    for i in range(10, 17):
        writer.insert(_row(i))
    assert writer._frames.refresh(max_stale_rows=5) is True          # built on the file
    assert _snapshot_hw(writer) == 17 and writer._frames._mem is None
    _assert_same(ExperimentLog(path).df, _truth(writer))


def test_refresh_needs_pandas_and_pyarrow_already_loaded(tmp_path, monkeypatch):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    for i in range(5):
        log.insert(_row(i))
    monkeypatch.delitem(sys.modules, "pyarrow")
    assert log._frames.refresh(max_stale_rows=0) is False and not log.cache_path.exists()
    monkeypatch.undo()
    assert log._frames.refresh(max_stale_rows=0) is True and log.cache_path.exists()


def test_a_refresh_racing_a_frame_from_another_thread_gives_exact_frames(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    log = ExperimentLog(path)
    for i in range(40):
        log.insert(_row(i))
    assert len(log.df) == 40
    for i in range(40, 45):
        log.insert(_row(i))

    # 1. the refresher stops between its read and its merge; meanwhile a row changes and the user's thread asks,
    # and waits for it (the cache's lock) instead of racing it
    inside, go = threading.Event(), threading.Event()
    patched = frame_mod._patched
    lock = log._frames._lock = _WatchedLock()

    def paused(old, delta):
        if threading.current_thread().name == "refresher" and not go.is_set():
            inside.set()
            assert go.wait(30)
        return patched(old, delta)

    monkeypatch.setattr(frame_mod, "_patched", paused)
    refresher = threading.Thread(target=log._frames.refresh, args=(0,), name="refresher")
    refresher.start()
    assert inside.wait(30)
    log.update("r2", status="SUCCEEDED", cost=0.25)            # after the refresher's read
    user: dict[str, pd.DataFrame] = {}
    reader = threading.Thread(target=lambda: user.setdefault("df", log._frames.frame()))
    reader.start()
    assert lock.waited.wait(30)                               # the user's frame() waits for the refresh
    go.set()
    refresher.join(30)
    reader.join(30)
    assert not refresher.is_alive() and not reader.is_alive()
    _assert_same(user["df"], _truth(log))                     # the user's frame has the change
    assert _snapshot_hw(log) == 45                            # the refresher wrote what it had read
    assert log._frames._mem[0] == 46                          # and the frame kept is the newer one
    _assert_same(ExperimentLog(path).df, _truth(log))         # and a new kernel gets the table exactly
    monkeypatch.undo()

    # 2. a refresher that never stops while this thread writes and reads
    stop = threading.Event()

    def keep_refreshing():
        while not stop.is_set():
            log._frames.refresh(max_stale_rows=0)

    loop = threading.Thread(target=keep_refreshing)
    loop.start()
    try:
        for i in range(45, 60):
            log.insert(dict(_row(i), host="wavespeed" if i % 3 else "dashscope"))
            log.update(f"r{i - 7}", status=["SUCCEEDED", "FAILED"][i % 2], notes=f"n{i}")
            _assert_same(log._frames.frame(), _truth(log))
    finally:
        stop.set()
        loop.join(30)
    _assert_same(ExperimentLog(path).df, _truth(log))


class _WatchedLock:
    """A lock that says when a thread had to wait for it."""

    def __init__(self) -> None:
        self.inner = threading.Lock()
        self.waited = threading.Event()

    def __enter__(self) -> None:
        if not self.inner.acquire(blocking=False):
            self.waited.set()
            self.inner.acquire()

    def __exit__(self, *exc: object) -> None:
        self.inner.release()


def _varied(i: int) -> dict:
    """Rows that exercise every conversion: nulls in categories, an all-null category column (protocol), text with
    newlines and non-ASCII, an unknown resolution, booleans, big integers, whole and fractional seconds."""
    return {
        "run_id": f"v{i}", "created": 1_770_000_000.0 + i + (0.125 if i % 4 == 0 else 0.0),
        "host": [None, "dashscope", "wavespeed", "sim:dashscope-beijing"][i % 4], "model": "wan2.7-t2v",
        "region": None if i % 2 else "singapore", "resolution": ["720P", "1080P", "4K", None, "480P"][i % 5],
        "prompt": ["a kite\nover a hill", "", None, "ünïcödé 雨"][i % 4], "duration": [5, None][i % 2],
        "seed": [2**52 + i, None, -1][i % 3], "status": ["SUCCEEDED", "FAILED", "RUNNING"][i % 3],
        "cost": [0.1 * i, None][i % 2], "conforms": [0, 1, None][i % 3], "url_expires": 1_770_086_400.0 + i,
        "currency": [None, "USD", "CNY"][i % 3],
    }


def test_dtypes_are_identical_on_the_snapshot_and_the_sqlite_path(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    log = ExperimentLog(path)
    for i in range(23):
        log.insert(_varied(i))
    cold = log.df                                   # SQLite, through Arrow
    _assert_same(cold, _truth(log))                 # … exactly what the general path gives
    log.update("v3", status="CANCELED", resolution="1080P", host="new-host", prompt="changed")
    log.insert(_varied(23))
    _assert_same(log.df, _truth(log))               # patched in memory
    log.insert(dict(_varied(24), created=1_769_000_000.0))  # created before the last row: the general merge
    _assert_same(log.df, _truth(log))
    log.close()

    again = ExperimentLog(path)                     # a new kernel: the snapshot file alone
    loads = []
    monkeypatch.setattr(frame_mod, "read", lambda conn, tail="", params=(): loads.append(tail) or schema.read(
        conn, tail, params))
    _assert_same(again.df, _truth(again))
    assert loads == [" WHERE seq > ? ORDER BY +created"]


def test_the_arrow_conversion_gives_what_typed_gives_without_falling_back(tmp_path, monkeypatch):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    for i in range(17):
        log.insert(_varied(i))
    rows = log._select("", [])
    want = _truth(log)
    general = schema.typed
    monkeypatch.setattr(schema, "typed", lambda raw: pytest.fail("fell back to the general path") if len(raw)
                        else general(raw))
    _assert_same(schema.from_rows(rows), want)
    with log._lock:
        _assert_same(schema.read(log._conn, " ORDER BY created"), want)
        empty = schema.read(log._conn, " WHERE 0")
    monkeypatch.undo()
    _assert_same(empty, schema.typed(pd.DataFrame.from_records([], columns=NAMES)))


def test_a_cell_arrow_cannot_take_is_read_the_general_way(tmp_path, monkeypatch):
    log = ExperimentLog(tmp_path / "runs.sqlite")
    for i in range(6):
        log.insert(_varied(i))
    want = _truth(log)

    def refuse(rows, text_as_bytes):
        raise ValueError("a cell of another type")

    monkeypatch.setattr(schema, "_arrow_typed", refuse)
    with log._lock:
        _assert_same(schema.read(log._conn, " ORDER BY created"), want)


def test_integers_beyond_float_precision_come_back_exact(tmp_path):
    """(The general path goes through float64 for an integer column with a NULL in it: 2**62 + 1 came back
    rounded; Arrow converts integers as integers.)"""
    log = ExperimentLog(tmp_path / "runs.sqlite")
    log.insert(dict(_row(0), seed=2**62 + 1, bytes=None))
    log.insert(dict(_row(1), seed=None, bytes=2**53 + 1))
    df = log.df
    assert df["seed"].tolist()[0] == 2**62 + 1 and df["bytes"].tolist()[1] == 2**53 + 1


def test_frames_patched_or_merged_equal_the_table_through_random_changes(tmp_path, monkeypatch):
    """Inserts (in order, and out of order), updates of every kind of column (new categories, values gone from
    every row, nulls, created itself), two processes: after each step both frames equal the table exactly."""
    paths = {"patched": 0, "merged": 0}
    patched, merged = frame_mod._patched, frame_mod._merged

    def count_patched(old, delta):
        out = patched(old, delta)
        paths["patched"] += out is not None
        return out

    def count_merged(old, delta):
        paths["merged"] += 1
        return merged(old, delta)

    monkeypatch.setattr(frame_mod, "_patched", count_patched)
    monkeypatch.setattr(frame_mod, "_merged", count_merged)
    rng = random.Random(3)
    path = tmp_path / "runs.sqlite"
    log, other = ExperimentLog(path), ExperimentLog(path)
    clock, n = [1_770_000_000.0], 0

    def new_row() -> dict:
        clock[0] += rng.choice([1.0, 0.5, 3.25])
        return dict(_varied(rng.randrange(60)), run_id=f"x{n}", created=clock[0],
                    status=rng.choice(["PENDING", "RUNNING"]))

    changes = [lambda: {"status": rng.choice(["SUCCEEDED", "FAILED", "CANCELED"])},
               lambda: {"host": rng.choice(["sim:wavespeed", None, "dashscope"])},
               lambda: {"notes": rng.choice(["n", None, "ü\n"])}, lambda: {"cost": rng.choice([0.5, None])},
               lambda: {"resolution": rng.choice(["480P", "8K", None])}, lambda: {"protocol": "dashscope"},
               lambda: {"created": clock[0] + 100.0 + rng.random()}, lambda: {"polls": rng.randrange(9)},
               lambda: {"currency": rng.choice(["USD", None])}, lambda: {"conforms": rng.choice([0, 1, None])}]
    for step in range(40):
        op = rng.random()
        if op < 0.4 or not n:
            for _ in range(rng.randint(1, 4)):
                log.insert(new_row())
                n += 1
        elif op < 0.85:
            for _ in range(rng.randint(1, 3)):
                log.update(f"x{rng.randrange(n)}", **rng.choice(changes)())
        else:
            log.insert(dict(new_row(), created=clock[0] - 50))   # created before the last row
            n += 1
        for lg in (log, other):
            _assert_same(lg._frames.frame(), _truth(lg))
        if step % 10 == 9:                                        # now and then a new kernel, from the file
            other._frames.refresh(max_stale_rows=0)
            other = ExperimentLog(path)
    assert paths["patched"] > 10 and paths["merged"] > 3


def test_the_writer_thread_keeps_the_snapshot_current_without_a_close(tmp_path, monkeypatch):
    """A job's updates go through the log's writer thread; when its queue empties it refreshes the snapshot
    once more than STALE_ROWS rows changed — so a kernel that dies without closing leaves it nearly current."""
    monkeypatch.setattr(frame_mod, "STALE_ROWS", 3)
    path = tmp_path / "runs.sqlite"
    log = ExperimentLog(path)
    for i in range(10):
        log.insert(_row(i))
    assert len(log.df) == 10 and _snapshot_hw(log) == 10
    futures = [log._db.write_later("UPDATE runs SET status = 'FAILED', seq = (SELECT MAX(seq) FROM runs) + 1 "
                                   "WHERE run_id = ?", [f"r{i}"]) for i in range(5)]
    for fut in futures:
        fut.result()
    log._db.writer.call(lambda conn: None).result()   # after the idle check that followed those writes …
    for t in [t for t in threading.enumerate() if t.name == "wanlab-log-snapshot"]:
        t.join()                                      # … and the refresh it started on a thread of its own
    assert _snapshot_hw(log) == 15                    # 5 rows changed > 3: rewritten, nobody asked for a frame
    crashed = ExperimentLog(path)                     # no close: a new kernel reads the snapshot, nothing since
    loads = []
    monkeypatch.setattr(frame_mod, "read", lambda conn, tail="", params=(): loads.append(tail) or schema.read(
        conn, tail, params))
    assert (crashed.df.set_index("run_id").loc[[f"r{i}" for i in range(5)], "status"] == "FAILED").all()
    assert loads == [" WHERE seq > ? ORDER BY +created"]


def test_the_writer_never_waits_for_the_logs_lock_to_keep_the_snapshot(tmp_path, monkeypatch):
    """A thread holding the log's lock may be waiting for the writer (a synchronous write comes after the
    queued ones): the snapshot refresh the writer starts must not need that lock on the writer's thread."""
    monkeypatch.setattr(frame_mod, "STALE_ROWS", 0)
    log = ExperimentLog(tmp_path / "runs.sqlite")
    for i in range(5):
        log.insert(_row(i))
    assert len(log.df) == 5
    sql = "UPDATE runs SET status = 'FAILED', seq = (SELECT MAX(seq) FROM runs) + 1 WHERE run_id = ?"
    with log._db.lock:                                 # held, as by a thread in a synchronous write
        log._db.write_later(sql, ["r1"]).result(timeout=30)    # a refresh is due after this one …
        log._db.write_later(sql, ["r2"]).result(timeout=30)    # … and the writer still serves the next
    for t in [t for t in threading.enumerate() if t.name == "wanlab-log-snapshot"]:
        t.join()
    assert _snapshot_hw(log) >= 6
    log.close()


# -- whole reads: no lock held for seconds; a log without a snapshot gets one even where pandas never loads --------

def test_a_whole_log_read_holds_no_lock_the_labs_threads_wait_on(tmp_path, monkeypatch):
    """A log with no snapshot is read whole (seconds at 100k rows): meanwhile the Lab's caller and loop threads
    still read and write through the log's connection."""
    log = ExperimentLog(tmp_path / "runs.sqlite")
    for i in range(5):
        log.insert(_row(i))
    inside, go = threading.Event(), threading.Event()
    real = frame_mod.read

    def slow(conn, tail="", params=()):
        if tail == " ORDER BY created" and not go.is_set():
            inside.set()
            assert go.wait(30)
        return real(conn, tail, params)

    monkeypatch.setattr(frame_mod, "read", slow)
    got: dict[str, pd.DataFrame] = {}
    reader = threading.Thread(target=lambda: got.setdefault("df", log.df))
    reader.start()
    try:
        assert inside.wait(30)                               # the whole read is under way …
        writer = threading.Thread(target=lambda: log.insert(_row(5)))
        writer.start()
        writer.join(30)
        assert not writer.is_alive()                         # … and a durable insert went through meanwhile
        assert log._db.query("SELECT COUNT(*) FROM runs") == [(6,)]
    finally:
        go.set()
        reader.join(30)
    assert len(got["df"]) == 5                               # one read snapshot: the rows as the read began
    _assert_same(log.df, _truth(log))                        # and the next frame has the sixth


_NO_PANDAS = r"""
import sys, threading
from wanlab.log import ExperimentLog
from wanlab.log import frame as frame_mod
frame_mod.COLD_ROWS = {cold}
log = ExperimentLog(sys.argv[1])
assert "pandas" not in sys.modules and "pyarrow" not in sys.modules
log._db.write_later("UPDATE runs SET notes = 'x', seq = (SELECT MAX(seq) FROM runs) + 1 WHERE run_id = 'r1'",
                    []).result(30)
log._db.writer.call(lambda conn: None).result(30)          # after the idle check that followed the write
for t in [t for t in threading.enumerate() if t.name == "wanlab-log-snapshot"]:
    t.join(60)
print("pandas" in sys.modules, "pyarrow" in sys.modules)
"""


@pytest.mark.parametrize("cold, builds", [(5, True), (20, False)])
def test_a_process_without_pandas_builds_a_big_logs_missing_snapshot_in_the_background(tmp_path, cold, builds):
    """A script or the command line (no pandas) writing to a log an older wanlab left without a snapshot: past
    COLD_ROWS rows the writer's idle check builds one in the background, so the next kernel's first `log.df`
    reads Arrow; a small log is left alone (no pandas imported for it)."""
    import subprocess

    path = tmp_path / "runs.sqlite"
    old = ExperimentLog(path)
    for i in range(12):
        old.insert(_row(i))
    assert not old.cache_path.exists()                       # (never closed here: a close would leave one)
    done = subprocess.run([sys.executable, "-c", _NO_PANDAS.format(cold=cold), str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ([str(builds)] * 2)
    assert old.cache_path.exists() is builds
    if builds:
        assert _snapshot_hw(old) == 13
        fresh = ExperimentLog(path)
        _assert_same(fresh.df, _truth(fresh))
