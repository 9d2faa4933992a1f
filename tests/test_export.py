"""`ExperimentLog.to_mlflow`: one MLflow run per wanlab run (tag `wanlab.run_id`), brought up to date by every
export, never duplicated; bad input stops it before MLflow is touched. A local `sqlite:` store, no server."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from wanlab import T2V, ValidationError


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A tracking URI in the test's folder; MLflow puts artifacts under ./mlruns, so the test works there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _runs(uri: str, experiment: str) -> dict:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return {r.data.tags["wanlab.run_id"]: r for r in client.search_runs([exp.experiment_id])}


def test_exporting_again_updates_each_run_and_never_adds_one(make_lab, store):
    lab = make_lab(measure=False)
    jobs = [lab.run_sync(T2V("a kite over a hill", duration=2, seed=s), timeout=60) for s in (1, 2)]
    caught, other = jobs[0].id, jobs[1].id
    finished = {k: lab.log.get(caught)[k] for k in ("status", "ended", "cost", "path", "error_code")}
    # as the first export saw it: running, after an error it was resumed from
    lab.log.update(caught, status="RUNNING", ended=None, cost=None, path=None, error_code="wanlab.Detached")

    assert lab.log.to_mlflow("kites", tracking_uri=store) == 2
    runs = _runs(store, "kites")
    assert set(runs) == {caught, other}
    first = runs[caught]
    assert first.info.status == "RUNNING" and first.data.tags["status"] == "RUNNING"
    assert first.data.tags["error_code"] == "wanlab.Detached"
    assert "cost" not in first.data.metrics and "flicker" not in first.data.metrics
    assert first.data.params["seed"] == "1" and first.data.params["resolution"] == "720P"
    client = MlflowClient(store)
    assert client.list_artifacts(first.info.run_id) == []

    # the run finished, was measured (clip_score too: a local CLIP model), and the export runs again
    lab.log.update(caught, **finished, flicker=0.25, motion=0.5, sharpness=900.0, first_ssim=0.8, clip_score=0.31)
    lab.log.set_rating(caught, 4)
    assert lab.log.to_mlflow("kites", tracking_uri=store) == 2
    again = _runs(store, "kites")
    assert len(client.search_runs([first.info.experiment_id])) == 2
    updated = again[caught]
    assert updated.info.run_id == first.info.run_id
    assert updated.info.status == "FINISHED" and updated.data.tags["status"] == "SUCCEEDED"
    assert updated.data.tags["wanlab.run_id"] == caught and "error_code" not in updated.data.tags
    assert updated.data.metrics["rating"] == 4
    assert updated.data.metrics["cost"] == pytest.approx(finished["cost"]) and finished["cost"] > 0
    for name, value in {"flicker": 0.25, "motion": 0.5, "sharpness": 900.0, "first_ssim": 0.8, "clip_score": 0.31}.items():
        assert updated.data.metrics[name] == pytest.approx(value)
    assert updated.data.params == first.data.params
    assert [a.path for a in client.list_artifacts(first.info.run_id)] == [Path(finished["path"]).name]

    # nothing changed: a third export writes nothing new (one value per metric, the video once)
    lab.log.to_mlflow("kites", tracking_uri=store)
    assert len(client.get_metric_history(first.info.run_id, "cost")) == 1
    assert len(client.list_artifacts(first.info.run_id)) == 1
    assert len(client.search_runs([first.info.experiment_id])) == 2


def test_one_run_id_exports_that_run_only(make_lab, store):
    lab = make_lab(measure=False)
    a, b = (lab.run_sync(T2V("a kite over a hill", duration=2, seed=s), timeout=60) for s in (3, 4))
    assert lab.log.to_mlflow("one", run_ids=a.id, tracking_uri=store) == 1    # a str is one id, not its letters
    assert set(_runs(store, "one")) == {a.id}
    assert lab.log.to_mlflow("one", run_ids=[a.id, b.id], tracking_uri=store) == 2
    assert set(_runs(store, "one")) == {a.id, b.id}


def test_bad_input_touches_no_mlflow_store(make_lab, store, tmp_path):
    lab = make_lab(measure=False)
    job = lab.run_sync(T2V("a kite over a hill", duration=2, seed=5), timeout=60)
    with pytest.raises(KeyError, match="no run 'nope'"):
        lab.log.to_mlflow("x", run_ids=[job.id, "nope"], tracking_uri=store)
    with pytest.raises(ValidationError, match="experiment=''"):
        lab.log.to_mlflow("", tracking_uri=store)
    assert not (tmp_path / "mlflow.db").exists()


def test_without_mlflow_the_error_says_what_to_install(make_lab, monkeypatch):
    lab = make_lab(measure=False)
    monkeypatch.setitem(sys.modules, "mlflow", None)      # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'wanlab\[mlflow\]'"):
        lab.log.to_mlflow()
