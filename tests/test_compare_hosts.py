"""One request on several hosts (`wanlab.compare.compare_hosts`): every host checked and priced before anything
is sent, one log, a host label and a latency profile per sim host, nothing paid twice; and a region that
serves another model version says so, once."""

from __future__ import annotations

import json
import time

import pytest

import wanlab
from wanlab import T2V, Lab, Status
from wanlab.compare import compare_hosts, estimate_hosts
from wanlab.sim import SimServer
from wanlab.sim.settings import LATENCY_PROFILES

from .conftest import FAST_RETRY, KEY

REQ = T2V("a red kite over a green hill", duration=2, seed=5)
HOSTS = ("sim:dashscope-singapore", "sim:dashscope-beijing", "sim:wavespeed")


def _sim_labs(sim: SimServer, home, **kw) -> list[Lab]:
    """Singapore, Beijing and WaveSpeed on one running sim, as `Lab(provider="sim", base_url=…)`."""
    kw = {"api_key": KEY, "home": home, "time_scale": sim.settings.time_scale, "retry": FAST_RETRY, **kw}
    return [
        Lab(provider="sim", base_url=sim.dashscope_url(), **kw),
        Lab(provider="sim", base_url=sim.dashscope_url("beijing"), region="beijing", **kw),
        Lab(provider="sim", protocol="wavespeed", base_url=sim.wavespeed_url, **kw),
    ]


def test_three_hosts_in_one_log_side_by_side_with_their_own_labels_and_latencies(tmp_path):
    # latency_sigma=0: each task's planned queue and run are its host's profile exactly, never the clock
    with SimServer(time_scale=0.002, seed=3, latency_sigma=0.0) as sim:
        labs = _sim_labs(sim, tmp_path)
        try:
            seeds = [REQ.replace(seed=s) for s in (1, 2)]
            print(estimate_hosts(seeds, labs))
            comparison = compare_hosts(seeds, labs, timeout=120)
            df = comparison.df
            assert list(df["where"].astype(str)) == [h for h in HOSTS for _ in seeds]
            assert set(df["host"].astype(str)) == set(HOSTS) and (df["status"] == "SUCCEEDED").all()
            assert len(labs[0].log) == 6 and set(labs[0].log.df["study"]) == {comparison.study}  # one log
            planned = {}
            for row in df.itertuples():
                info = sim.task_info(row.task_id)
                planned.setdefault(row.host, set()).add((round(info["queue_s"], 6), round(info["run_s"], 6)))
            run = wanlab.catalog.get_model("wan2.7-t2v").expected_latency("720P", 2)
            for host in HOSTS:
                queue_factor, run_factor = LATENCY_PROFILES[host.removeprefix("sim:")]
                assert planned[host] == {(round(4.0 * queue_factor, 6), round(run * run_factor, 6))}
            summary = comparison.summary()
            assert list(summary["host"]) == list(HOSTS)
            assert list(summary["cost"]) == ["0.40 USD", "2.40 CNY", "0.40 USD"]  # each in its own currency
            assert "USD, CNY never added" in str(comparison.estimate())
            page = comparison._repr_html_()
            assert all(f">{h}</th>" in page for h in HOSTS) and page.count("<video") == 6  # a column per host
        finally:
            for lab in labs:
                lab.close()


def test_latency_profiles_are_settings_and_deterministic_in_the_seed(tmp_path):
    planned = []
    for region in ("beijing", "beijing", "singapore"):  # three sims, the same seed: the same first draw
        with SimServer(time_scale=0.002, seed=11) as sim, Lab(
            provider="sim", base_url=sim.dashscope_url(region), region=region, api_key=KEY, home=tmp_path / region,
            time_scale=0.002, retry=FAST_RETRY, quiet=True,
        ) as lab:
            info = sim.task_info(lab.run_sync(REQ, timeout=60).task_id)
            planned.append((info["queue_s"], info["run_s"]))
    (beijing, again, singapore) = planned
    queue_factor, run_factor = LATENCY_PROFILES["dashscope-beijing"]
    assert beijing == again and beijing[0] != singapore[0]
    assert beijing[0] / singapore[0] == pytest.approx(queue_factor, rel=1e-3)  # task_info rounds to ms
    assert beijing[1] / singapore[1] == pytest.approx(run_factor, rel=1e-3)
    with SimServer(latency_profiles={"wavespeed": (2.0, 3.0)}) as sim:
        assert sim.settings.profile("wavespeed", "") == (2.0, 3.0)
        assert sim.settings.profile("dashscope", "beijing") == LATENCY_PROFILES["dashscope-beijing"]
    with pytest.raises(ValueError, match="unknown host 'dashscope-tokyo'"):
        SimServer(latency_profiles={"dashscope-tokyo": (1.0, 1.0)})
    with pytest.raises(ValueError, match="two finite numbers"):
        SimServer(latency_profiles={"wavespeed": (float("nan"), 1.0)})


