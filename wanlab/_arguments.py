"""The arguments of `Lab(...)`, `Lab.sweep`, `Sweep.run` and `Lab.rerun`, checked before anything is started,
created or sent (so a refused call leaks nothing), with the shared checks of `checks.py`. `rerun_arguments`
reads the log once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._checks import check_bool, check_fields, check_number, check_text, check_url, plain, suggest, writable_folder
from .errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from .cost import Budget


def lab_arguments(
    *,
    provider: Any,
    region: Any,
    base_url: Any,
    protocol: Any,
    time_scale: Any,
    limits: Any,
    retry: Any,
    poll: Any,
    home: Any,
    media_dir: Any,
    log: Any,
    budget: Any,
    prices: Any,
    resume: Any,
    transport: Any,
    submit_timeout: Any,
    sim_options: Any,
    quiet: Any,
    measure: Any = True,
) -> tuple[Budget, float | None, float]:
    """Every `Lab(...)` keyword except the API key, checked before anything is started or created.
    Returns (budget, time_scale, submit_timeout): the budget as a `Budget`, the others as Python floats."""
    from .catalog import REGIONS
    from .limits import Limits
    from .log import ExperimentLog, default_home
    from .prices import PriceTable
    from .retry import RetryPolicy

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(provider is None or isinstance(provider, str), f"provider={provider!r}; use 'dashscope', 'wavespeed' or 'sim'")
    need(
        protocol is None or protocol in ("dashscope", "wavespeed"),
        f"protocol={protocol!r}; use 'dashscope' or 'wavespeed' (the sim speaks both)",
    )
    if region is not None:
        need(
            isinstance(region, str) and region in REGIONS,
            f"region={region!r} is not a DashScope region; use one of {', '.join(REGIONS)}{suggest(region, REGIONS)}",
        )
    if base_url is not None:
        check_url("base_url", base_url, error=ConfigError)
    budget = lab_budget(budget)
    time_scale = check_number(
        "time_scale",
        time_scale,
        positive=True,
        allow_none=True,
        error=ConfigError,
        hint=" (1.0 is real time; the sim defaults to 0.01)",
    )
    submit_timeout = check_number(
        "submit_timeout", submit_timeout, positive=True, error=ConfigError, hint=" seconds (default 60)"
    )
    need(
        limits is None or isinstance(limits, Limits),
        f"limits must be a wanlab.Limits(submits_per_s=…, queries_per_s=…, concurrent_jobs=…), got "
        f"{type(limits).__name__}",
    )
    need(
        retry is None or isinstance(retry, RetryPolicy),
        f"retry must be a wanlab.RetryPolicy(...), got {type(retry).__name__}",
    )
    need(
        poll is None or callable(getattr(poll, "next_delay", None)),
        f"poll must be a poll policy such as wanlab.polling.EtaPoll() (it has next_delay), got {type(poll).__name__}",
    )
    need(
        prices is None or isinstance(prices, PriceTable),
        f"prices must be a wanlab.PriceTable (e.g. default_prices().override(...)), got {type(prices).__name__}",
    )
    need(
        sim_options is None or isinstance(sim_options, Mapping),
        f"sim_options must be a dict of SimServer settings, got {type(sim_options).__name__}",
    )
    if transport is not None:
        from ._http import is_transport

        need(is_transport(transport), f"transport must be an httpx.AsyncBaseTransport, got {type(transport).__name__}")
    check_bool("resume", resume, error=ConfigError)
    check_bool("quiet", quiet, error=ConfigError)
    check_bool("measure", measure, error=ConfigError)
    # Folders last: the probe touches the disk (and leaves nothing), the checks above do not.
    writable_folder("home", home if home is not None else default_home())
    if media_dir is not None:
        writable_folder("media_dir", media_dir)
    if log is not None and not isinstance(log, ExperimentLog):
        writable_folder("log", log, file=True)
    return budget, time_scale, submit_timeout


def lab_budget(budget: Any) -> Budget:
    """`Lab(budget=…)`: 5 (in the currency of the Lab's prices), (5, "USD"), a `cost.Budget` (which may be
    shared by several Labs), or None."""
    from .cost import Budget

    if isinstance(budget, Budget):
        return budget
    currency = None
    if isinstance(budget, tuple):
        if len(budget) != 2 or not isinstance(budget[1], str):
            raise ConfigError(f"budget={budget!r}: give (amount, currency), e.g. budget=(5, 'USD'), or a number")
        budget, currency = budget
        if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
            raise ConfigError(f"budget currency {currency!r}: use a three-letter code such as 'USD' or 'CNY'")
    limit = check_number(
        "budget",
        budget,
        minimum=0,
        allow_none=True,
        error=ConfigError,
        hint=" in the currency of the Lab's prices, or (amount, 'USD') (or None for no budget)",
    )
    return Budget(limit, currency)


def sweep_axes(base: Any, axes: Mapping[str, Any], *, study: Any = None, reuse: Any = True) -> dict[str, list[Any]]:
    """Each axis names a field of the base request and gives a non-empty list of values (any sequence or
    numpy array); returns the axes as lists."""
    from .requests import Request

    if not isinstance(base, Request):
        raise ValidationError(
            f"lab.sweep: the base must be a wanlab request (T2V, I2V, FLF2V, Grid9, Ref2V, Edit, Extend), "
            f"got {type(base).__name__}"
        )
    if study is not None:
        check_text("study", study, where="lab.sweep")
    check_bool("reuse", reuse, where="lab.sweep")
    check_fields(type(base), axes, where="lab.sweep", what="field")
    out: dict[str, list[Any]] = {}
    for name, values in axes.items():
        listlike = hasattr(values, "__iter__") and hasattr(values, "__len__")
        if isinstance(values, (str, bytes, Mapping)) or not listlike or len(values) == 0:
            raise ValidationError(
                f"sweep axis {name}={values!r}: give a non-empty list of values, e.g. {name}=[{getattr(base, name)!r}]"
            )
        out[name] = [plain(v) for v in values]
    return out


def sweep_run_arguments(
    budget: Any, max_concurrency: Any, timeout: Any, progress: Any, on_progress: Any = None
) -> tuple[float | None, int | None, float | None]:
    """`Sweep.run`'s arguments, as Python numbers."""
    if on_progress is not None and not callable(on_progress):
        raise ValidationError(
            f"sweep.run: on_progress={on_progress!r} must be a function taking a SweepProgress (or None)"
        )
    budget = check_number(
        "budget", budget, minimum=0, allow_none=True, where="sweep.run", hint=" (or None for no budget)"
    )
    max_concurrency = check_number(
        "max_concurrency",
        max_concurrency,
        minimum=1,
        integer=True,
        allow_none=True,
        where="sweep.run",
        hint=" (or None for the host's limit)",
    )
    timeout = check_number(
        "timeout",
        timeout,
        positive=True,
        allow_none=True,
        where="sweep.run",
        hint=" seconds (or None to wait until done)",
    )
    check_bool("progress", progress, where="sweep.run")
    return budget, max_concurrency, timeout


def rerun_arguments(log: Any, run_id: Any, changes: Mapping[str, Any]) -> None:
    """`run_id` is a run in `log`, and every change names a field of that run's request type."""
    from .requests import REQUEST_TYPES

    if not isinstance(run_id, str) or not run_id:
        raise ValidationError(
            f"lab.rerun: run_id={run_id!r} must be a run id string (the run_id column of lab.log.frame())"
        )
    rows = log.rows(run_id=str(run_id))
    if not rows:
        raise ValidationError(f"lab.rerun: no run {run_id!r} in {log.path}; pick a run_id from lab.log.frame()")
    check_fields(REQUEST_TYPES[rows[0]["mode"]], changes, where=f"lab.rerun({run_id!r})")


def clip_dir(clip_model: Any) -> str | None:
    """`Lab(clip_model=…)` or $WANLAB_CLIP_MODEL as a local directory (None: no clip_score); ConfigError,
    before anything starts, for a path that is not a directory — a hub name would mean a download."""
    from .quality._clip import model_dir

    if clip_model is not None and not isinstance(clip_model, (str, os.PathLike)):
        raise ConfigError(f"clip_model must be a local folder path, got {type(clip_model).__name__}")
    try:
        return model_dir(clip_model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
