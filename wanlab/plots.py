"""Cost and latency figures from a log DataFrame (`lab.log.df`, `sweep.df`). Each function takes the
frame and `ax=`, returns the Axes, labels units and names where the data came from (the host, or
"sim"). None of them reads the log itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._quality_plots import frontier, quality_by, ranking

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

RES_ORDER = ["480P", "720P", "1080P"]
RES_COLORS = {"480P": "#1b9e77", "720P": "#d95f02", "1080P": "#7570b3"}


def _ax(ax: Axes | None, size: tuple[float, float] = (6.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def source(df: pd.DataFrame) -> str:
    """ "sim", "dashscope/singapore", … — what produced these rows."""
    if "host" not in df or df.empty:
        return "no data"
    parts = []
    for host, region in df[["host", "region"]].drop_duplicates().itertuples(index=False):
        host = str(host)
        parts.append(host if host == "sim" or not isinstance(region, str) or not region else f"{host}/{region}")
    return ", ".join(sorted(set(parts)))


def _done(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"].astype("string") == "SUCCEEDED"]


def _by_resolution(data: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(resolution, its rows) in 480P → 1080P order, skipping resolutions with no rows."""
    res = data["resolution"].astype("string")
    for r in RES_ORDER:
        sub = data[res == r]
        if not sub.empty:
            yield r, sub


def _dress(ax: Axes, xlabel: str, ylabel: str, title: str, legend: str | None = "resolution") -> Axes:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend is not None and ax.get_legend_handles_labels()[0]:
        ax.legend(title=legend or None)
    return ax


def _stat(values: pd.Series, stat: str) -> float:
    v = values.dropna().astype(float)
    if v.empty:
        return float("nan")
    if stat == "median":
        return float(v.median())
    if stat.startswith("p") and stat[1:].isdigit():
        return float(np.percentile(v, int(stat[1:])))
    if stat == "mean":
        return float(v.mean())
    raise ValueError(f"stat={stat!r}: use 'median', 'mean' or 'p90' (any pNN)")


def _grid(df: pd.DataFrame, value: str, stat: str) -> tuple[list[str], list[int], np.ndarray]:
    res = [r for r in RES_ORDER if r in set(df["resolution"].astype("string").dropna())]
    durs = sorted(int(d) for d in df["duration"].dropna().unique())
    grid = np.full((len(res), len(durs)), np.nan)
    for i, r in enumerate(res):
        for j, d in enumerate(durs):
            cell = df[(df["resolution"].astype("string") == r) & (df["duration"] == d)]
            grid[i, j] = _stat(cell[value], stat)
    return res, durs, grid


def heatmap(
    df: pd.DataFrame,
    value: str = "latency_s",
    stat: str = "median",
    ax: Axes | None = None,
    unit: str = "s",
    title: str | None = None,
    cmap: str = "viridis",
) -> Axes:
    """`value` summarised by `stat` over resolution × duration, the numbers written in the cells."""
    ax = _ax(ax)
    data = _done(df) if value in ("latency_s", "run_s", "queue_s", "cost") else df
    res, durs, grid = _grid(data, value, stat)
    if not res or not durs:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
        return ax
    im = ax.imshow(grid, cmap=cmap, aspect="auto", origin="lower")
    ax.set_xticks(range(len(durs)), [f"{d} s" for d in durs])
    ax.set_yticks(range(len(res)), res)
    ax.set_xlabel("requested duration")
    ax.set_ylabel("resolution")
    finite = grid[np.isfinite(grid)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(len(res)):
        for j in range(len(durs)):
            v = grid[i, j]
            text = "—" if not np.isfinite(v) else (f"{v:.3g}" if unit != "USD" else f"{v:.2f}")
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if v < mid else "black")
    bar = ax.figure.colorbar(im, ax=ax)
    bar.set_label(f"{value} ({unit}), {stat}")
    ax.set_title(title or f"{stat} {value} by resolution × duration\nsource: {source(df)}, n={len(data)}")
    return ax


def latency_heatmap(df: pd.DataFrame, stat: str = "median", ax: Axes | None = None) -> Axes:
    return heatmap(
        df, "latency_s", stat, ax=ax, unit="s", title=f"latency (submit → done), {stat}\nsource: {source(df)}"
    )


def cost_heatmap(df: pd.DataFrame, stat: str = "median", ax: Axes | None = None, estimated: bool = False) -> Axes:
    col = "est_cost" if estimated else "cost"
    cur = _currency(df)
    return heatmap(
        df,
        col,
        stat,
        ax=ax,
        unit=cur,
        cmap="magma",
        title=f"{'estimated' if estimated else 'actual'} cost per run, {stat}\nsource: {source(df)}",
    )


def _currency(df: pd.DataFrame) -> str:
    if "currency" not in df:
        return ""
    cur = sorted({str(c) for c in df["currency"].dropna().unique() if str(c)})
    return "/".join(cur) or "unpriced"


