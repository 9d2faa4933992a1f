"""Terminal means the host said so: a paid run that loses touch, is refused a poll, or cannot be written to
disk is detached and resumable — never FAILED. The log is one file you can copy, and refuses files that
are not logs, naming them. Keys are cleaned and never quoted."""
from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import threading

import httpx
import pytest

import wanlab
from wanlab import T2V, Lab, Status
from wanlab.errors import ConfigError
from wanlab.log import ExperimentLog, LogError

from .conftest import KEY

REQ = T2V("a red kite over a green hill", duration=2, seed=11)


class Flaky(httpx.AsyncBaseTransport):
    """The loopback transport with switches: a submit delivered whose answer is lost, list/query calls that
    cannot connect (a network cut), a 401 on chosen polls."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lose_submit_answer = False
        self.network_down: set[str] = set()     # "list", "query"
        self.unauthorised_polls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        route = "submit" if request.method == "POST" and path.endswith("/video-synthesis") else (
            "list" if path.endswith("/tasks") else "query" if "/tasks/" in path else "other")
        if route in self.network_down:
            raise httpx.ConnectError("network is unreachable", request=request)
        if route == "submit" and self.lose_submit_answer:
            await self.inner.handle_async_request(request)
            raise httpx.ReadTimeout("the answer never came", request=request)
        if route == "query" and self.unauthorised_polls:
            self.unauthorised_polls -= 1
            return httpx.Response(401, json={"code": "InvalidApiKey", "message": "Invalid API-key provided."},
                                  request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_network_cut_during_a_submit_detaches_and_resume_adopts_the_task(make_lab, sim):
    flaky = Flaky()
    flaky.lose_submit_answer = True
    flaky.network_down = {"list"}               # reconciliation cannot reach the task list either
    lab = make_lab(transport=flaky)
    job = lab.submit(REQ)
    lab.wait([job], timeout=60)
    assert job.detached and job.status is Status.SUBMITTING and job.task_id is None
    row = lab.log.get(job.id)
    assert row["status"] == "SUBMITTING" and "resumable" in row["error_message"]
    assert sim.stats()["submits"] == 1             # the host has the task; nothing was re-sent
    flaky.lose_submit_answer, flaky.network_down = False, set()
    again = lab.resume()
    assert [j.id for j in again] == [job.id]
    lab.wait(again, timeout=60)
    assert again[0].status is Status.SUCCEEDED and sim.stats()["submits"] == 1
    assert lab.log.get(job.id)["status"] == "SUCCEEDED"


def test_a_401_on_a_poll_after_acceptance_is_not_the_end(make_lab, sim):
    flaky = Flaky()
    flaky.unauthorised_polls = 1
    lab = make_lab(transport=flaky)
    job = lab.submit(REQ)
    lab.wait([job], timeout=60)
    assert job.detached and job.task_id and not job.status.terminal
    assert lab.log.get(job.id)["cost"] is None            # not settled as "not billed"
    again = lab.resume()
    lab.wait(again, timeout=60)
    assert again[0].status is Status.SUCCEEDED and sim.stats()["submits"] == 1


def test_an_unwritable_media_folder_keeps_the_paid_run(make_lab, sim, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    lab = make_lab()
    good = lab.store.root
    lab.store.root = blocker / "media"            # the folder breaks after the Lab started (a full disk, a mount)
    job = lab.submit(REQ)
    lab.wait([job], timeout=60)
    assert job.detached and job.error_code == "wanlab.DiskError"
    row = lab.log.get(job.id)
    assert row["status"] == "DOWNLOADING" and "resumable" in row["error_message"]
    lab.store.root = good                         # the user frees space / fixes the folder
    again = lab.resume()
    lab.wait(again, timeout=60)
    assert again[0].status is Status.SUCCEEDED and again[0].video_path.exists()
    assert sim.stats()["submits"] == 1


def test_a_log_write_that_fails_is_loud(make_lab, sim, caplog):
    lab = make_lab()
    real = lab.log._write

    def full_disk(run_id, values, insert=False):
        if "task_id" in values:
            raise sqlite3.OperationalError("database or disk is full")
        return real(run_id, values, insert)

    lab.log._write = full_disk
    with caplog.at_level(logging.ERROR, logger="wanlab"):
        job = lab.submit(REQ)
        lab.wait([job], timeout=60)
    assert isinstance(job.log_error, sqlite3.OperationalError)
    assert any(e.kind == "log_error" for e in job.events)
    assert any("cannot record job" in r.getMessage() for r in caplog.records)
    with pytest.warns(RuntimeWarning, match="could not record"):
        job.result(1)


# -- the log file --------------------------------------------------------------------------------------
def test_the_log_file_alone_is_the_whole_log_after_close(make_lab, tmp_path):
    lab = make_lab()
    lab.run_sync(REQ, timeout=60)
    path = lab.log.path
    lab.close()
    copy = tmp_path / "copy" / "runs.sqlite"
    copy.parent.mkdir()
    shutil.copy(path, copy)                      # the file only: no -wal beside it
    assert [r["status"] for r in ExperimentLog(copy).rows()] == ["SUCCEEDED"]
    assert len(lab.log.df) == 1                  # a closed Lab's log still reads


@pytest.mark.parametrize("content, words", [
    (b"", r"is empty \(0 bytes\)"),
    (b"this is a spreadsheet, not a database" * 10, "not an SQLite file"),
    (b"SQLite format 3\x00" + b"\xff" * 4000, "corrupt or not a database"),
])
def test_a_file_that_is_not_a_log_is_refused_by_name(tmp_path, content, words):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(content)
    with pytest.raises(LogError, match=words) as err:
        ExperimentLog(path)
    assert str(path) in str(err.value)


def test_a_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(LogError, match="invoices"):
        ExperimentLog(path)


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_a_lab_that_cannot_open_its_log_leaks_nothing(tmp_path, monkeypatch):
    for var in ("DASHSCOPE_API_KEY", "WAVESPEED_API_KEY", "WANLAB_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "runs.sqlite").write_bytes(b"")
    before = threading.active_count()
    for _ in range(3):
        with pytest.raises(LogError):
            Lab(home=tmp_path, quiet=True)
    assert threading.active_count() == before, _threads()


# -- keys ------------------------------------------------------------------------------------------------
def test_a_key_read_from_a_file_works(make_lab, sim):
    lab = make_lab(api_key=KEY + "\n")
    assert lab.run_sync(REQ, timeout=60).status is Status.SUCCEEDED


@pytest.mark.parametrize("key", [KEY[:10] + "\n" + KEY[10:], KEY + "\r\nX-Evil: 1", KEY[:8] + "\t" + KEY[8:]])
def test_a_key_with_control_characters_is_refused_without_quoting_it(key):
    with pytest.raises(ConfigError, match="one unbroken line") as err:
        Lab(provider="dashscope", api_key=key, region="singapore")
    assert KEY[4:14] not in str(err.value) and KEY[-8:] not in str(err.value)


def test_a_key_from_the_environment_with_a_newline_is_cleaned(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env-key-abcdef0123456789\n")
    monkeypatch.delenv("WANLAB_PROVIDER", raising=False)
    with Lab(quiet=True) as lab:
        assert lab.secret.reveal() == "sk-env-key-abcdef0123456789"


def test_a_key_and_a_region_mean_dashscope_never_the_sim(monkeypatch):
    for var in ("DASHSCOPE_API_KEY", "WAVESPEED_API_KEY", "WANLAB_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    with Lab(api_key="sk-abcdefabcdef0123", region="beijing", quiet=True) as lab:
        assert lab.host == "dashscope" and lab.sim is None and "dashscope.aliyuncs.com" in lab.provider.base_url
    with pytest.raises(ConfigError, match="not a DashScope region"):
        Lab(api_key="sk-abcdefabcdef0123", region="mars")


def test_the_key_is_in_no_error_when_the_host_refuses_it(make_lab, sim):
    lab = make_lab(api_key="sk-wrong-key-0123456789abcdef")
    job = lab.submit(REQ)
    lab.wait([job], timeout=60)
    texts = [str(job.error), repr(job), *(e.detail for e in job.events), *map(str, lab.log.get(job.id).values())]
    assert not any("0123456789abcdef" in t for t in texts)


async def test_loop_of_the_caller_is_untouched(make_lab):
    lab = make_lab()
    job = await lab.run(REQ)
    assert job.status is Status.SUCCEEDED and asyncio.get_running_loop().is_running()
    assert wanlab.Lab is Lab
