"""The DataFrame snapshot is kept current at close, so the next process's first `log.df` reads Arrow: checked by
what the snapshot file holds, not by timing."""
from __future__ import annotations

import pandas  # noqa: F401  (a process that works with DataFrames: the notebook case)
import pyarrow.feather as feather

from wanlab.log import ExperimentLog


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