def latency_vs_duration(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Median latency against requested duration, one line per resolution, with the p10–p90 band."""
    ax = _ax(ax)
    data = _done(df)
    for res, sub in _by_resolution(data):
        durs = sorted(int(d) for d in sub["duration"].dropna().unique())
        lat = [sub[sub["duration"] == d]["latency_s"].dropna().astype(float) for d in durs]
        med = [v.median() for v in lat]
        lo = [np.percentile(v, 10) for v in lat]
        hi = [np.percentile(v, 90) for v in lat]
        ax.plot(durs, med, marker="o", color=RES_COLORS[res], label=f"{res} (n={len(sub)})")
        ax.fill_between(durs, lo, hi, color=RES_COLORS[res], alpha=0.2)
    durations = sorted(int(d) for d in data["duration"].dropna().unique())
    if durations:
        ax.set_xticks(durations)
    return _dress(
        ax,
        "requested duration (s)",
        "latency, submit → done (s)",
        f"latency vs duration (median, band p10–p90)\nsource: {source(df)}",
    )


def queue_vs_run(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Time queued on the host against time rendering, per run."""
    ax = _ax(ax)
    for res, sub in _by_resolution(_done(df)):
        ax.scatter(
            sub["run_s"].astype(float), sub["queue_s"].astype(float), s=18, alpha=0.7, color=RES_COLORS[res], label=res
        )
    return _dress(
        ax, "run time on the host (s)", "queue time on the host (s)", f"queue vs run time per run\nsource: {source(df)}"
    )


def spend_over_time(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Cumulative actual spend by the time each run ended; failed runs add nothing."""
    ax = _ax(ax)
    import matplotlib.dates as mdates

    data = df.dropna(subset=["ended"]).sort_values("ended")
    cost = data["cost"].astype("Float64").fillna(0).astype(float)
    ax.step(data["ended"], cost.cumsum(), where="post", color="#333")
    ax.set_ylim(bottom=0)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return _dress(
        ax,
        "time a run ended (UTC)",
        f"cumulative spend ({_currency(df)})",
        f"spend over time, total {cost.sum():.2f} {_currency(df)}\nsource: {source(df)}",
        legend=None,
    )


def estimate_vs_actual(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Estimated against actual cost per run, with the y = x line."""
    ax = _ax(ax)
    data = _done(df).dropna(subset=["est_cost", "cost"])
    x, y = data["est_cost"].astype(float), data["cost"].astype(float)
    for res, sub in _by_resolution(data):
        ax.scatter(
            sub["est_cost"].astype(float), sub["cost"].astype(float), s=22, alpha=0.8, color=RES_COLORS[res], label=res
        )
    top = float(max(x.max(), y.max())) * 1.1 if len(data) else 1.0
    ax.plot([0, top], [0, top], ls="--", color="grey", lw=1, label="actual = estimate")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    cur = _currency(df)
    return _dress(
        ax,
        f"estimated cost ({cur})",
        f"actual cost ({cur})",
        f"estimate vs actual per run (n={len(data)})\nsource: {source(df)}",
        legend="",
    )


def seed_grid(
    df: pd.DataFrame,
    rows: str = "prompt",
    cols: str = "seed",
    at: float = 0.5,
    ax: Axes | None = None,
    labels: Sequence[str] | None = None,
) -> Axes:
    """A frame of each run laid out `rows` × `cols` (e.g. prompt × seed): how much a seed changes the
    picture, against how much the prompt does."""
    from .media import frame_at

    data = _done(df).dropna(subset=["path"])
    rvals = list(dict.fromkeys(data[rows].astype("string")))
    cvals = list(dict.fromkeys(data[cols].astype("string")))
    cell_w = 2.4  # inches per tile; the height follows the 16:9 tiles, plus room for labels and title
    ax = _ax(ax, size=(cell_w * max(1, len(cvals)) + 2.6, cell_w * 9 / 16 * max(1, len(rvals)) + 1.1))
    if data.empty:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
        return ax
    tw, th = 320, 180
    canvas = np.full((th * len(rvals), tw * len(cvals), 3), 255, dtype=np.uint8)
    for _, row in data.iterrows():
        i, j = rvals.index(str(row[rows])), cvals.index(str(row[cols]))
        img = frame_at(row["path"], at).convert("RGB").resize((tw, th))
        canvas[i * th : (i + 1) * th, j * tw : (j + 1) * tw] = np.asarray(img)
    ax.imshow(canvas)
    ax.set_xticks([tw * (j + 0.5) for j in range(len(cvals))], [f"{cols}={c}" for c in cvals])
    short = labels or [v if len(v) <= 28 else v[:26] + "…" for v in rvals]
    ax.set_yticks([th * (i + 0.5) for i in range(len(rvals))], short)
    ax.set_title(f"{rows} × {cols}, frame at {at:g} s\nsource: {source(df)}")
    return ax


__all__ = [
    "heatmap",
    "latency_heatmap",
    "cost_heatmap",
    "latency_vs_duration",
    "queue_vs_run",
    "spend_over_time",
    "estimate_vs_actual",
    "seed_grid",
    "source",
    "ranking",
    "quality_by",
    "frontier",
]
