"""The Lab inside a real Jupyter kernel (nbclient): top-level await, plain calls, jobs that keep moving
between cells, and a kernel where the user already applied nest_asyncio."""
from __future__ import annotations

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

import wanlab
from wanlab import T2V, Status

SETUP = """
import time, asyncio
import wanlab
from wanlab import T2V, Status
lab = wanlab.Lab(provider="sim", time_scale=0.002, home={media!r}, quiet=True)
"""

CELLS = [
    # top-level await on the kernel's own loop
    "job = await lab.run(T2V('a kite over a hill', duration=2, seed=1))\n"
    "assert job.status is Status.SUCCEEDED, job\n"
    "assert job.video_info['frames'] == 60",
    # a plain blocking call in a cell
    "job2 = lab.run_sync(T2V('a kite over a hill', duration=2, seed=1), timeout=60)\n"
    "assert job2.sha256 == job.sha256",
    # a job started in one cell keeps moving while the next cell blocks the kernel's loop
    "bg = lab.submit(T2V('background work', duration=2, seed=2))",
    "time.sleep(3)\n"
    "assert bg.done and bg.status is Status.SUCCEEDED, bg",
    # awaiting from a task the user created on the kernel loop
    "jobs = await asyncio.gather(*(lab.run(T2V('x', duration=2, seed=s)) for s in (3, 4)))\n"
    "assert [j.status for j in jobs] == [Status.SUCCEEDED] * 2",
    "lab.close()",
]

NEST = [
    "import nest_asyncio\nnest_asyncio.apply()",
    # with nest_asyncio, users call asyncio.run inside cells; wanlab must still work there
    "async def go():\n    return await lab.run(T2V('nested', duration=2, seed=5))\n"
    "j = asyncio.run(go())\nassert j.status is Status.SUCCEEDED, j",
]


def _run(cells: list[str], tmp_path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP.format(media=str(tmp_path / "media")))]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def test_lab_in_a_real_kernel(tmp_path):
    nb = _run(CELLS, tmp_path)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # five runs, four distinct videos: the same request and seed twice is stored once
    assert len(list((tmp_path / "media").glob("media/*/*.mp4"))) == 4


def test_lab_in_a_kernel_with_nest_asyncio_applied(tmp_path):
    cells = NEST[:1] + CELLS[:-1] + NEST[1:] + CELLS[-1:]
    nb = _run(cells, tmp_path)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_lab_without_keys_falls_back_to_the_embedded_sim(monkeypatch, capsys, tmp_path):
    for var in ("DASHSCOPE_API_KEY", "WAVESPEED_API_KEY", "WANLAB_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    with wanlab.Lab(home=tmp_path) as lab:
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and "simulator" in out
        assert lab.host == "sim:dashscope-singapore" and lab.sim is not None
        job = lab.run_sync(T2V("hello", duration=2, seed=1), timeout=60)
        assert job.status is Status.SUCCEEDED
        url = lab.sim.url
        assert httpx.get(f"{url}/_sim/stats").status_code == 200
    assert lab.closed
    with pytest.raises(httpx.ConnectError):     # the embedded sim stopped with the Lab
        httpx.get(f"{url}/_sim/stats")


def test_lab_picks_host_from_environment(monkeypatch):
    monkeypatch.delenv("WANLAB_PROVIDER", raising=False)
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env-key-abcdef0123456789")
    monkeypatch.setenv("DASHSCOPE_REGION", "beijing")
    with wanlab.Lab() as lab:
        assert lab.host == "dashscope" and lab.region == "beijing"
        assert lab.provider.base_url == "https://dashscope.aliyuncs.com/api/v1"
        assert "abcdef0123456789" not in repr(lab)
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    monkeypatch.setenv("WAVESPEED_API_KEY", "ws-env-key-abcdef0123456789")
    with wanlab.Lab() as lab:
        assert lab.host == "wavespeed" and lab.provider.base_url == "https://api.wavespeed.ai"


@pytest.mark.parametrize("kwargs, match", [
    ({"provider": "dashscope"}, "needs an API key: set DASHSCOPE_API_KEY"),
    ({"provider": "wavespeed"}, "needs an API key: set WAVESPEED_API_KEY"),
    ({"provider": "dashscope", "api_key": "sk-x", "region": "mars"}, "not a DashScope region"),
    ({"provider": "wavespeed", "api_key": "x", "region": "beijing"}, "WaveSpeed has no regions"),
    ({"provider": "replicate"}, "use 'dashscope', 'wavespeed' or 'sim'"),
    ({"provider": "sim", "protocol": "fal"}, "the sim speaks"),
])
def test_bad_lab_configuration(monkeypatch, kwargs, match):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    with pytest.raises(wanlab.ConfigError, match=match):
        wanlab.Lab(**kwargs)


def test_model_checks_against_the_labs_host_and_region(monkeypatch):
    with wanlab.Lab(provider="dashscope", api_key="sk-abcdefabcdef0123", region="virginia") as lab:
        assert lab.resolve(T2V("x")).id == "wan2.6-t2v"       # Virginia serves WAN 2.6 only
        with pytest.raises(wanlab.CatalogError, match="Virginia serves WAN 2.6 only"):
            lab.resolve(T2V("x", model="wan2.7-t2v"))
        with pytest.raises(wanlab.CatalogError, match="no 2.6 model there does 3×3 image grid"):
            wanlab.catalog.default_model("dashscope", "grid9", "virginia")
    with wanlab.Lab(provider="wavespeed", api_key="ws-abcdefabcdef0123") as lab:
        with pytest.raises(wanlab.CatalogError, match="alibaba/wan-2.7/text-to-video"):
            lab.resolve(T2V("x", model="wan2.7-t2v"))
        assert lab.resolve(T2V("x")).id == "alibaba/wan-2.7/text-to-video"
