"""Cost: the estimate before, the actual after, and the budget guard (refuse before start, stop
mid-sweep, unbilled failures don't count)."""
from __future__ import annotations

import pytest

import wanlab
from wanlab import T2V, Status
from wanlab.cost import Budget, BudgetExceeded, Estimate

REQ = T2V("a red kite over a green hill", duration=2, seed=11)      # 720P × 2 s × 0.10 USD/s = 0.20 USD


def test_budget_exceeded_is_exported():
    assert wanlab.BudgetExceeded is BudgetExceeded and issubclass(BudgetExceeded, wanlab.WanlabError)


def test_estimate_one_many_and_a_sweep(make_lab, sim):
    lab = make_lab()
    one = lab.estimate(REQ)
    assert one.amount == pytest.approx(0.20) and one.currency == "USD" and one.seconds == 2
    assert "2026-07-10" in one.source and "2026-07-10" in str(one)         # the price table's date
    hd = lab.estimate(REQ.replace(resolution="1080P", duration=5))
    assert hd.amount == pytest.approx(0.75)
    many = lab.estimate([REQ, REQ.replace(resolution="1080P", duration=5)])
    assert many.amount == pytest.approx(0.95) and many.items == 2

    class Sweep:                      # anything with .expand() (or .requests) is priced as a whole
        def expand(self):
            return [REQ.replace(seed=s) for s in range(5)]

    assert lab.estimate(Sweep()).amount == pytest.approx(1.0)
    assert sim.stats()["submits"] == 0                                   # pricing sends nothing


def test_unknown_price_is_unknown_not_zero(make_lab):
    lab = make_lab(prices=wanlab.PriceTable([]))
    est = lab.estimate(REQ)
    assert est.amount is None and "unknown" in str(est)
    assert (est + lab.estimate(REQ)).amount is None


def test_actual_cost_from_the_hosts_usage(make_lab):
    lab = make_lab()
    job = lab.run_sync(REQ, timeout=60)
    assert job.usage.get("output_video_duration") == 2
    assert job.cost == pytest.approx(0.20) and job.currency == "USD"
    assert lab.spent == pytest.approx(0.20)
    df = lab.log.df
    assert df["cost"].iloc[0] == pytest.approx(0.20) and df["est_cost"].iloc[0] == pytest.approx(0.20)


def test_budget_refuses_before_anything_starts(make_lab, sim):
    lab = make_lab(budget=0.15)
    with pytest.raises(BudgetExceeded, match="would exceed"):
        lab.submit(REQ)
    assert len(lab.log) == 0 and sim.stats()["submits"] == 0 and lab.budget.in_flight == {}
    unpriced = make_lab(budget=10.0, prices=wanlab.PriceTable([]))
    with pytest.raises(BudgetExceeded, match="unknown"):
        unpriced.submit(REQ)


def test_budget_stops_a_sweep_midway_and_is_never_exceeded(make_lab, sim):
    lab = make_lab(budget=0.70)                    # room for 3 runs of 0.20, not 4
    started, refused = [], 0
    for s in range(10):
        try:
            started.append(lab.submit(REQ.replace(seed=s)))
        except BudgetExceeded:
            refused += 1
    assert len(started) == 3 and refused == 7      # in-flight estimates count before any is billed
    lab.wait(started, timeout=60)
    assert lab.spent == pytest.approx(0.60) and lab.spent <= 0.70
    with pytest.raises(BudgetExceeded):
        lab.submit(REQ.replace(seed=99))
    assert sim.stats()["submits"] == 3 and len(lab.log) == 3

    exact = make_lab(budget=0.40, home=lab.home.parent / "exact")
    exact.wait([exact.submit(REQ.replace(seed=s)) for s in (1, 2)], timeout=60)
    with pytest.raises(BudgetExceeded, match="reached"):    # actual spend has reached the budget
        exact.submit(REQ.replace(seed=3))


def test_unbilled_failures_do_not_count(make_lab, sim):
    sim.faults.set("task:fail#1")
    lab = make_lab(budget=0.40)
    failed = lab.submit(REQ.replace(seed=1))
    lab.wait([failed], timeout=60)
    assert failed.status is Status.FAILED and failed.cost == 0.0 and lab.spent == 0.0
    ok = [lab.submit(REQ.replace(seed=s)) for s in (2, 3)]       # the failure freed its reservation
    lab.wait(ok, timeout=60)
    assert [j.status for j in ok] == [Status.SUCCEEDED] * 2 and lab.spent == pytest.approx(0.40)
    assert lab.log.get(failed.id)["cost"] == 0.0


def test_a_sweeps_own_budget(make_lab):
    lab = make_lab(budget=5.0)
    sweep = Budget(0.45)
    jobs = []
    with pytest.raises(BudgetExceeded):
        for s in range(5):
            jobs.append(lab.submit(REQ.replace(seed=s), budget=sweep))
    assert len(jobs) == 2
    lab.wait(jobs, timeout=60)
    assert sweep.spent == pytest.approx(0.40) and lab.spent == pytest.approx(0.40)
    assert lab.submit(REQ.replace(seed=9)).result(60).status is Status.SUCCEEDED   # the Lab's budget has room


def test_budget_bookkeeping():
    b = Budget(1.0)
    b.admit("a", Estimate(0.6, "USD", 6, "t"))
    with pytest.raises(BudgetExceeded):
        b.admit("b", Estimate(0.6, "USD", 6, "t"))
    with pytest.raises(BudgetExceeded, match="CNY"):
        b.admit("c", Estimate(0.1, "CNY", 1, "t"))
    b.settle("a", 0.0)                          # not billed
    assert b.remaining == pytest.approx(1.0)
    b.reserve("r", 0.3)                         # a resumed run already on the host
    assert b.remaining == pytest.approx(0.7)
    assert Budget(None).remaining is None
