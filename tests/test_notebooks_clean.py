"""Teaching notebooks are stored stripped (as nbstripout leaves them): no outputs, no execution counts,
so diffs stay readable and nbval only runs them; each has assertions inside its cells."""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_the_eight_teaching_notebooks_are_there():
    names = [p.stem[:2] for p in NOTEBOOKS]
    assert names == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped_and_asserts(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert any("assert " in c.source for c in code)


@pytest.mark.parametrize("name", ["03_seed_study", "04_cost_latency_grid", "07_prompt_b_vs_a", "08_which_host"])
def test_papermill_parameters_cell(name):
    nb = nbformat.read(Path(__file__).parent.parent / "notebooks" / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
