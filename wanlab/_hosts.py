"""Which host a Lab talks to, from its arguments and the environment: `WANLAB_PROVIDER`,
`DASHSCOPE_API_KEY` (+ `DASHSCOPE_REGION`), `WAVESPEED_API_KEY`, else the embedded simulator — said
once. A key with a region means DashScope; only no key at all means the simulator. Also what the log calls
a host (`sim:dashscope-beijing`, …; `is_sim`) and which model a host runs for a request (`resolve`)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import catalog
from .errors import CatalogError, ConfigError
from .limits import Limits
from .secret import Secret

if TYPE_CHECKING:
    from .catalog import ModelSpec
    from .requests import Request

KEY_ENV = {"dashscope": "DASHSCOPE_API_KEY", "wavespeed": "WAVESPEED_API_KEY"}
SIM_KEY = "sk-wanlab-sim-local"  # the embedded sim accepts any non-empty key
SIM = "sim"  # the one label every sim run had before each protocol and region got its own


def sim_label(protocol: str, region: str) -> str:
    """`sim:dashscope-beijing`, `sim:wavespeed`: a sim host per protocol and region, so that runs on
    several of them can be told apart (and compared) in one log."""
    return f"{SIM}:{protocol}-{region}" if region else f"{SIM}:{protocol}"


def is_sim(label: object) -> bool:
    """Whether a log's host label is the simulator's, in this version's form or an older log's "sim"."""
    return isinstance(label, str) and (label == SIM or label.startswith(SIM + ":"))


def labels(label: str) -> list[str]:
    """The host labels a log may hold for runs of this host: a sim host's older runs say just "sim"."""
    return [label, SIM] if is_sim(label) and label != SIM else [label]


def place(host: object, region: object) -> str:
    """ "sim:dashscope-beijing", "dashscope/singapore", "wavespeed": a host and region as one name."""
    host = str(host)
    return host if is_sim(host) or not isinstance(region, str) or not region else f"{host}/{region}"


@dataclass(frozen=True)
class Where:
    provider: str  # "dashscope" | "wavespeed" | "sim"
    protocol: str  # the wire protocol spoken: "dashscope" | "wavespeed"
    region: str  # DashScope's region, "" for WaveSpeed
    time_scale: float  # host seconds → real seconds (the sim runs faster)
    secret: Secret
    host: str  # the label in the log: "dashscope", "wavespeed" or a sim_label
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
        where = (region or "singapore") if wire == "dashscope" else ""
        # The sim enforces DashScope's published limits on both protocols by default.
        return Where(
            SIM,
            wire,
            where,
            0.01 if time_scale is None else time_scale,
            Secret(api_key or SIM_KEY),
            sim_label(wire, where),
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


def resolve(protocol: str, region: str, req: Request, noted: set[str] | None = None) -> ModelSpec:
    """The exact model `protocol` in `region` runs for `req`, checked against it; raises before any I/O.
    Where the region serves another version than the mode's default elsewhere (Virginia: WAN 2.6 only),
    that is said once per mode: when `noted` (the modes already said) is given, on stdout."""
    if req.model is not None:
        spec = catalog.get_model(req.model, host=protocol, mode=req.mode)
    else:
        spec = catalog.default_model(protocol, req.mode, region or None)
    if protocol == "dashscope" and region not in spec.regions:
        note = " (Virginia serves WAN 2.6 only)" if region == "virginia" else ""
        served = ", ".join(spec.regions)
        raise CatalogError(
            f"{spec.id} is not served in DashScope {region}{note}; it is served in {served}: use one of "
            f"those regions, or a model this region serves (wanlab.catalog.models(region={region!r}))"
        )
    req.validate_for(spec)
    if noted is not None and req.model is None and req.mode not in noted:
        usual = catalog.default_model(protocol, req.mode)
        if usual.id != spec.id:
            noted.add(req.mode)
            print(
                f"wanlab: DashScope {region} serves WAN {spec.version} only: {type(req).__name__} runs on "
                f"{spec.id} (durations, prices and limits of {spec.version})",
                file=sys.stdout,
            )
    return spec
