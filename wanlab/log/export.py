"""The log out to other tools: CSV, Parquet, MLflow. Each takes the ExperimentLog (they are its methods)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..quality import QUALITY_COLUMNS

if TYPE_CHECKING:
    from .core import ExperimentLog

RUN_TAG = "wanlab.run_id"  # the MLflow run of a wanlab run is found by this tag, so exports update, never duplicate
# MLflow params never change once logged: only what a run fixes when it is created
PARAMS = ("host", "region", "model", "mode", "resolution", "duration", "seed", "study")
# what a run gains or changes later (task, status, measurement): tags and metrics, brought up to date every export
TAGS = ("status", "task_id", "error_code", "currency", "price_source", "sha256", "conformance", "quality_error")
METRICS = (
    ("latency_s", "queue_s", "run_s", "polls", "retries", "billed_seconds", "est_cost", "cost", "rating")
    + tuple(c for c in QUALITY_COLUMNS if c != "conformance")
    + ("clip_score",)
)
# an unfinished wanlab run is RUNNING in MLflow; an ended one ends there with the nearest MLflow status
ENDED = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "UNKNOWN": "FAILED", "CANCELED": "KILLED"}


def to_csv(log: ExperimentLog, path: str | os.PathLike) -> Path:
    log.df.to_csv(path, index=False)
    return Path(path)


def to_parquet(log: ExperimentLog, path: str | os.PathLike) -> Path:
    log.df.to_parquet(path, index=False)
    return Path(path)


def to_mlflow(
    log: ExperimentLog,
    experiment: str = "wanlab",
    run_ids: Iterable[str] | None = None,
    *,
    tracking_uri: str | None = None,
) -> int:
    """Export runs (all, or `run_ids`) to the MLflow `experiment` (created if missing) at `tracking_uri`
    (default: MLflow's own, `MLFLOW_TRACKING_URI` or ./mlflow.db); returns how many runs were exported.

    Idempotent: each MLflow run carries the tag `wanlab.run_id`, and exporting again updates that run
    instead of making another. Params (host, region, model, mode, resolution, duration, seed, study) are
    fixed at creation, so they are set once; status, task id, errors and currency are tags, timings, costs,
    the rating and the quality figures (flicker … last_ssim, clip_score, when measured) metrics, updated when they
    changed; the MLflow run ends FINISHED / FAILED / KILLED once the wanlab run ends. The video is logged
    as an artifact once, when it exists. Needs `pip install 'wanlab[mlflow]'` (MLflow's client, and
    SQLAlchemy for a local `sqlite:` store)."""
    if not isinstance(experiment, str) or not experiment.strip():
        raise ValidationError(f"to_mlflow: experiment={experiment!r}; give the MLflow experiment's name, e.g. 'wanlab'")
    # every run id is looked up before MLflow is touched: a typo exports nothing
    rows = log.rows() if run_ids is None else [log.get(r) for r in _ids(run_ids)]
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise ImportError(
            "to_mlflow needs MLflow: pip install 'wanlab[mlflow]' (or pip install mlflow-skinny sqlalchemy alembic)"
        ) from None
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    known = _runs_by_tag(client, exp_id)
    for row in rows:
        run = known.get(row["run_id"])
        if run is None:
            run = client.create_run(
                exp_id, start_time=_ms(row["created"]), tags={RUN_TAG: row["run_id"]}, run_name=row["run_id"]
            )
        _update(client, run, row)
    return len(rows)


def _ids(run_ids: Iterable[str]) -> list[str]:
    if isinstance(run_ids, str):  # one id would otherwise be read as its characters
        return [run_ids]
    return list(run_ids)


def _runs_by_tag(client: Any, exp_id: str) -> dict[str, Any]:
    """wanlab run id → its MLflow run, over every page of the experiment's runs."""
    found: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs([exp_id], filter_string=f"tags.`{RUN_TAG}` != ''", page_token=token)
        for run in page:
            found.setdefault(run.data.tags.get(RUN_TAG), run)
        token = page.token
        if not token:
            return found


def _update(client: Any, run: Any, row: Mapping[str, Any]) -> None:
    """Bring one MLflow run up to date with its log row, writing only what is new or changed."""
    from mlflow.entities import Metric, Param, RunTag

    data, rid = run.data, run.info.run_id
    params = [Param(k, str(row[k])) for k in PARAMS if row[k] is not None and k not in data.params]
    tags = {k: str(row[k]) for k in TAGS if row[k] is not None}
    tags["prompt"] = (row["prompt"] or "")[:5000]
    now = int(time.time() * 1000)  # a later timestamp at step 0 makes the new value MLflow's latest
    metrics = [
        Metric(k, float(row[k]), now, 0) for k in METRICS if _number(row[k]) and data.metrics.get(k) != float(row[k])
    ]
    new_tags = [RunTag(k, v) for k, v in tags.items() if data.tags.get(k) != v]
    if params or metrics or new_tags:
        client.log_batch(rid, metrics=metrics, params=params, tags=new_tags)
    for k in TAGS:
        if row[k] is None and k in data.tags:  # cleared in the log (a resumed run's error): not stale in MLflow
            client.delete_tag(rid, k)
    path = row["path"]
    if path and Path(path).exists() and Path(path).name not in {f.path for f in client.list_artifacts(rid)}:
        client.log_artifact(rid, path)
    status = ENDED.get(row["status"] or "")
    if status is not None and status != run.info.status:
        client.set_terminated(rid, status, end_time=_ms(row["ended"] or row["updated"]))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _ms(seconds: float | None) -> int | None:
    """A log time (seconds since the epoch) as MLflow's milliseconds."""
    return None if seconds is None else int(seconds * 1000)
