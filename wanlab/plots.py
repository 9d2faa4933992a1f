"""Cost and latency figures from a log DataFrame (`lab.log.df`, `sweep.df`). Each function takes the
frame and `ax=`, returns the Axes, labels units and names where the data came from (the host and region, or
the sim host). None of them reads the log itself. Amounts in different currencies never share an axis or a
sum: a cost figure over runs in several currencies draws one panel per currency, side by side in the place
of `ax` (the first panel is returned; all are in `ax.figure.axes`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import _hosts as hosts
from ._quality_plots import frontier, quality_by, ranking
from .cost import money, sums

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

RES_ORDER = ["480P", "720P", "1080P"]
RES_COLORS = {"480P": "#1b9e77", "720P": "#d95f02", "1080P": "#7570b3"}
COST_COLUMNS = ("cost", "est_cost")


def _ax(ax: Axes | None, size: tuple[float, float] = (6.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def source(df: pd.DataFrame) -> str:
    """ "sim:dashscope-beijing", "dashscope/singapore", … — what produced these rows."""
    sent = df.dropna(subset=["host"]) if "host" in df else df.iloc[0:0]  # cells a budget never started: no host
    if sent.empty:
        return "no data"
    pairs = sent[["host", "region"]].drop_duplicates().itertuples(index=False)
    return ", ".join(sorted({hosts.place(host, region) for host, region in pairs}))


def currencies(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(currency, its rows), most rows first; [("", df)] when the frame has one currency or none (its rows
    without a currency, unpriced or unfinished, stay in then). With several, rows without one are left out."""
    if "currency" not in df:
        return [("", df)]
    cur = df["currency"].astype("string").fillna("")
    names = [c for c in cur.value_counts().index if c]
    if len(names) <= 1:
        return [(names[0] if names else "", df)]
    return [(c, df[cur == c]) for c in names]


def _panels(ax: Axes | None, n: int, size: tuple[float, float]) -> list[Axes]:
    """`n` Axes side by side: a new figure, or `ax`'s place in its figure split in `n`."""
    if ax is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(size[0] * n, size[1]), layout="constrained")
        return list(fig.subplots(1, n, squeeze=False)[0])
    spec = ax.get_subplotspec()
    if spec is None:
        raise ValueError("these runs are in several currencies, one panel each: pass an ax from plt.subplots")
    owner = ax.get_figure()
    if owner is None:
        raise ValueError("these runs are in several currencies, one panel each: pass an ax that is in a figure")
    ax.remove()
    grid = spec.subgridspec(1, n)
    return [owner.add_subplot(grid[0, i]) for i in range(n)]


def per_currency(
    df: pd.DataFrame, ax: Axes | None, draw: Callable[[pd.DataFrame, Axes, str], Axes], size: tuple[float, float]
) -> Axes:
    """`draw(rows, ax, currency)` once per currency, in its own panel (one currency: on `ax` itself)."""
    groups = currencies(df)
    if len(groups) == 1:
        return draw(groups[0][1], _ax(ax, size), groups[0][0])
    axes = _panels(ax, len(groups), size)
    for panel, (cur, rows) in zip(axes, groups, strict=True):
        draw(rows, panel, cur)
    return axes[0]


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
    """`value` summarised by `stat` over resolution × duration, the numbers written in the cells. A cost
    column over several currencies: one heatmap per currency."""
    if value in COST_COLUMNS and len(currencies(df)) > 1:
        return per_currency(
            df, ax, lambda rows, a, cur: heatmap(rows, value, stat, a, cur, _in(title, cur), cmap), (6.0, 4.0)
        )
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
            text = "—" if not np.isfinite(v) else (f"{v:.2f}" if value in COST_COLUMNS else f"{v:.3g}")
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
    """Cost per run over resolution × duration, one heatmap per currency."""
    col = "est_cost" if estimated else "cost"

    def draw(rows: pd.DataFrame, a: Axes, cur: str) -> Axes:
        what = f"{'estimated' if estimated else 'actual'} cost per run ({cur or 'unpriced'}), {stat}"
        return heatmap(
            rows, col, stat, ax=a, unit=cur or "unpriced", cmap="magma", title=f"{what}\nsource: {source(rows)}"
        )

    return per_currency(df, ax, draw, (6.0, 4.0))


def _in(title: str | None, currency: str) -> str | None:
    return None if title is None else f"{title} ({currency})"


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
    """Cumulative actual spend by the time each run ended, one line (and panel) per currency; failed runs
    add nothing."""
    return per_currency(df, ax, _spend, (6.0, 4.0))


def _spend(df: pd.DataFrame, ax: Axes, cur: str) -> Axes:
    import matplotlib.dates as mdates

    data = df.dropna(subset=["ended"]).sort_values("ended")
    cost = data["cost"].astype("Float64").fillna(0).astype(float)
    total = money(sums(data["cost"], data["currency"])) if "currency" in data else f"{cost.sum():.2f}"
    ax.step(data["ended"], cost.cumsum(), where="post", color="#333", label=cur or "unpriced")
    ax.set_ylim(bottom=0)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return _dress(
        ax,
        "time a run ended (UTC)",
        f"cumulative spend ({cur or 'unpriced'})",
        f"spend over time, total {total}\nsource: {source(df)}",
        legend=None,
    )


def estimate_vs_actual(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Estimated against actual cost per run, with the y = x line; one panel per currency."""
    return per_currency(df, ax, _estimate_vs_actual, (6.0, 4.0))


def _estimate_vs_actual(df: pd.DataFrame, ax: Axes, cur: str) -> Axes:
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
    cur = cur or "unpriced"
    return _dress(
        ax,
        f"estimated cost ({cur})",
        f"actual cost ({cur})",
        f"estimate vs actual per run ({cur}, n={len(data)})\nsource: {source(df)}",
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
    "currencies",
    "per_currency",
    "ranking",
    "quality_by",
    "frontier",
]
