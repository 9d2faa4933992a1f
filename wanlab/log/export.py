"""The log out to other tools: CSV, Parquet, MLflow. Each takes the ExperimentLog (they are its methods)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import ExperimentLog


def to_csv(log: ExperimentLog, path: str | os.PathLike) -> Path:
    log.df.to_csv(path, index=False)
    return Path(path)


def to_parquet(log: ExperimentLog, path: str | os.PathLike) -> Path:
    log.df.to_parquet(path, index=False)
    return Path(path)


def to_mlflow(log: ExperimentLog, experiment: str = "wanlab", run_ids: Iterable[str] | None = None) -> int:
    """Export runs to MLflow (parameters, metrics, the video as an artifact). Needs `pip install mlflow`."""
    try:
        import mlflow
    except ImportError:
        raise ImportError("to_mlflow needs mlflow: pip install mlflow") from None
    rows = log.rows() if run_ids is None else [log.get(r) for r in run_ids]
    mlflow.set_experiment(experiment)
    n = 0
    for row in rows:
        with mlflow.start_run(run_name=row["run_id"]):
            mlflow.log_params(
                {
                    k: row[k]
                    for k in ("host", "region", "model", "mode", "resolution", "duration", "seed", "status", "task_id")
                    if row[k] is not None
                }
            )
            mlflow.set_tag("prompt", (row["prompt"] or "")[:5000])
            mlflow.log_metrics(
                {
                    k: float(row[k])
                    for k in ("latency_s", "queue_s", "run_s", "cost", "est_cost", "polls")
                    if row[k] is not None
                }
            )
            if row["path"] and Path(row["path"]).exists():
                mlflow.log_artifact(row["path"])
        n += 1
    return n
