"""The public surface: `wanlab.__all__` is sorted and importable, the objects users get back are exported,
and `import wanlab` stays cheap."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import wanlab
import wanlab._views
import wanlab.ui
from wanlab import T2V

HEAVY = ("pandas", "matplotlib", "ipywidgets", "uvicorn", "starlette", "numpy", "IPython")


def test_all_is_sorted_unique_and_every_name_imports():
    assert wanlab.__all__ == sorted(wanlab.__all__)
    assert len(set(wanlab.__all__)) == len(wanlab.__all__)
    namespace: dict = {}
    exec("from wanlab import *", namespace)
    for name in wanlab.__all__:
        assert getattr(wanlab, name) is namespace[name], name


def test_the_types_users_get_back_are_exported(make_lab):
    for name in ("ExperimentLog", "Sweep", "SweepProgress", "Estimate", "ModelSpec", "PriceTable", "Budget",
                 "LogError", "Job", "JobEvent", "Status"):
        assert name in wanlab.__all__, name
    lab = make_lab()
    req = T2V("a kite over a hill", duration=2, seed=1)
    assert type(lab.log) is wanlab.ExperimentLog
    assert isinstance(lab.sweep(req, seed=[1, 2]), wanlab.Sweep)
    assert isinstance(lab.estimate(req), wanlab.Estimate)
    assert isinstance(lab.resolve(req), wanlab.ModelSpec)
    assert all(isinstance(m, wanlab.ModelSpec) for m in lab.models("t2v"))
    assert isinstance(lab.prices, wanlab.PriceTable)
    assert isinstance(lab.budget, wanlab.Budget)
    assert issubclass(wanlab.LogError, wanlab.WanlabError)


def _fresh(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_wanlab_pulls_in_no_heavy_library():
    loaded = _fresh("import json, sys, wanlab\n"
                    f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert loaded == []


def test_lazy_submodules_load_on_first_use():
    out = _fresh("import json, sys, wanlab\n"
                 "before = 'wanlab.plots' in sys.modules\n"
                 "from wanlab import plots\n"
                 "ui_before = 'wanlab.ui' in sys.modules\n"
                 "show = wanlab.show\n"
                 "print(json.dumps([before, plots is sys.modules['wanlab.plots'], 'plots' in dir(wanlab),\n"
                 "                  ui_before, show is sys.modules['wanlab.ui.gallery'].show]))")
    assert out == [False, True, True, False, True]


def test_the_domain_and_its_html_import_without_pandas_or_the_ui_package():
    loaded = _fresh("import json, sys\nimport wanlab, wanlab.sweep, wanlab._views, wanlab.jobs, wanlab.log\n"
                    "print(json.dumps([m for m in ('pandas', 'ipywidgets', 'wanlab.ui') if m in sys.modules]))")
    assert loaded == []
    views = ast.parse(Path(wanlab._views.__file__).read_text())     # a leaf: nothing from wanlab.ui
    imported = [n.module or "" for n in ast.walk(views) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m == "ui" or m.startswith("ui.") or "wanlab.ui" in m], imported
    assert wanlab.show is sys.modules["wanlab.ui.gallery"].show
    assert wanlab.ui.video.job_html is wanlab._views.job_html and wanlab.ui.Gallery is wanlab._views.Gallery


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        wanlab.nope  # noqa: B018
