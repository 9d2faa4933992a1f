"""Notebook 04 run by papermill with other parameters: a budget smaller than its grid shows what the budget
stopped (and its own checks hold), a smaller grid just runs. The kernel is the venv's `python3` (JUPYTER_PATH,
as for nbval); WANLAB_HOME (conftest) keeps its log in the test's folder, where the test reads it back."""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from wanlab.log import ExperimentLog

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "04_cost_latency_grid.ipynb"
SUMMARY = re.compile(r"(\d+) cells: (.*); spent ([\d.]+) (\w+) of a ([\d.]+) (\w+) budget(?: — stopped: (.*))?")


def _execute(tmp_path: Path, **parameters) -> tuple[nbformat.NotebookNode, ExperimentLog]:
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), parameters={"time_scale": 0.002, **parameters}, kernel_name="python3",
        cwd=str(tmp_path), progress_bar=False,
    )
    return nbformat.read(out, as_version=4), ExperimentLog(Path(os.environ["WANLAB_HOME"]) / "runs.sqlite")


def _grid_summary(nb: nbformat.NotebookNode) -> re.Match:
    """The line `print(sweep.summary)` wrote for the grid (the cell that runs it under `budget`)."""
    cell = next(c for c in nb.cells if "sweep.run(budget=budget)" in c.source)
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
    found = SUMMARY.search(text)
    assert found, text
    return found


def test_a_budget_smaller_than_the_grid_shows_what_it_stopped(tmp_path):
    # 720P: 2, 2, 5 s fit 1.00 USD (0.90); every other cell of the 7.50 USD grid is refused
    nb, log = _execute(tmp_path, budget=1.0)
    cells, counts, spent, cur, limit, cur2, stopped = _grid_summary(nb).groups()
    assert (cells, counts, cur, cur2) == ("12", "3 SUCCEEDED, 9 not started", "USD", "USD")
    assert float(spent) <= float(limit) == 1.0
    assert stopped.startswith("the budget stopped 9 of 12 cells: budget 1.00 USD")
    rows = log.rows(study="cost-grid")
    assert len(rows) == 3 and {r["status"] for r in rows} == {"SUCCEEDED"}
    assert sum(r["cost"] for r in rows) == pytest.approx(float(spent)) and float(spent) <= 1.0
    assert sorted((r["resolution"], r["duration"]) for r in rows) == [("720P", 2), ("720P", 2), ("720P", 5)]
    log.close()


def test_a_smaller_grid_runs_whole(tmp_path):
    nb, log = _execute(tmp_path, resolutions=["720P"], durations=[2], seeds=[3, 4])
    cells, counts, spent, cur, limit, _, stopped = _grid_summary(nb).groups()
    assert (cells, counts, stopped) == ("2", "2 SUCCEEDED", None)
    assert float(spent) == pytest.approx(0.40) and cur == "USD" and float(limit) == 20.0
    rows = log.rows(study="cost-grid")
    assert sorted(r["seed"] for r in rows) == [3, 4] and {r["status"] for r in rows} == {"SUCCEEDED"}
    log.close()
