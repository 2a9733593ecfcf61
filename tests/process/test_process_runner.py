"""A job in its own process: all it writes, its result, its error, as in a thread."""

from __future__ import annotations

import os

import pytest

from flask_realtime.core.jobs import Running, job
from flask_realtime.core.system import build, isolating_runner
from flask_realtime.core.zygote import zygote
from flask_realtime.store.memory import MemoryStore
from flask_realtime.webex.client import WebexAccess
from tests.core.conftest import Core

from . import jobs_for_process


def test_everything_the_job_and_its_children_write_is_in_the_run_in_order(core: Core) -> None:
    run = core.service.start("u", "everything_writes")
    done = core.finished(run.id)
    assert done.state == "succeeded", core.texts(run.id)
    assert core.texts(run.id, "stdout") == [
        "from print", "from os.system", "from C", "from a grandchild"]
    assert core.texts(run.id, "stderr") == ["grandchild error", "to stderr"]
    assert core.texts(run.id, "log") == ["INFO tests.process.jobs: a log record"]
    assert done.result["rows"] == [1, 2, 3]
    assert done.result["pid"] != os.getpid()  # it ran in a process of its own


def test_a_failing_job_fails_with_its_traceback_in_stderr(core: Core) -> None:
    run = core.service.start("u", "raises")
    done = core.finished(run.id)
    assert done.state == "failed"
    assert done.error == "ValueError: bad value"
    stderr = "\n".join(core.texts(run.id, "stderr"))
    assert "Traceback" in stderr and "ValueError: bad value" in stderr
    assert core.texts(run.id, "stdout") == ["before the error"]


def test_an_async_job_runs_in_its_process_too(core: Core) -> None:
    run = core.service.start("u", "async_in_process")
    done = core.finished(run.id)
    assert (done.state, done.result) == ("succeeded", "async done")


def test_webex_tokens_are_asked_of_the_parent_which_renews_them(core: Core) -> None:
    asked: list[bool] = []

    async def provider(force_refresh: bool = False) -> str:  # the login's vault, here
        asked.append(force_refresh)
        return "renewed-token" if force_refresh else "access-token"

    webex = WebexAccess("http://127.0.0.1:9/v1", provider)
    run = core.service.start("u", "uses_webex", services={"webex": webex})
    assert core.finished(run.id).state == "succeeded", core.texts(run.id)
    assert core.texts(run.id, "stdout") == ["first token access-token",
                                            "renewed token renewed-token"]
    assert asked == [False, True]  # both answered in this process


def test_a_service_a_child_cannot_use_is_left_out_with_a_line(core: Core) -> None:
    run = core.service.start("u", "everything_writes", services={"db": object()})
    assert core.finished(run.id).state == "succeeded"
    assert core.texts(run.id, "system") == [
        "The service 'db' cannot be used by a job in its own process."]


def test_the_servers_secrets_are_not_in_a_process_jobs_environment(
        core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    zygote().close()  # the next fork starts one with this environment
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("FLASK_REALTIME_WEBEX_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("JOB_SETTING", "for the job")
    try:
        run = core.service.start("u", "environment")
        names = core.finished(run.id).result
    finally:
        zygote().close()
    assert "JOB_SETTING" in names
    assert "SECRET_KEY" not in names and "FLASK_REALTIME_WEBEX_CLIENT_SECRET" not in names


def test_a_process_job_defined_in_a_function_fails_saying_where_it_must_be(
        core: Core) -> None:
    @job(registry=core.registry, isolation="process")
    def local(running: Running) -> None:
        print("never")

    run = core.service.start("u", "local")
    done = core.finished(run.id)
    assert done.state == "failed"
    assert done.error is not None and done.error.startswith(
        "The job's process could not be started: its function")
    assert "top level of its module" in done.error


def test_a_flood_keeps_its_place_before_the_command_that_follows_it(core: Core) -> None:
    run = core.service.start("u", "floods_then_shells", {"lines": 20_000})
    assert core.finished(run.id).state == "succeeded"
    stdout = core.texts(run.id, "stdout")
    assert stdout[:20_000] == [str(i) for i in range(20_000)]
    assert stdout[20_000:] == ["after the flood", "then python", "then C"]
    assert core.texts(run.id, "stderr") == ["err"]


def test_the_servers_isolation_applies_to_jobs_that_do_not_choose() -> None:
    system = build({"ISOLATION": "process"}, store=MemoryStore(),
                   registry=jobs_for_process.registry, runner=isolating_runner)
    with system:
        core = Core(system.registry, system.store, system.service)
        chose_nothing = core.service.start("u", "default_isolation")
        done = core.finished(chose_nothing.id)
        assert done.result != os.getpid()
        assert core.texts(chose_nothing.id, "stdout") == ["from the shell"]
        chose_thread = core.service.start("u", "in_a_thread")
        assert core.finished(chose_thread.id).result == os.getpid()
