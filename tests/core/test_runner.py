"""Runs move queued -> running -> succeeded / failed / stopped, and Stop is honest."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from flask_realtime.core.jobs import Running, job
from flask_realtime.core.runs import RunState
from flask_realtime.core.service import LimitReachedError, RunNotFoundError
from tests.conftest import wait_for

from .conftest import Core


def test_a_run_succeeds_and_keeps_its_result(core: Core) -> None:
    @job(registry=core.registry)
    def answer(running: Running, n: int = 2) -> list[dict[str, int]]:
        print("thinking")
        return [{"n": n, "answer": 42}]

    seen: list[RunState] = []
    core.service.subscribe(lambda run: seen.append(run.state))
    run = core.service.start("alice", "answer", {"n": "3"})
    done = core.finished(run.id)
    assert done.state is RunState.SUCCEEDED
    assert done.result == [{"n": 3, "answer": 42}] and done.has_result
    assert done.params == {"n": 3}
    assert seen == [RunState.QUEUED, RunState.RUNNING, RunState.SUCCEEDED]
    assert done.started_at and done.ended_at


def test_an_exception_fails_the_run_with_its_traceback(core: Core) -> None:
    @job(registry=core.registry)
    def broken(running: Running) -> None:
        print("before")
        raise ValueError("bad thing")

    run = core.service.start("u", "broken")
    done = core.finished(run.id)
    assert done.state is RunState.FAILED and done.error == "ValueError: bad thing"
    stderr = "\n".join(core.texts(run.id, "stderr"))
    assert "Traceback (most recent call last)" in stderr and "ValueError: bad thing" in stderr
    again = core.service.start("u", "broken")  # the user can start again at once
    assert core.finished(again.id).state is RunState.FAILED


def test_a_result_that_is_not_json_is_reported_not_kept(core: Core) -> None:
    @job(registry=core.registry)
    def odd(running: Running) -> object:
        return object()

    run = core.service.start("u", "odd")
    done = core.finished(run.id)
    assert done.state is RunState.SUCCEEDED and not done.has_result
    assert any("not JSON-serialisable" in t for t in core.texts(run.id, "system"))


def test_stop_a_sync_job_that_polls_running(core: Core) -> None:
    @job(registry=core.registry)
    def loop(running: Running) -> None:
        while running():
            time.sleep(0.01)
        print("cleaned up")

    run = core.service.start("u", "loop")
    wait_for(lambda: core.store.get_run(run.id).state is RunState.RUNNING)
    core.service.stop("u", run.id)
    done = core.finished(run.id)
    assert done.state is RunState.STOPPED
    assert core.texts(run.id) == ["Stop requested.", "cleaned up"]


def test_stop_cancels_an_async_job_blocked_in_await(core: Core) -> None:
    cancelled = threading.Event()

    @job(registry=core.registry)
    async def sleeper(running: Running) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    run = core.service.start("u", "sleeper")
    wait_for(lambda: core.store.get_run(run.id).state is RunState.RUNNING)
    core.service.stop("u", run.id)
    assert core.store.get_run(run.id).state is RunState.STOPPING  # grace period first
    assert core.finished(run.id, timeout=5).state is RunState.STOPPED
    assert cancelled.is_set()


def test_a_sync_job_ignoring_running_stays_stopping_until_it_returns(core: Core) -> None:
    release = threading.Event()

    @job(registry=core.registry)
    def stubborn(running: Running) -> None:
        release.wait(30)

    run = core.service.start("u", "stubborn")
    wait_for(lambda: core.store.get_run(run.id).state is RunState.RUNNING)
    core.service.stop("u", run.id)
    time.sleep(1.0)  # well past the grace period: there is no event for "still not stopped"
    assert core.store.get_run(run.id).state is RunState.STOPPING
    release.set()
    assert core.finished(run.id).state is RunState.STOPPED


def test_stopping_twice_or_after_the_end_changes_nothing(core: Core) -> None:
    @job(registry=core.registry)
    def quick(running: Running) -> None:
        print("hi")

    run = core.service.start("u", "quick")
    done = core.finished(run.id)
    assert core.service.stop("u", run.id) == done
    assert core.service.stop("u", run.id).state is RunState.SUCCEEDED


def test_another_users_run_does_not_exist_for_you(core: Core) -> None:
    @job(registry=core.registry)
    def quick(running: Running) -> None:
        pass

    run = core.service.start("alice", "quick")
    with pytest.raises(RunNotFoundError):
        core.service.get("bob", run.id)
    with pytest.raises(RunNotFoundError):
        core.service.stop("bob", run.id)
    with pytest.raises(RunNotFoundError):
        core.service.read("bob", run.id, 0)
    assert core.service.list("bob") == []


def test_the_same_request_id_starts_one_run(core: Core) -> None:
    @job(registry=core.registry)
    def quick(running: Running) -> None:
        pass

    first = core.service.start("u", "quick", request_id="r1")
    assert core.service.start("u", "quick", request_id="r1").id == first.id
    assert core.service.start("other", "quick", request_id="r1").id != first.id
    # start_once says which call made the run: the first, not the ones repeating it.
    made, new = core.service.start_once("u", "quick", request_id="r2")
    assert new and made.id != first.id
    again, repeated = core.service.start_once("u", "quick", request_id="r2")
    assert again.id == made.id and repeated is False


def test_limits_on_concurrent_runs(core: Core) -> None:
    release = threading.Event()

    @job(registry=core.registry)
    def wait(running: Running) -> None:
        release.wait(30)

    from flask_realtime.core.service import Limits

    core.service.limits = Limits(per_user=2, total=3)
    try:
        core.service.start("u", "wait")
        core.service.start("u", "wait")
        with pytest.raises(LimitReachedError, match="already have 2 runs"):
            core.service.start("u", "wait")
        core.service.start("v", "wait")
        with pytest.raises(LimitReachedError, match="as many jobs as it allows"):
            core.service.start("w", "wait")
    finally:
        release.set()


def test_each_user_keeps_the_newest_runs_and_older_ones_are_forgotten(core: Core) -> None:
    @job(registry=core.registry)
    def hello(running: Running) -> None:
        print("hello")

    from flask_realtime.core.service import Limits

    core.service.limits = Limits(history=3)
    mine = []
    for _ in range(5):
        run = core.service.start("u", "hello")
        core.finished(run.id)
        mine.append(run.id)
    theirs = core.service.start("v", "hello")
    core.finished(theirs.id)
    wait_for(lambda: len(core.store.list_runs("u")) == 3)
    assert [r.id for r in core.store.list_runs("u")] == mine[:1:-1]  # the newest three
    assert core.store.get_run(mine[0]) is None and core.texts(mine[0]) == []
    assert core.texts(mine[-1]) == ["hello"]
    assert core.store.get_run(theirs.id) is not None

    core.service.limits = Limits(history=0)  # 0: keep every run
    core.finished(core.service.start("u", "hello").id)
    assert len(core.store.list_runs("u")) == 4
