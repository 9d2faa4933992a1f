"""Every knob of the sim in one place. Items marked [2nd]/[unverified] in docs/WIRE.md are
settings here, never constants in the route code."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from ..catalog import REGIONS

# Invented teaching values, NOT measurements of the real hosts (docs/SIM.md): how much longer than the
# reference (queue_base_s; the catalog's run time) each sim host queues and runs, so that comparing hosts
# offline shows differences to reason about. (queue factor, run-time factor) per host.
LATENCY_PROFILES: dict[str, tuple[float, float]] = {
    "dashscope-singapore": (1.0, 1.0),  # the reference
    "dashscope-beijing": (10.0, 1.15),  # a busier queue, slightly slower runs
    "dashscope-virginia": (2.0, 1.0),  # WAN 2.6 only: its run times are the 2.6 models' catalog times
    "wavespeed": (0.25, 0.6),  # hardly any queue, faster runs
}


def _factor(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


@dataclass
class SimSettings:
    time_scale: float = 1.0  # 1.0 = the hosts' real minutes; 0.01 for tests and demos
    seed: int = 0
    # latency model: median from catalog.ModelSpec.expected_latency, log-normal noise
    latency_sigma: float = 0.15
    queue_base_s: float = 4.0  # host seconds a task waits PENDING even with a free slot
    # per host ("dashscope-<region>", "wavespeed"): (queue factor, run-time factor); keys not given keep
    # LATENCY_PROFILES' values, a host not listed runs at (1, 1)
    latency_profiles: dict[str, tuple[float, float]] = field(default_factory=dict)
    # DashScope limits per key (the sim treats a key as an account) [doc]; rates are per real second
    dashscope_concurrency: int = 5
    dashscope_submits_per_s: float | None = 5
    dashscope_queries_per_s: float | None = 20
    dashscope_utc_offset_h: float = 8  # Beijing times are UTC+8 [doc]; other regions [unverified]
    # Missing X-DashScope-Async: the message is widely quoted [2nd]; status and code [unverified]
    dashscope_sync_error_status: int = 403
    dashscope_sync_error_code: str = "AccessDenied"
    # WaveSpeed account level (Bronze by default) [doc, two revisions disagree]
    wavespeed_concurrency: int = 3
    wavespeed_submits_per_min: float | None = None
    rate_limit_retry_after_s: float = 1.0
    # media and storage
    strict_media: bool = False  # unreachable external URL: False = placeholder render, True = FAILED
    render_workers: int = 2
    render_cache_entries: int = 64
    render_cache_mb: float = 512.0
    storage: str = "memory"  # "memory" or a directory path for result videos
    ttl_s: float = 24 * 3600  # task ids and result URLs live 24 h [doc]
    wavespeed_result_ttl_s: float = 24 * 3600  # [unverified]
    oss_ttl_s: float = 48 * 3600  # oss:// uploads live 48 h [doc]
    fps: int = 30
    label: str = "SIMULATION"
    max_upload_mb: float = 200.0

    def __post_init__(self) -> None:
        given = self.latency_profiles
        if not isinstance(given, dict):
            raise TypeError(f"latency_profiles must be a dict of host → (queue factor, run factor), got {given!r}")
        hosts = [f"dashscope-{r}" for r in REGIONS] + ["wavespeed"]
        for name, pair in given.items():
            if name not in hosts:
                raise ValueError(f"latency_profiles: unknown host {name!r}; use {', '.join(hosts)}")
            ok = isinstance(pair, (tuple, list)) and len(pair) == 2
            if not ok or not all(_factor(f) for f in pair):
                raise ValueError(
                    f"latency_profiles[{name!r}] = {pair!r}: give (queue factor, run-time factor), two finite "
                    f"numbers ≥ 0, e.g. (3.0, 1.1)"
                )
        self.latency_profiles = {**LATENCY_PROFILES, **{k: (float(q), float(r)) for k, (q, r) in given.items()}}

    def profile(self, host: str, region: str) -> tuple[float, float]:
        """(queue factor, run-time factor) of a sim host: "dashscope" + region, or "wavespeed"."""
        return self.latency_profiles.get(f"{host}-{region}" if region else host, (1.0, 1.0))

    @classmethod
    def build(cls, **kwargs) -> SimSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown sim setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**kwargs)
