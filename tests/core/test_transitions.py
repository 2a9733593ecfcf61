"""Every move of a run is checked and announced once, and a stopping run can still fail."""

from __future__ import annotations

import threading

from flask_realtime.core.jobs import JobRegistry, Running, job
from flask_realtime.core.runner import reap_lost_runs
from flask_realtime.core.runs import Run, RunState
from flask_realtime.core.service import RunService
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for

from .conftest import Core


class RivalStore(MemoryStore):
    """A store in which another process moves the run to ``rival`` just before this one
    saves its own move (once), so this process's compare-and-set loses."""

    rival: RunState | None = None

    def replace_run(self, run: Run, expected_state: RunState) -> bool:
        if self.rival is not None:
            current = self.get_run(run.id)
            assert current is not None
            super().replace_run(current.moved_to(self.rival), current.state)
            self.rival = None
        return super().replace_run(run, expected_state)


class DeadExecutorStore(MemoryStore):
    """A shared store in which no executor beats any more (its process was killed)."""

    def executor_alive(self, run_id: str) -> bool:
        return False


def running_run(store: MemoryStore) -> tuple[RunService, Run]:
    service = RunService(store, JobRegistry())
    run = store.create_run(Run(id="r1", job="j", title="J", user="u"))
    service.transition(run.id, RunState.RUNNING)
    return service, run


def test_a_move_that_lost_its_compare_and_set_is_not_announced() -> None:
    store = RivalStore()
    service, run = running_run(store)
    seen: list[RunState] = []
    service.subscribe(lambda r: seen.append(r.state))
    store.rival = RunState.FAILED  # the reaper of another process failed it meanwhile

    assert service.transition(run.id, RunState.SUCCEEDED) is None
    assert seen == []
    assert store.get_run(run.id).state is RunState.FAILED  # type: ignore[union-attr]


def test_a_move_retried_after_a_lost_compare_and_set_is_announced_once() -> None:
    store = RivalStore()
    service, run = running_run(store)
    seen: list[RunState] = []
    service.subscribe(lambda r: seen.append(r.state))
    store.rival = RunState.STOPPING  # a Stop arrived through another process

    moved = service.transition(run.id, RunState.FAILED, error="boom")
    assert moved is not None and moved.state is RunState.FAILED
    assert seen == [RunState.FAILED]


def test_a_job_that_raises_after_stop_fails(core: Core) -> None:
    @job(registry=core.registry)
    def cleanup_fails(running: Running) -> None:
        while running():
            threading.Event().wait(0.01)
        raise RuntimeError("could not clean up")

    run = core.service.start("u", "cleanup_fails")
    wait_for(lambda: core.store.get_run(run.id).state is RunState.RUNNING)
    core.service.stop("u", run.id)
    done = core.finished(run.id)
    assert done.state is RunState.FAILED  # the error wins over the stop: docs/jobs.md
    assert done.error == "RuntimeError: could not clean up"


def test_a_stopping_run_whose_executor_died_fails() -> None:
    service, run = running_run(DeadExecutorStore())
    service.transition(run.id, RunState.STOPPING)
    suspects: set[str] = set()

    assert reap_lost_runs(service, suspects) == []  # missing once: a chance to beat again
    assert reap_lost_runs(service, suspects) == [run.id]
    failed = service.store.get_run(run.id)
    assert failed is not None and failed.state is RunState.FAILED
    assert failed.error == "executor lost"