def test_a_host_that_refuses_the_request_means_nothing_is_sent_anywhere(make_lab, sim):
    singapore, virginia = make_lab(), make_lab(region="virginia")
    only_27 = T2V("a kite", model="wan2.7-t2v", duration=2, seed=1)
    with pytest.raises(wanlab.ValidationError, match=r"dashscope/virginia refuses .* nothing was sent to any host.*"
                                                     r"Virginia serves WAN 2\.6 only"):
        compare_hosts(only_27, [singapore, virginia])
    poor = make_lab("wavespeed", budget=0.1)  # the last host's budget refuses: the first sends nothing either
    with pytest.raises(wanlab.BudgetExceeded, match="nothing was sent to any host"):
        compare_hosts(REQ, [singapore, poor])
    with pytest.raises(wanlab.ValidationError, match="give the request a seed"):
        compare_hosts(T2V("unseeded", duration=2), [singapore, poor])
    elsewhere = make_lab("wavespeed", home=singapore.home.parent / "elsewhere")
    with pytest.raises(wanlab.ValidationError, match="same home="):
        compare_hosts(REQ, [singapore, elsewhere])
    with pytest.raises(wanlab.ValidationError, match="given twice"):
        compare_hosts(REQ, [singapore, singapore])
    assert sim.stats()["submits"] == 0 and len(singapore.log) == 0


def test_running_the_same_cell_again_pays_nothing(make_lab, sim):
    labs = [make_lab(), make_lab(region="beijing"), make_lab("wavespeed")]
    started = compare_hosts(REQ, labs, wait=False)  # re-run while running: attached to the same runs
    again = compare_hosts(REQ, labs, wait=False)
    assert [j.id for j in again.jobs] == [j.id for j in started.jobs] and len(labs[0].log) == 3
    again.wait(120)
    started.wait(120)
    assert sim.stats()["submits"] == 3
    done = compare_hosts(REQ, labs)  # re-run once done: the logged runs are reused
    assert done.jobs == [] and sorted(done.reused) == sorted(j.id for j in started.jobs)
    assert sim.stats()["submits"] == 3 and len(labs[0].log) == 3
    assert (done.df["reused"]).all() and len(compare_hosts(REQ, labs, fresh=True).jobs) == 3  # fresh: paid again


def test_virginia_names_the_model_it_runs_and_says_so_once(make_lab, capsys):
    virginia = make_lab(region="virginia")
    capsys.readouterr()
    est = virginia.estimate(T2V("a kite", duration=5))
    virginia.estimate(T2V("another kite", duration=10))
    said = capsys.readouterr().out
    assert said.count("wanlab: DashScope virginia serves WAN 2.6 only: T2V runs on wan2.6-t2v") == 1
    assert "on wan2.6-t2v" in str(est)
    job = virginia.run_sync(T2V("a kite", duration=5, seed=2), timeout=60)
    assert job.model.id == "wan2.6-t2v" and "wan2.6-t2v" in repr(job)
    assert virginia.log.get(job.id)["model"] == "wan2.6-t2v" and capsys.readouterr().out == ""
    quiet = make_lab(region="virginia", quiet=True, home=virginia.home.parent / "quiet")
    quiet.estimate(T2V("a kite", duration=5))
    assert capsys.readouterr().out == ""
    make_lab().estimate(T2V("a kite", duration=5))  # Singapore serves what was asked: nothing to say
    assert capsys.readouterr().out == ""


def test_sim_labels_and_an_old_logs_sim_rows(tmp_path):
    from wanlab import _hosts as hosts

    assert hosts.is_sim("sim") and hosts.is_sim("sim:wavespeed") and not hosts.is_sim("simulator")
    assert hosts.labels("sim:dashscope-beijing") == ["sim:dashscope-beijing", "sim"]
    with Lab(provider="sim", home=tmp_path, quiet=True) as first:
        old = {"run_id": "old-sim-run", "created": time.time(), "status": "PENDING", "task_id": "t-gone",
               "mode": "t2v", "model": "wan2.7-t2v", "resolution": "720P", "duration": 2, "seed": 1, "prompt": "p",
               "params": json.dumps({}), "inputs": "{}", "host": "sim", "protocol": "dashscope",
               "region": "singapore", "base_url": "http://127.0.0.1:1/api/v1", "claimed_until": 0.0}
        first.log.insert(old)  # as an older wanlab logged a sim run: host "sim", its sim long gone
    with Lab(provider="sim", home=tmp_path, quiet=True) as lab:
        row = lab.log.get("old-sim-run")
        assert row["status"] == "UNKNOWN" and row["error_code"] == "wanlab.SimGone"
        job = lab.run_sync(REQ, timeout=60)
        assert job.status is Status.SUCCEEDED and lab.log.get(job.id)["host"] == "sim:dashscope-singapore"


def test_a_run_another_kernel_finished_after_the_plan_is_reused_not_paid_again(make_lab, sim, monkeypatch):
    """compare_hosts plans which runs to reuse, then sends the rest: a run another kernel finishes in between is
    found where the new one would be logged, and not sent again."""
    other, this = make_lab(), make_lab()                     # one log, two kernels
    done = other.run_sync(REQ, timeout=60)
    monkeypatch.setattr(wanlab._recovery, "finished_twin", lambda *a, **k: None)   # the plan saw no finished run
    again = compare_hosts(REQ, [this])
    assert sim.stats()["submits"] == 1 and again.jobs == [] and again.reused == [done.id]
