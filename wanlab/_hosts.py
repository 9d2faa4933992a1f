"""Which host a Lab talks to, from its arguments and the environment: `WANLAB_PROVIDER`,
`DASHSCOPE_API_KEY` (+ `DASHSCOPE_REGION`), `WAVESPEED_API_KEY`, else the embedded simulator — said
once. A key with a region means DashScope; only no key at all means the simulator."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from .errors import ConfigError
from .limits import Limits
from .secret import Secret

KEY_ENV = {"dashscope": "DASHSCOPE_API_KEY", "wavespeed": "WAVESPEED_API_KEY"}
SIM_KEY = "sk-wanlab-sim-local"  # the embedded sim accepts any non-empty key


@dataclass(frozen=True)
class Where:
    provider: str  # "dashscope" | "wavespeed" | "sim"
    protocol: str  # the wire protocol spoken: "dashscope" | "wavespeed"
    region: str  # DashScope's region, "" for WaveSpeed
    time_scale: float  # host seconds → real seconds (the sim runs faster)
    secret: Secret
    host: str  # the label in the log: "dashscope", "wavespeed" or "sim"
    limits: Limits | None  # the default limits when the caller gave none


def choose(
    provider: str | None,
    *,
    api_key: str | None,
    region: str | None,
    protocol: str | None,
    time_scale: float | None,
    quiet: bool,
) -> Where:
    provider = provider or os.environ.get("WANLAB_PROVIDER") or None
    if provider is None:
        if api_key and not region:
            raise ConfigError("api_key given without provider=: say provider='dashscope' or 'wavespeed'")
        if api_key or os.environ.get(KEY_ENV["dashscope"]):  # a key and a region: only DashScope has regions
            provider = "dashscope"
        elif os.environ.get(KEY_ENV["wavespeed"]):
            provider = "wavespeed"
        else:
            provider = "sim"
            if not quiet:
                print(
                    "wanlab: no DASHSCOPE_API_KEY or WAVESPEED_API_KEY set — using the embedded simulator "
                    "(offline, free, simulated videos).",
                    file=sys.stdout,
                )
    if provider not in ("dashscope", "wavespeed", "sim"):
        raise ConfigError(f"provider={provider!r}; use 'dashscope', 'wavespeed' or 'sim'")
    if provider == "sim":
        wire = protocol or "dashscope"
        if wire not in KEY_ENV:
            raise ConfigError(f"protocol={protocol!r}; the sim speaks 'dashscope' or 'wavespeed'")
        # The sim enforces DashScope's published limits on both protocols by default.
        return Where(
            "sim",
            wire,
            (region or "singapore") if wire == "dashscope" else "",
            0.01 if time_scale is None else time_scale,
            Secret(api_key or SIM_KEY),
            "sim",
            Limits.for_host("dashscope"),
        )
    secret = Secret(api_key) if api_key else Secret(env=KEY_ENV[provider])
    if not secret:
        raise ConfigError(
            f"provider={provider!r} needs an API key: set {KEY_ENV[provider]} or pass "
            f"api_key=…; or use provider='sim' to work offline"
        )
    where = (region or os.environ.get("DASHSCOPE_REGION") or "singapore") if provider == "dashscope" else (region or "")
    return Where(provider, provider, where, 1.0 if time_scale is None else time_scale, secret, provider, None)
