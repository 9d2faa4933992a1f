"""`import wanlab` changes nothing outside wanlab: no record factory, no logger or handler touched, no
matplotlib backend chosen; masking a live key in log records is undone once no key is live."""
from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys

KEY = "sk-live-0123456789abcdefWXYZ"

# A snapshot of every logger's (and every handler's) filters, handlers and level, and the record factory.
SNAPSHOT = r"""
import json, logging

def snapshot():
    loggers = {"": logging.getLogger()}
    loggers.update({n: l for n, l in logging.Logger.manager.loggerDict.items() if isinstance(l, logging.Logger)})
    state = {}
    for name, lg in loggers.items():
        state[name] = {"level": lg.level, "propagate": lg.propagate, "disabled": lg.disabled,
                       "filters": [repr(f) for f in lg.filters],
                       "handlers": [(repr(h), [repr(f) for f in h.filters]) for h in lg.handlers]}
    last = logging.lastResort
    state["<lastResort>"] = {"filters": [repr(f) for f in last.filters] if last else None}
    return {"factory_is_default": logging.getLogRecordFactory() is logging.LogRecord, "loggers": state}

DEFAULT = {"level": 0, "propagate": True, "disabled": False, "filters": [], "handlers": []}

def changed(before, after):
    # loggers whose state differs from `before` (a logger made since must be in its default state)
    return sorted(n for n, s in after["loggers"].items() if s != before["loggers"].get(n, DEFAULT))
"""


def _run(code: str, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-c", SNAPSHOT + code], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_wanlab_leaves_logging_alone():
    out = _run("import logging, sys\n"
               "logging.basicConfig(level=logging.INFO)\n"          # a user's setup, made before the import
               "import httpx, httpcore\n"                           # their loggers exist before wanlab's import
               "before = snapshot()\n"
               "import wanlab, wanlab.ui, wanlab._views, wanlab.sweep, wanlab.secret\n"
               "after = snapshot()\n"
               "print(json.dumps({'changed': changed(before, after), 'factory': after['factory_is_default'],\n"
               "                  'n': len(after['loggers'])}))")
    assert out["factory"] is True and out["changed"] == [] and out["n"] > 3


def test_a_live_key_masks_records_then_leaves_no_trace():
    out = _run("import gc, io, logging\n"
               "stream = io.StringIO()\n"
               "logging.basicConfig(level=logging.DEBUG, stream=stream)\n"
               "logging.getLogger('uvicorn.access').propagate = False\n"
               "import wanlab\n"
               "before = snapshot()\n"
               "from wanlab.secret import Secret\n"
               f"s = Secret({KEY!r})\n"
               "late = logging.getLogger('httpcore.http2')\n"           # a child logger made after the key
               f"late.debug('headers: authorization=Bearer %s', {KEY!r})\n"
               f"logging.getLogger('myapp').info('user text %s', {KEY!r})\n"   # not ours: left alone
               "during = logging.getLogRecordFactory() is logging.LogRecord\n"
               "del s; gc.collect()\n"
               "after = snapshot()\n"
               "print(json.dumps({'text': stream.getvalue(), 'changed': changed(before, after), 'factory': during}))")
    assert f"authorization=Bearer {KEY[:3]}…{KEY[-4:]}" in out["text"] and out["text"].count(KEY) == 1
    assert f"user text {KEY}" in out["text"]
    assert out["factory"] is True and out["changed"] == []


def test_forget_detaches_the_mask(caplog):
    from wanlab.secret import KeyMask, Secret

    s = Secret(KEY)
    handlers = logging.getLogger().handlers
    assert any(isinstance(f, KeyMask) for h in handlers for f in h.filters)
    with caplog.at_level(logging.INFO, logger="wanlab"):
        logging.getLogger("wanlab.somewhere.new").info("key %s", KEY)
    assert KEY not in caplog.text
    s.forget()
    gc.collect()
    from wanlab import secret

    if not any(True for _ in secret._REGISTRY):       # other tests' keys may still be live in this process
        assert not any(isinstance(f, KeyMask) for h in handlers for f in h.filters)


def test_a_report_keeps_the_kernels_matplotlib_backend(tmp_path):
    out = tmp_path / "demo"
    got = _run("import sys, matplotlib\n"
               "before = matplotlib.get_backend()\n"
               "from wanlab.cli import main\n"
               f"rc = main(['demo', '--out', {str(out)!r}, '--resolution', '720P', '--duration', '2', "
               "'--seed', '1'])\n"
               "print(json.dumps({'rc': rc, 'before': before, 'after': matplotlib.get_backend(),\n"
               "                  'pyplot': 'matplotlib.pyplot' in sys.modules}))",
               env={"MPLBACKEND": "svg"})
    assert got["rc"] == 0 and (out / "report.html").exists() and (out / "latency_heatmap.png").stat().st_size > 5_000
    assert got["before"].lower() == "svg" and got["after"] == got["before"]
    assert got["pyplot"] is False
