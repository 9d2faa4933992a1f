"""wanlab sim: an offline stand-in for DashScope and WaveSpeed that renders real, deterministic MP4s.

    from wanlab.sim import SimServer
    with SimServer(time_scale=0.01) as sim:
        ...   # point an SDK at sim.dashscope_url() or sim.wavespeed_url

See docs/SIM.md for the fault grammar and what is faithful to the hosts."""

from .faults import GRAMMAR as FAULT_GRAMMAR
from .faults import Fault, FaultPlan
from .server import SimServer
from .settings import SimSettings

__all__ = ["SimServer", "SimSettings", "FaultPlan", "Fault", "FAULT_GRAMMAR"]
