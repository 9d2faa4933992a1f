"""The stop button in a real Jupyter kernel (jupyter_client): `await lab.run(...)` and `lab.run_sync(...)`
end the cell and cancel a queued task on the host; a running task (the host will not cancel it, and bills
it) is still downloaded, and its row says so."""
from __future__ import annotations

import queue
import time

import pytest
from jupyter_client import KernelManager

from wanlab.log import ExperimentLog
from wanlab.sim import SimServer

from .conftest import KEY

TS = 0.01
SETUP = """
import wanlab
from wanlab import T2V, Status
lab = wanlab.Lab(provider="dashscope", api_key={key!r}, base_url={url!r}, time_scale={ts}, home={home!r}, quiet=True)
"""


class Kernel:
    def __init__(self) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 60) -> dict:
        msg_id = self.kc.execute(code)
        return self.reply(msg_id, timeout)

    def reply(self, msg_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no reply within {timeout} s") from None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel():
    k = Kernel()
    yield k
    k.close()


def _wait(pred, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def _only_task(sim: SimServer, status: str) -> bool:
    return sim.stats()["tasks"].get(status, 0) == 1


def _stop_while(kernel: Kernel, sim: SimServer, tmp_path, cell: str, status: str) -> dict:
    """Run `cell` in a fresh Lab, press the stop button once the host shows the task `status`; the reply."""
    setup = SETUP.format(key=KEY, url=sim.dashscope_url(), ts=TS, home=str(tmp_path / "runs"))
    assert kernel.execute(setup)["status"] == "ok"
    msg_id = kernel.kc.execute(cell)
    _wait(lambda: _only_task(sim, status), f"the task is {status} on the host")
    kernel.km.interrupt_kernel()
    reply = kernel.reply(msg_id, timeout=60)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    return reply


@pytest.mark.parametrize("call", ["await lab.run", "lab.run_sync"])
def test_stop_button_cancels_a_queued_task(kernel, tmp_path, call):
    # queued for ≈ 10⁵ host s (1,000 s here): a cell that ends on its own would take far past the limit below
    with SimServer(time_scale=TS, seed=1, queue_base_s=100_000, latency_sigma=0.0) as sim:
        t0 = time.monotonic()
        _stop_while(kernel, sim, tmp_path, f"job = {call}(T2V('queued', duration=5, seed=1))", "PENDING")
        took = time.monotonic() - t0
        _wait(lambda: _only_task(sim, "CANCELED"), "the host shows the task CANCELED", limit=30)
        log = ExperimentLog(tmp_path / "runs" / "runs.sqlite")
        _wait(lambda: log.rows()[0]["status"] == "CANCELED", "the log says CANCELED", limit=30)
        assert log.rows()[0]["cost"] == 0.0, log.rows()[0]
        print(f"\n{call}: cell ended {took:.2f} s after the task was seen PENDING (interrupt included)")


@pytest.mark.parametrize("call", ["await lab.run", "lab.run_sync"])
def test_stop_button_on_a_running_task_still_downloads_it(kernel, tmp_path, call):
    with SimServer(time_scale=TS, seed=1, queue_base_s=0, latency_sigma=0.0) as sim:
        _stop_while(kernel, sim, tmp_path, f"job = {call}(T2V('running', duration=10, resolution='1080P', seed=2))",
                    "RUNNING")
        # the cell is free; the paid task goes on and its video is fetched in the background
        code = ("lab.wait(timeout=120)\nj = lab.jobs[-1]\n"
                "assert j.status is Status.SUCCEEDED and j.video_path.exists(), j\n"
                "assert j.cancel_outcome == 'refused', j.events")
        assert kernel.execute(code, timeout=180)["status"] == "ok"
        row = ExperimentLog(tmp_path / "runs" / "runs.sqlite").rows()[0]
        assert row["status"] == "SUCCEEDED" and "would not cancel" in row["cancel"] and row["cost"] > 0
