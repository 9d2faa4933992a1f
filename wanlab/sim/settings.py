"""Every knob of the sim in one place. Items marked [2nd]/[unverified] in docs/WIRE.md are
settings here, never constants in the route code."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class SimSettings:
    time_scale: float = 1.0  # 1.0 = the hosts' real minutes; 0.01 for tests and demos
    seed: int = 0
    # latency model: median from catalog.ModelSpec.expected_latency, log-normal noise
    latency_sigma: float = 0.15
    queue_base_s: float = 4.0  # host seconds a task waits PENDING even with a free slot
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

    @classmethod
    def build(cls, **kwargs) -> SimSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown sim setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**kwargs)
