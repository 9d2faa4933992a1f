"""wanlab.plots.ranking / quality_by / frontier on small hand-made log frames: the Pareto set is right,
currencies are never mixed on one axis, and each figure is saved to tests/artifacts/ for a look."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from wanlab import plots, ranking
from wanlab._quality_plots import pareto

ARTIFACTS = Path(__file__).parent / "artifacts"
PROMPTS = [
    "a red kite over a windy beach at dusk, handheld camera",
    "a red kite over a windy beach at dusk, slow dolly shot, golden light",
    "kite, beach",
]


def log_frame(currencies: tuple[str, ...] = ("USD",)) -> pd.DataFrame:
    """A log-shaped frame: 3 prompts × 4 seeds at 480P/720P × 5 s/10 s, plus a failed run."""
    rng = np.random.default_rng(0)
    rows = []
    price = {"480P": 0.05, "720P": 0.1}
    for cur in currencies:
        rate = 7.2 if cur == "CNY" else 1.0
        for p, prompt in enumerate(PROMPTS):
            for seed in (1, 2, 3, 4):
                for res in ("480P", "720P"):
                    for dur in (5, 10):
                        sharp = 100 + 40 * p + (30 if res == "720P" else 0) + rng.normal(0, 8)
                        rows.append(
                            {
                                "run_id": f"{cur}-{p}-{seed}-{res}-{dur}",
                                "prompt": prompt,
                                "seed": seed,
                                "resolution": res,
                                "duration": dur,
                                "status": "SUCCEEDED",
                                "cost": price[res] * dur * rate,
                                "est_cost": price[res] * dur * rate * 1.05,
                                "currency": cur,
                                "model": "wan2.2-t2v-plus",
                                "host": "sim",
                                "region": None,
                                "sharpness": sharp,
                                "flicker": abs(rng.normal(0.2, 0.1)) + (0.1 if dur == 10 else 0),
                            }
                        )
    rows.append({**rows[0], "run_id": "failed", "status": "FAILED", "cost": None, "sharpness": None})
    df = pd.DataFrame(rows)
    df["resolution"] = pd.Categorical(df["resolution"], categories=["480P", "720P", "1080P"], ordered=True)
    return df.astype(
        {
            "duration": "Int64",
            "seed": "Int64",
            "status": "category",
            "currency": "category",
            "cost": "Float64",
            "est_cost": "Float64",
            "sharpness": "Float64",
            "flicker": "Float64",
        }
    )


def axes(size: tuple[float, float] = (7.5, 5.0)):
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots()


def save(fig: Figure, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    fig.savefig(ARTIFACTS / name, dpi=100)


# -- pareto ------------------------------------------------------------------------------------------------


def test_pareto_on_a_hand_made_example():
    cost = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 1.5, 3.0]
    qual = [1.0, 3.0, 2.0, 2.5, 4.0, 4.0, 0.5, 3.0]
    # 0: cheapest → front; 1: (2, 3) front; 2: (2, 2) beaten by 1; 3: (3, 2.5) beaten by 1; 4: (4, 4) front;
    # 5: (5, 4) beaten by 4; 6: (1.5, 0.5) beaten by 0; 7: (3, 3) same quality as 1 but dearer → beaten
    assert pareto(cost, qual).tolist() == [True, True, False, False, True, False, False, False]


def test_pareto_ties_nan_and_empty():
    assert pareto([1.0, 1.0], [2.0, 2.0]).tolist() == [True, True]  # identical points both stay
    assert pareto([1.0, np.nan, 2.0], [1.0, 9.0, 2.0]).tolist() == [True, False, True]
    assert pareto(np.array([]), np.array([])).tolist() == []
    assert pareto(pd.Series([2.0, 1.0]), pd.Series([1.0, 1.0])).tolist() == [False, True]
    with pytest.raises(ValueError):
        pareto([1.0], [1.0, 2.0])


def test_pareto_matches_brute_force():
    rng = np.random.default_rng(3)
    c, q = rng.integers(0, 6, 60).astype(float), rng.integers(0, 6, 60).astype(float)
    def beaten(i: int) -> bool:
        return any(c[j] <= c[i] and q[j] >= q[i] and (c[j] < c[i] or q[j] > q[i]) for j in range(60))

    brute = [not beaten(i) for i in range(60)]
    assert pareto(c, q).tolist() == brute


# -- frontier ----------------------------------------------------------------------------------------------


def test_frontier_per_cell_marks_the_pareto_cells():
    df = log_frame()
    fig, ax = axes()
    out = plots.frontier(df, "sharpness", ax=ax)
    assert out is ax
    labels = [t.get_text() for t in ax.texts]
    assert sorted(labels) == ["480P·10s", "480P·5s", "720P·10s", "720P·5s"]
    assert "USD" in ax.get_xlabel() and "mean cost per run" in ax.get_xlabel()
    assert "higher is better" in ax.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("USD") and "Pareto front" in legend[1]
    # the step line joins the front: cheapest 480P·5s and 720P·5s (sharper) — the 10 s cells cost more for
    # the same picture quality, up to noise; whatever it is, it must equal pareto() on the cell means
    done = df[df["status"] == "SUCCEEDED"]
    cells = done.groupby(["resolution", "duration"], observed=True).agg(q=("sharpness", "mean"), c=("cost", "mean"))
    expect = cells[pareto(cells["c"].to_numpy(float), cells["q"].to_numpy(float))]
    line = ax.get_lines()[0]
    assert sorted(line.get_xdata()) == pytest.approx(sorted(expect["c"]))
    save(fig, "frontier.png")


def test_frontier_keeps_currencies_apart():
    df = log_frame(("USD", "CNY"))
    df = df[~((df["currency"] == "CNY") & (df["seed"] > 2))]  # fewer CNY runs: USD gets the bottom axis
    fig, ax = axes()
    plots.frontier(df, "sharpness", ax=ax)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert [t.split()[0] for t in legend] == ["USD", "USD", "CNY", "CNY"]  # a series and a front each
    twins = [a for a in fig.axes if a is not ax]
    assert len(twins) == 1
    assert "USD" in ax.get_xlabel() and "CNY" not in ax.get_xlabel()
    assert "CNY" in twins[0].get_xlabel() and "USD" not in twins[0].get_xlabel()
    # no cost was added across currencies: each axis spans only its own currency's costs
    usd, cny = ax.collections[0].get_offsets()[:, 0], twins[0].collections[0].get_offsets()[:, 0]
    assert usd.max() <= 1.0 + 1e-9 and cny.min() >= 0.05 * 5 * 7.2 - 1e-9
    save(fig, "frontier_currencies.png")


def test_frontier_per_run_lower_is_better_and_estimates():
    df = log_frame()
    df.loc[df.index[:10], "cost"] = pd.NA  # not billed yet: the estimate stands in
    fig, ax = axes()
    plots.frontier(df, "flicker", ax=ax, per="run")
    assert "lower is better" in ax.get_ylabel()
    assert "est_cost where cost missing: 10 of 48 runs" in ax.get_xlabel()
    xs, ys = ax.collections[0].get_offsets().T
    assert len(xs) == 48  # the failed run is not drawn
    front = pareto(np.asarray(xs), -np.asarray(ys))
    assert sorted(ax.get_lines()[0].get_xdata()) == pytest.approx(sorted(np.asarray(xs)[front]))
    save(fig, "frontier_runs.png")


def test_frontier_empty_and_bad_arguments():
    df = log_frame()
    fig, ax = axes()
    plots.frontier(df[df["status"] == "FAILED"], "sharpness", ax=ax)
    assert "no finished runs" in ax.texts[0].get_text()
    with pytest.raises(ValueError, match="no column 'clip_score'"):
        plots.frontier(df, "clip_score", ax=ax)
    with pytest.raises(ValueError, match="per="):
        plots.frontier(df, "sharpness", ax=ax, per="seed")  # type: ignore[arg-type]


# -- quality_by --------------------------------------------------------------------------------------------


def test_quality_by_prompt_with_variance_share_in_the_title():
    df = log_frame()
    df = df[(df["resolution"] == "720P") & (df["duration"] == 5)]  # one run per prompt × seed cell
    fig, ax = axes((8.0, 3.6))
    out = plots.quality_by(df, "sharpness", by="prompt", ax=ax)
    assert out is ax
    title = ax.get_title()
    share = ranking.variance_share(df, "sharpness")
    assert f"prompt {share.loc['prompt', 'share']:.0%}" in title and "seed" in title and "residual" in title
    assert [t.get_text() for t in ax.get_yticklabels()][0].endswith("(n=4)")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["1", "2", "3", "4"]  # seeds
    assert "higher is better" in ax.get_xlabel()
    save(fig, "quality_by.png")


def test_quality_by_other_columns_and_empty():
    df = log_frame()
    fig, ax = axes((8.0, 3.0))
    plots.quality_by(df, "flicker", by="resolution", ax=ax)
    assert [t.get_text().split()[0] for t in ax.get_yticklabels()] == ["480P", "720P"]
    assert "variance: resolution" in ax.get_title() and "lower is better" in ax.get_xlabel()
    fig, ax = axes()
    plots.quality_by(df[df["status"] == "FAILED"], "sharpness", ax=ax)
    assert "no finished runs" in ax.texts[0].get_text()
    with pytest.raises(ValueError, match="no column 'style'"):
        plots.quality_by(df, "sharpness", by="style", ax=ax)


# -- ranking -----------------------------------------------------------------------------------------------


def test_ranking_plot():
    rng = np.random.default_rng(0)
    strength = dict(zip(PROMPTS, [0.8, 0.0, -0.8], strict=True))
    rows = []
    for _ in range(60):
        a, b = rng.choice(PROMPTS, 2, replace=False)
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        rows.append((a, b, rng.choice(["a", "b", "tie"], p=[0.8 * p, 0.8 * (1 - p), 0.2])))
    rows.append((PROMPTS[0], PROMPTS[1], "skip"))
    fit = ranking.fit(pd.DataFrame(rows, columns=["a", "b", "choice"]), items=[*PROMPTS, "never shown"])
    fig, ax = axes((9.0, 3.2))
    out = plots.ranking(fit, ax=ax)
    assert out is ax
    at = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True))
    assert at[min(at)] == "never shown" and at[max(at)] != "never shown"  # best on top, unjudged at the bottom
    assert len(set(at.values())) == 4  # long prompts with a common start stay distinguishable
    assert at[max(at)].endswith(fit.index[0][-20:])
    notes = [t.get_text() for t in ax.texts]
    assert "not judged yet" in notes
    assert sum(n.startswith("40  ") for n in notes) == 3 and "n  wins–ties–losses" in notes
    assert "60 judgments" in ax.get_title() and "tie ν" in ax.get_title()
    save(fig, "ranking.png")


def test_ranking_plot_empty():
    fig, ax = axes()
    plots.ranking(ranking.fit(pd.DataFrame(columns=["a", "b", "choice"])), ax=ax)
    assert ax.texts[0].get_text() == "no items"
