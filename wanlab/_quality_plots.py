"""Quality figures, re-exported by `wanlab.plots`: a pairwise ranking with its intervals, a quality metric
per prompt (or any column) with the prompt/seed variance split, and quality against cost with the Pareto
front. Same conventions as the cost plots: each takes the frame and `ax=`, returns the Axes, names units and
where the data came from, and reads nothing itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

# Figures where 0 is clean (wanlab.quality's FIGURES: "0 clean"), and times and costs, which `quality_by`
# also compares (by host, say); everything else is read higher = better.
LOWER_IS_BETTER = frozenset(
    {"flicker", "frozen", "exposure", "exposure_black", "exposure_white"}
    | {"latency_s", "queue_s", "run_s", "cost", "est_cost"}
)
SECONDS = frozenset({"latency_s", "queue_s", "run_s"})
CURRENCY_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"]
SEED_COLORS = "tab10"


def _short(text: object, width: int = 46) -> str:
    """One line, cut in the middle: prompt variants usually share a start and differ at the end."""
    s = " ".join(str(text).split())
    if len(s) <= width:
        return s
    head = (width - 1) // 2
    return s[:head].rstrip() + "…" + s[-(width - 1 - head) :].lstrip()


def _labels(values: list[object], width: int = 46) -> list[str]:
    """Shortened labels, numbered where shortening made two the same."""
    short = [_short(v, width) for v in values]
    seen: dict[str, int] = {}
    for s in short:
        seen[s] = seen.get(s, 0) + 1
    count: dict[str, int] = {}
    out = []
    for s in short:
        count[s] = count.get(s, 0) + 1
        out.append(f"{s} [{count[s]}]" if seen[s] > 1 else s)
    return out


def pareto(costs: np.ndarray | pd.Series, quality: np.ndarray | pd.Series) -> np.ndarray:
    """Boolean mask of the non-dominated points: no other point costs as little or less AND scores as high or
    higher, strictly better in one of the two. Identical points do not dominate each other (both stay).
    NaN in either → not on the front. Lower cost and higher quality are better: negate a lower-is-better
    metric before calling."""
    c = np.asarray(costs, dtype=float)
    q = np.asarray(quality, dtype=float)
    if c.shape != q.shape:
        raise ValueError(f"pareto: {c.shape[0]} costs but {q.shape[0]} quality values")
    mask = np.zeros(c.shape, bool)
    ok = np.flatnonzero(np.isfinite(c) & np.isfinite(q))
    order = ok[np.lexsort((-q[ok], c[ok]))]  # cheapest first; at equal cost the best first
    best_cheaper = -np.inf  # best quality among strictly cheaper points
    pos = 0
    while pos < len(order):
        end = pos
        while end < len(order) and c[order[end]] == c[order[pos]]:
            end += 1
        group = order[pos:end]
        top = q[group[0]]
        # dominated by a cheaper point at least as good, or by an equal-cost point strictly better
        mask[group] = (q[group] > best_cheaper) & (q[group] == top)
        best_cheaper = max(best_cheaper, top)
        pos = end
    return mask


def ranking(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """`wanlab.ranking.fit`'s result: score per item with its interval, best at the top, and per item how
    often it was compared (wins–ties–losses). Items never judged are listed at the bottom."""
    from matplotlib.transforms import blended_transform_factory

    from .plots import _ax

    n = len(df)
    ax = _ax(ax, size=(9.0, 0.38 * max(n, 2) + 1.6))
    if n == 0:
        ax.text(0.5, 0.5, "no items", ha="center", va="center", transform=ax.transAxes)
        return ax
    data = df.sort_values("score", ascending=False, na_position="last")
    y = np.arange(n)[::-1].astype(float)
    score = data["score"].to_numpy(float)
    lo, hi = data["lo"].to_numpy(float), data["hi"].to_numpy(float)
    judged = np.isfinite(score)
    ax.axvline(0, color="grey", lw=0.8, ls="--", zorder=0)
    ax.errorbar(
        score[judged],
        y[judged],
        xerr=[score[judged] - lo[judged], hi[judged] - score[judged]],
        fmt="o",
        color="#1f77b4",
        ecolor="#1f77b4",
        elinewidth=2,
        capsize=3,
    )
    left = float(np.nanmin(lo)) if judged.any() else -1.0
    right = float(np.nanmax(hi)) if judged.any() else 1.0
    span = max(right - left, 1.0)
    column = blended_transform_factory(ax.transAxes, ax.transData)  # a fixed column at the right edge
    for yi, sc, row in zip(y, score, data.itertuples(), strict=True):
        if np.isfinite(sc):
            note = f"{row.comparisons}  {row.wins}–{row.ties}–{row.losses}"
            ax.text(0.99, yi, note, transform=column, ha="right", va="center", fontsize=8, color="#444")
        else:
            ax.text(
                0,
                yi,
                "not judged yet",
                va="center",
                ha="center",
                fontsize=8,
                color="#666",
                style="italic",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
            )
    ax.set_xlim(left - 0.05 * span, right + 0.38 * span)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_yticks(y, _labels(list(data.index)))
    level = float(df.attrs.get("level", 0.95))
    nu = df.attrs.get("tie_nu")
    extra = f", tie ν = {nu:.2f}" if isinstance(nu, float) and np.isfinite(nu) else ""
    ax.set_xlabel("score (log-strength: +1 = wins 73 % of decided pairs)")
    ax.set_title(
        f"pairwise ranking, {level:.0%} intervals\n{df.attrs.get('judgments', '?')} judgments{extra}",
        fontsize=10,
    )
    ax.text(
        0.99, 1.01, "n  wins–ties–losses", transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="#444"
    )
    ax.grid(alpha=0.3, axis="x")
    return ax


def _groups(data: pd.DataFrame, by: str) -> list[object]:
    col = data[by]
    if hasattr(col, "cat") and col.cat.ordered:
        present = set(col.dropna())
        return [c for c in col.cat.categories if c in present]
    return list(dict.fromkeys(col.dropna()))


def _shares(data: pd.DataFrame, metric: str, by: str) -> str:
    """ "variance: prompt 72 % · seed 20 % · residual 8 %", or "" when it cannot be said."""
    from .ranking import variance_share

    if {"prompt", "seed"} <= set(data.columns) and by in ("prompt", "seed"):
        factors = ["prompt", "seed"]
    elif "seed" in data.columns and by != "seed":
        factors = [by, "seed"]
    else:
        factors = [by]
    try:
        vs = variance_share(data, metric, by=factors)
    except ValueError:
        return ""
    if not np.isfinite(vs["share"]).all() or vs.loc["residual", "df"] == 0 and len(factors) > 1:
        return ""
    parts = [f"{name} {share:.0%}" for name, share in vs["share"].items()]
    return "variance: " + " · ".join(parts)


def quality_by(df: pd.DataFrame, metric: str, by: str = "prompt", ax: Axes | None = None) -> Axes:
    """`metric` per value of `by` (prompt variant, model, resolution…): a box per group and every run as a
    point, coloured by seed, so the spread a seed causes sits next to the difference a prompt makes. The
    title gives the split of the variance (`wanlab.ranking.variance_share` over prompt × seed, or `by` ×
    seed): was it the words or luck? Only succeeded runs with a value. Times and costs work too
    (`quality_by(df, "latency_s", by="host")`); a cost over several currencies gets a panel per currency."""
    from .plots import COST_COLUMNS, _ax, _done, currencies, per_currency, source

    for col in (metric, by):
        if col not in df:
            raise ValueError(f"quality_by: no column {col!r} in the frame")
    if metric in COST_COLUMNS and len(currencies(df)) > 1:
        size = (8.0, 0.5 * max(df[by].nunique(), 2) + 1.8)
        return per_currency(df, ax, lambda rows, a, _cur: quality_by(rows, metric, by, a), size)
    data = _done(df)
    data = data[data[metric].notna() & data[by].notna()]
    groups = _groups(data, by)
    ax = _ax(ax, size=(8.0, 0.5 * max(len(groups), 2) + 1.8))
    if data.empty:
        ax.text(0.5, 0.5, f"no finished runs with {metric}", ha="center", va="center", transform=ax.transAxes)
        return ax
    values = [data.loc[data[by] == g, metric].astype(float).to_numpy() for g in groups]
    y = np.arange(len(groups))[::-1].astype(float)
    import matplotlib

    horizontal = (
        {"orientation": "horizontal"}
        if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
        else {"vert": False}
    )
    ax.boxplot(values, positions=y, widths=0.5, showfliers=False, patch_artist=False, **horizontal)
    rng = np.random.default_rng(0)  # the jitter only; fixed so a figure redraws the same
    seeds = list(dict.fromkeys(data["seed"].dropna())) if "seed" in data and by != "seed" else []
    cmap = matplotlib.colormaps[SEED_COLORS]
    for yi, g in zip(y, groups, strict=True):
        rows = data[data[by] == g]
        jitter = rng.uniform(-0.15, 0.15, len(rows))
        if seeds and len(seeds) <= 10:
            colors = [cmap(seeds.index(s) % 10) if s in seeds else "grey" for s in rows["seed"]]
        else:
            colors = ["#333"] * len(rows)
        ax.scatter(rows[metric].astype(float), yi + jitter, s=22, c=colors, alpha=0.85, zorder=3)
    if seeds and len(seeds) <= 10:
        for k, s in enumerate(seeds):
            ax.scatter([], [], s=22, color=cmap(k % 10), label=str(s))
        ax.legend(title="seed", fontsize=8, loc="best")
    names = _labels(groups)
    ax.set_yticks(y, [f"{g} (n={len(v)})" for g, v in zip(names, values, strict=True)])
    ax.set_ylim(-0.6, len(groups) - 0.4)
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    unit = "s, " if metric in SECONDS else f"{currencies(data)[0][0] or 'unpriced'}, " if metric in COST_COLUMNS else ""
    ax.set_xlabel(f"{metric} per run ({unit}{better} is better)")
    shares = _shares(data, metric, by)
    ax.set_title(f"{metric} by {by}" + (f"\n{shares}" if shares else "") + f"\nsource: {source(df)}, n={len(data)}")
    ax.grid(alpha=0.3, axis="x")
    return ax


def _cost_column(data: pd.DataFrame, cost: str) -> tuple[np.ndarray, np.ndarray]:
    """Cost per row (float) and which rows fell back to `est_cost`."""
    c = data[cost].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    est = np.zeros(len(c), bool)
    if cost != "est_cost" and "est_cost" in data:
        e = data["est_cost"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        est = np.isnan(c) & np.isfinite(e)
        c = np.where(est, e, c)
    return c, est


def _label(res: object, dur: object, model: str | None) -> str:
    """ "720P·5s", with the model in front when the frame has several."""
    import pandas as pd

    cell = "·".join(
        [str(res) if not pd.isna(res) else "?"] + ([] if pd.isna(dur) else [f"{float(dur):g}s"])  # type: ignore[arg-type]
    )
    return f"{model}·{cell}" if model else cell


def frontier(
    df: pd.DataFrame,
    quality: str,
    ax: Axes | None = None,
    cost: str = "cost",
    *,
    per: Literal["cell", "run"] = "cell",
    better: Literal["higher", "lower"] | None = None,
) -> Axes:
    """`quality` against cost, and the runs (or settings) worth paying for: the Pareto front — nothing else
    is both cheaper and better — marked and joined by a step line (the best quality a budget buys).

    `per="cell"` (default) averages each resolution × duration cell (and model, when several are in the
    frame) to one point labelled "720P·5s": seeds average out and the choice is between settings.
    `per="run"`: one point per run. `better`: None reads flicker/frozen/exposure as lower-is-better and
    everything else as higher. `cost` falls back to `est_cost` for runs without an actual cost (the axis
    label says how many). Currencies are never added or put on one axis: each currency gets its own colour,
    its own Pareto front and its own x axis (the second on top), named in the legend — filter the frame by
    `currency` for a single-axis figure. Only succeeded runs with a quality value and a cost.
    """
    import pandas as pd

    from .plots import _ax, _done, source

    for col in (quality, cost):
        if col not in df:
            raise ValueError(f"frontier: no column {col!r} in the frame")
    if per not in ("cell", "run"):
        raise ValueError(f"per={per!r}: use 'cell' (resolution × duration means) or 'run'")
    better = better or ("lower" if quality in LOWER_IS_BETTER else "higher")
    ax = _ax(ax, size=(7.5, 5.0))
    data = _done(df)
    data = data[data[quality].notna()]
    c, est = _cost_column(data, cost)
    data = data.assign(_cost=c, _est=est)[np.isfinite(c)]
    if data.empty:
        ax.text(
            0.5, 0.5, f"no finished runs with {quality} and a cost", ha="center", va="center", transform=ax.transAxes
        )
        return ax
    cur = data["currency"].astype("string").fillna("no currency") if "currency" in data else None
    data = data.assign(_cur=cur if cur is not None else "")
    currencies = list(data["_cur"].value_counts().index)  # most runs first: that one gets the bottom axis
    several_models = "model" in data and data["model"].nunique() > 1
    handles: list[tuple[Artist, str]] = []
    axes = [ax]
    for k, name in enumerate(currencies):
        sub = data[data["_cur"] == name]
        color = CURRENCY_COLORS[k % len(CURRENCY_COLORS)]
        if per == "cell":
            keys = [sub["model"].astype("string") if several_models else pd.Series("", index=sub.index)]
            keys += [sub["resolution"].astype("string"), sub["duration"].astype("Float64")]
            cells = sub.groupby(keys, dropna=False, sort=True).agg(
                q=(quality, lambda v: float(v.astype(float).mean())), cost=("_cost", "mean"), n=("_cost", "size")
            )
            labels = [_label(r, d, m or None) for m, r, d in cells.index]
            xs, qs = cells["cost"].to_numpy(float), cells["q"].to_numpy(float)
        else:
            labels = [""] * len(sub)
            xs, qs = sub["_cost"].to_numpy(float), sub[quality].astype(float).to_numpy()
        on = pareto(xs, qs if better == "higher" else -qs)
        target = ax if k == 0 else ax.twiny()
        if k:
            axes.append(target)
            if k > 1:
                target.spines["top"].set_position(("outward", 42 * (k - 1)))
            target.tick_params(axis="x", colors=color)
        pts = target.scatter(xs, qs, s=36 if per == "cell" else 18, color=color, alpha=0.75, zorder=3)
        handles.append((pts, f"{name or 'cost'} (n={len(sub)} runs)"))
        order = np.argsort(xs[on])
        line = target.step(xs[on][order], qs[on][order], where="post", color=color, lw=1.5, zorder=2)[0]
        target.scatter(xs[on], qs[on], s=110, facecolors="none", edgecolors="black", lw=1.2, zorder=4)
        handles.append((line, f"{name or 'cost'} Pareto front ({int(on.sum())})"))
        for x, q, text in zip(xs, qs, labels, strict=True):
            if text:
                target.annotate(text, (x, q), xytext=(5, 4), textcoords="offset points", fontsize=8, color="#333")
        n_est = int(sub["_est"].sum())
        fallback = f"; est_cost where cost missing: {n_est} of {len(sub)} runs" if n_est else ""
        what = "mean cost per run" if per == "cell" else "cost per run"
        target.set_xlabel(f"{what} ({name or 'currency not recorded'}{fallback})", color=color if k else "black")
    ylabel = f"{'mean ' if per == 'cell' else ''}{quality} ({better} is better)"
    ax.set_ylabel(ylabel)
    split = f" — {' and '.join(currencies)} kept apart, one x axis each" if len(currencies) > 1 else ""
    ax.set_title(f"{quality} vs cost, Pareto front circled{split}\nsource: {source(df)}, n={len(data)} runs")
    ax.grid(alpha=0.3)
    if len(axes) > 1:  # the main axes (and its legend) above the twins, or their points cover the legend
        ax.set_zorder(max(t.get_zorder() for t in axes[1:]) + 1)
        ax.patch.set_visible(False)
    ax.legend([h for h, _ in handles], [t for _, t in handles], fontsize=8, loc="best", title="currency")
    return ax


__all__ = ["ranking", "quality_by", "frontier", "pareto"]
