"""The sim touches logging only while a server runs, and only uvicorn's own loggers.

Run in a fresh interpreter: other tests in this process may hold a running SimServer."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging, tempfile
    NAMES = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

    def state():
        return [(n, logging.getLogger(n).level, list(logging.getLogger(n).handlers),
                 logging.getLogger(n).propagate, logging.getLogger(n).disabled) for n in NAMES]

    before = state()
    bystander = logging.FileHandler(tempfile.mktemp())
    logging.getLogger("bystander").addHandler(bystander)

    import wanlab.sim                       # importing changes nothing
    assert state() == before, ("import", state())

    a = wanlab.sim.SimServer(time_scale=0.01).start()
    up = logging.getLogger("uvicorn")
    assert len(up.handlers) == 1 and not up.propagate, up.handlers           # warnings reach stderr
    assert logging.getLogger("uvicorn.error").level == logging.WARNING
    b = wanlab.sim.SimServer(time_scale=0.01).start()
    a.stop()
    assert len(logging.getLogger("uvicorn").handlers) == 1                 # b still runs
    b.stop()
    b.stop()                                                                # idempotent
    assert state() == before, ("after stop", state())
    # uvicorn's default set-up (dictConfig) would have closed every handler in the process
    assert bystander.stream is not None
    print("ok")
""")


def test_import_and_servers_leave_logging_as_it_was() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
