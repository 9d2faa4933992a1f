"""Currencies are never added: estimates in two currencies keep a total each, every cost plot given USD and CNY
runs draws them apart (one panel per currency, axes named), totals in views and reports name each, and a
budget is in one currency, refused before anything is sent when a run is priced in another."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

import wanlab
from wanlab import T2V, plots
from wanlab.cost import Budget, BudgetExceeded, Estimate, Totals, money, sums, total, totals

from .test_quality_plots import log_frame, save

USD = Estimate(0.50, "USD", 5.0, "guide, 2026-07-10", model="wan2.7-t2v")
CNY = Estimate(3.00, "CNY", 5.0, "tables, 2026-07-01", model="wan2.7-t2v")
REQ = T2V("a red kite over a green hill", duration=2, seed=11)  # 0.20 USD in Singapore, 1.20 CNY in Beijing


def test_estimates_in_two_currencies_keep_a_total_each():
    mixed = USD + CNY + USD
    assert isinstance(mixed, Totals) and set(mixed) == {"USD", "CNY"}
    assert mixed["USD"].amount == pytest.approx(1.0) and mixed["USD"].items == 2
    assert mixed["CNY"].amount == pytest.approx(3.0)
    text = str(mixed)
    assert "1.00 USD" in text and "3.00 CNY" in text and "never added" in text and "4.00" not in text
    assert str(totals([CNY, USD])) == str(CNY + USD)  # the same totals, whichever way they are made
    assert sum([USD, CNY], Totals())["USD"].amount == pytest.approx(0.5)
    with pytest.raises(ValueError, match="USD and CNY"):  # a one-currency total refuses, naming both
        total([USD, CNY])
    same = total([USD, USD])
    assert isinstance(same, Estimate) and same.amount == pytest.approx(1.0) and same.currency == "USD"


def test_logged_amounts_sum_per_currency():
    per = sums([0.2, 1.2, None, float("nan"), 0.3, pd.NA], ["USD", "CNY", "USD", "USD", "USD", "CNY"])
    assert per == pytest.approx({"USD": 0.5, "CNY": 1.2})
    assert money(per) == "0.50 USD; 1.20 CNY" and money({}) == "0.00"


def _mixed() -> pd.DataFrame:
    df = log_frame(("USD", "CNY"))
    ended = pd.Timestamp("2026-07-01", tz="UTC") + pd.to_timedelta(range(len(df)), unit="min")
    return df.assign(ended=ended, latency_s=60.0, host=["sim:dashscope-beijing" if c == "CNY" else "sim:wavespeed"
                                                        for c in df["currency"]])


def _panels(fig: Figure) -> dict[str, object]:
    """The figure's plot panels (colour bars left out) by the currency their title names."""
    out = {}
    for ax in fig.axes:
        for cur in ("USD", "CNY"):
            if cur in ax.get_title():
                out[cur] = ax
    return out


@pytest.mark.parametrize("draw", ["cost_heatmap", "spend_over_time", "estimate_vs_actual"])
def test_each_cost_plot_draws_usd_and_cny_apart(draw):
    df = _mixed()
    fig = Figure(figsize=(12, 4), layout="constrained")
    first = getattr(plots, draw)(df, ax=fig.subplots())
    save(fig, f"currencies_{draw}.png")
    panels = _panels(fig)
    assert set(panels) == {"USD", "CNY"} and first in panels.values()
    for cur, ax in panels.items():
        other = "CNY" if cur == "USD" else "USD"
        labels = " ".join([ax.get_xlabel(), ax.get_ylabel(), ax.get_title()] + [a.get_ylabel() for a in fig.axes])
        assert other not in ax.get_title() and cur in labels
    if draw == "spend_over_time":  # each line ends at its own currency's total: never one summed line
        want = sums(df["cost"], df["currency"])
        for cur, ax in panels.items():
            (line,) = ax.get_lines()
            assert line.get_ydata()[-1] == pytest.approx(want[cur])
            assert f"cumulative spend ({cur})" == ax.get_ylabel()
    if draw == "estimate_vs_actual":
        for cur, ax in panels.items():
            assert ax.get_xlabel() == f"estimated cost ({cur})" and ax.get_ylabel() == f"actual cost ({cur})"
            xs = [x for c in ax.collections for x, _ in c.get_offsets()]
            rows = df[(df["currency"] == cur) & (df["status"] == "SUCCEEDED")]
            assert len(xs) == len(rows) and max(xs) == pytest.approx(float(rows["est_cost"].max()))


def test_one_currency_keeps_one_panel_and_a_cost_by_host_splits():
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = plots.spend_over_time(log_frame(("USD",)).assign(ended=pd.Timestamp("2026-07-01", tz="UTC")), ax=fig.subplots())
    assert ax.get_ylabel() == "cumulative spend (USD)" and len(fig.axes) == 1
    fig = Figure(figsize=(12, 4), layout="constrained")
    plots.quality_by(_mixed(), "cost", by="host", ax=fig.subplots())
    xlabels = sorted(a.get_xlabel() for a in fig.axes)
    assert len(xlabels) == 2 and "CNY" in xlabels[0] and "USD" in xlabels[1]


def test_views_and_reports_name_each_currencys_total(tmp_path):
    from wanlab._views import Gallery

    df = _mixed().assign(path=None)
    per = money(sums(df["cost"], df["currency"]))
    assert f"cost {per}" in Gallery(df)._repr_html_()
    assert "USD" in per and "CNY" in per


def test_a_budget_is_in_the_hosts_currency_and_says_which(make_lab, sim):
    beijing = make_lab(region="beijing", budget=5)
    assert beijing.budget.currency == "CNY" and "5.00 CNY" in repr(beijing)
    with pytest.raises(wanlab.ConfigError, match="budget is in USD but .*beijing prices are in CNY"):
        make_lab(region="beijing", budget=(5, "USD"))
    assert make_lab(budget=(1, "USD")).budget.currency == "USD"
    with pytest.raises(wanlab.ConfigError, match="three-letter"):
        make_lab(budget=(1, "usd"))


def test_a_run_priced_in_another_currency_is_refused_before_sending(make_lab, sim):
    beijing = make_lab(region="beijing")
    with pytest.raises(BudgetExceeded, match="budget is in USD but this run is priced in CNY"):
        beijing.submit(REQ, budget=Budget(10, "USD"))
    shared = Budget(10)  # one budget for two Labs: the first fixes its currency, the other is refused
    make_lab(budget=shared)
    assert shared.currency == "USD"
    with pytest.raises(wanlab.ConfigError, match="never converts"):
        make_lab(region="beijing", budget=shared)
    assert sim.stats()["submits"] == 0 and len(beijing.log) == 0
