"""``RunService.start_many``: a batch of starts keeps every promise ``start`` makes (the
job's checks, request ids, the per-user and total limits) with one create request to the
store, each result in its start's place; and ``transition(current=...)``, the runner's
first move without a read."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flask_realtime.core import runner as runner_module
from flask_realtime.core.jobs import JobError, JobRegistry, ParamError, Running, job
from flask_realtime.core.ports import ActiveLimitError
from flask_realtime.core.runner import MOVE_CHUNK, ThreadRunner
from flask_realtime.core.runs import Run, RunState
from flask_realtime.core.service import (
    LimitReachedError,
    Limits,
    RequestIdError,
    RunService,
    StartRequest,
)
from flask_realtime.core.system import System, build
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for


class CountingStore(MemoryStore):
    """A memory store that counts its create requests and run reads."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def create_run(self, run: Run, request_key: str | None = None, **limits: Any) -> Run:
        self.calls.append("create_run")
        return super().create_run(run, request_key, **limits)

    def create_runs(self, creates: list[tuple[Run, str | None]], **limits: Any,
                    ) -> list[Run | ActiveLimitError]:
        self.calls.append("create_runs")
        return super().create_runs(creates, **limits)

    def get_run(self, run_id: str) -> Run | None:
        self.calls.append("get_run")
        return super().get_run(run_id)


def test_a_batch_starts_every_run_with_one_create() -> None:
    release = threading.Event()
    registry = JobRegistry()

    @job(registry=registry)
    def wait(running: Running, n: int = 1) -> int:
        release.wait(30)
        return n

    store = CountingStore()
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=store, registry=registry)
    service = system.service
    service.limits = Limits(per_user=2, total=4)
    seen: list[tuple[str, RunState]] = []
    service.subscribe(lambda run: seen.append((run.user, run.state)))
    with system:
        try:
            results = service.start_many([
                StartRequest("u", "wait", {"n": "2"}, request_id="a",
                             schedule=("s1", "S one"), run_id="run-1", notify="finish"),
                StartRequest("u", "nope"),                      # no such job
                StartRequest("u", "wait", {"n": "x"}),          # bad parameters
                StartRequest("u", "wait", request_id="\x00"),   # bad request id
                StartRequest("u", "wait"),
                StartRequest("u", "wait"),                      # u's third: over per_user=2
                StartRequest("v", "wait", request_id="b"),
                StartRequest("v", "wait", request_id="b"),      # the same request: its run
                StartRequest("w", "wait"),
                StartRequest("x", "wait"),                      # the fifth: over total=4
            ])
            assert store.calls.count("create_runs") == 1 and "create_run" not in store.calls
        finally:
            release.set()
        first, nope, bad, rid, second, third, v1, v2, w1, x1 = results
        assert isinstance(first, Run) and first.id == "run-1" and first.params == {"n": 2}
        assert (first.schedule_id, first.schedule_name, first.notify) == (
            "s1", "S one", "finish")
        assert isinstance(nope, JobError) and isinstance(bad, ParamError)
        assert isinstance(rid, RequestIdError)
        assert isinstance(second, Run)
        assert isinstance(third, LimitReachedError) and "already have 2 runs" in str(third)
        assert isinstance(v1, Run) and isinstance(v2, Run) and v2.id == v1.id
        assert isinstance(w1, Run)
        assert isinstance(x1, LimitReachedError) and "as many jobs" in str(x1)
        made = [r for r in (first, second, v1, w1) if isinstance(r, Run)]
        def all_succeeded() -> bool:
            return all((r := store.get_run(run.id)) is not None
                       and r.state is RunState.SUCCEEDED for run in made)

        wait_for(all_succeeded, 10)  # each executed by the runner
        queued = sorted(user for user, state in seen if state is RunState.QUEUED)
        assert queued == ["u", "u", "v", "w"]  # each announced once, as start() does
        assert len(store.list_runs(limit=100)) == 4


def test_the_runners_first_move_reads_no_record_and_a_stale_one_is_read_again() -> None:
    store = CountingStore()
    service = RunService(store, JobRegistry())
    run = store.create_run(Run(id="r1", job="j", title="J", user="u"))
    store.calls.clear()
    moved = service.transition(run.id, RunState.RUNNING, current=run)
    assert moved is not None and moved.state is RunState.RUNNING and moved.started_at
    assert store.calls == []  # the record given was the one stored: no read
    # a copy the store has moved on from (stopped while queued): the save fails, the
    # record is read again, and the move is refused as the stored state says
    other = store.create_run(Run(id="r2", job="j", title="J", user="u"))
    assert store.replace_run(other.moved_to(RunState.STOPPED), RunState.QUEUED)
    assert service.transition(other.id, RunState.RUNNING, current=other) is None
    current = store.get_run("r2")
    assert current is not None and current.state is RunState.STOPPED
    # a copy in a state the move is not allowed from (queued), while the stored record
    # (running) allows it: the store's state decides
    done = service.transition(run.id, RunState.SUCCEEDED, current=run)
    assert done is not None and done.state is RunState.SUCCEEDED


class MovingStore(CountingStore):
    """Counts ``replace_runs`` and ``replace_run``; ``before_batch`` runs just before a
    batched move, ``after_batch`` just after it (a stop arriving then)."""

    def __init__(self) -> None:
        super().__init__()
        self.before_batch: list[Any] = []
        self.after_batch: list[Any] = []

    def replace_run(self, run: Run, expected_state: RunState) -> bool:
        self.calls.append(f"replace_run {expected_state.value}->{run.state.value}")
        return super().replace_run(run, expected_state)

    def replace_runs(self, changes: list[tuple[Run, RunState]]) -> list[bool]:
        self.calls.append("replace_runs")
        for hook in self.before_batch:
            hook()
        done = super().replace_runs(changes)
        for hook in self.after_batch:
            hook()
        return done


def waiting_jobs() -> tuple[JobRegistry, list[str], threading.Event]:
    """A registry with the job ``wait``, which notes ``run-<n>`` as it begins in the
    list returned and returns ``n`` once the event returned is set."""
    release = threading.Event()
    registry = JobRegistry()
    executed: list[str] = []

    @job(registry=registry)
    def wait(running: Running, n: int = 1) -> int:
        executed.append(f"run-{n}")
        release.wait(30)
        return n

    return registry, executed, release


def moving_system(registry: JobRegistry) -> tuple[MovingStore, System[Any],
                                                 list[tuple[str, RunState]]]:
    """A core on a :class:`MovingStore`, and the ``(run id, state)`` of every change its
    service announces, in order."""
    store = MovingStore()
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=store, registry=registry)
    seen: list[tuple[str, RunState]] = []
    system.service.subscribe(lambda run: seen.append((run.id, run.state)))
    return store, system, seen


def test_a_batch_moves_its_runs_to_running_in_one_request_then_starts_their_threads(
        ) -> None:
    registry, executed, release = waiting_jobs()
    store, system, seen = moving_system(registry)
    service = system.service
    with system:
        try:
            results = service.start_many([StartRequest(f"u{n}", "wait", {"n": str(n)},
                                                       run_id=f"run-{n}") for n in range(5)])
            assert all(isinstance(r, Run) for r in results)
            wait_for(lambda: len(executed) == 5 and sum(
                state is RunState.RUNNING for _id, state in seen) == 5, 10)
            # one request moved them all; no thread read or moved its run itself
            assert store.calls.count("replace_runs") == 1
            assert not [c for c in store.calls if c.startswith(("replace_run ", "get_run"))]
            for n in range(5):
                stored = store.get_run(f"run-{n}")
                assert stored is not None and stored.state is RunState.RUNNING
                assert stored.started_at
                # each announced queued, then running (from its own thread), once each
                assert [s for i, s in seen if i == f"run-{n}"] == [
                    RunState.QUEUED, RunState.RUNNING]
        finally:
            release.set()
        wait_for(lambda: all((r := store.get_run(f"run-{n}")) is not None
                             and r.state is RunState.SUCCEEDED for n in range(5)), 10)


def test_a_run_stopped_before_or_after_the_batched_move_ends_stopped() -> None:
    registry = JobRegistry()
    executed: list[int] = []

    @job(registry=registry)
    def loop(running: Running, n: int = 1) -> int:
        executed.append(n)
        deadline = time.monotonic() + 30
        while running() and time.monotonic() < deadline:
            time.sleep(0.01)
        return n

    store, system, seen = moving_system(registry)
    service = system.service
    store.before_batch.append(lambda: service.stop("u0", "run-0"))  # still queued
    store.after_batch.append(lambda: service.stop("u1", "run-1"))   # just moved to running
    with system:
        results = service.start_many([StartRequest(f"u{n}", "loop", {"n": str(n)},
                                                   run_id=f"run-{n}") for n in range(3)])
        assert all(isinstance(r, Run) for r in results)
        wait_for(lambda: 2 in executed, 10)
        service.stop("u2", "run-2")

        def ended() -> bool:
            return all((r := store.get_run(f"run-{n}")) is not None
                       and r.state is RunState.STOPPED for n in range(3))

        wait_for(ended, 10)
        assert 0 not in executed  # stopped while queued: never executed
        first = store.get_run("run-0")
        assert first is not None and first.started_at is None
        # the run stopped just after the batch moved it: its thread did not announce
        # "running" over the stop, and it still ended stopped
        assert [s for i, s in seen if i == "run-1"] == [
            RunState.QUEUED, RunState.STOPPING, RunState.STOPPED]
        assert [s for i, s in seen if i == "run-0"] == [RunState.QUEUED, RunState.STOPPED]


def test_create_many_makes_and_announces_the_runs_and_launch_hands_them_to_the_runner(
        ) -> None:
    """``start_many`` in two halves (the scheduler makes a whole round's runs before it
    launches any): ``create_many`` makes the records and announces them queued, the
    runner gets nothing; ``launch`` hands them over, even once a shutdown has begun
    (the runs exist: the runner ends them as it ends a run submitted then)."""
    registry, executed, release = waiting_jobs()
    store, system, seen = moving_system(registry)
    service = system.service
    with system:
        try:
            made = service.create_many([StartRequest(f"u{n}", "wait", {"n": str(n)},
                                                     run_id=f"run-{n}") for n in range(3)]
                                       + [StartRequest("u9", "nope")])
            assert isinstance(made.results[3], JobError)
            assert [r.id for r in made.results[:3] if isinstance(r, Run)] == [
                "run-0", "run-1", "run-2"]
            assert seen == [(f"run-{n}", RunState.QUEUED) for n in range(3)]
            assert "replace_runs" not in store.calls and executed == []
            assert all((r := store.get_run(f"run-{n}")) is not None
                       and r.state is RunState.QUEUED for n in range(3))
            results = service.launch(made)
            assert [getattr(r, "id", None) for r in results] == [
                "run-0", "run-1", "run-2", None]
            wait_for(lambda: sorted(executed) == ["run-0", "run-1", "run-2"], 10)
            assert store.calls.count("replace_runs") == 1
            later = service.create_many([StartRequest("u5", "wait", {"n": "5"}, run_id="run-5")])
            service.closing = "Shutting down."
            assert isinstance(service.launch(later)[0], Run)
            wait_for(lambda: "run-5" in executed, 10)
        finally:
            release.set()


class BeatingStore(MovingStore):
    """Also counts heartbeats: one by one, and in batches."""

    def beat(self, run_id: str, ttl: float) -> None:
        self.calls.append("beat")

    def beat_many(self, run_ids: list[str], ttl: float) -> None:
        self.calls.append(f"beat_many {len(run_ids)}")


def test_a_large_batch_moves_in_chunks_beats_once_and_runs_no_job_before_every_thread_started(
        ) -> None:
    """A scheduler round's 1,000 runs come as one batch: they are moved running a
    chunk (MOVE_CHUNK) a request, their first heartbeats are one request, and no job
    runs before every thread of the batch was started (the starter does not compete
    with the runs it started)."""
    registry = JobRegistry()
    count = 2 * MOVE_CHUNK + 3
    started = 0
    first_job = threading.Event()
    seen_at_jobs: list[int] = []

    @job(registry=registry)
    def note(running: Running) -> None:
        seen_at_jobs.append(started)
        first_job.set()

    store = BeatingStore()
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=store, registry=registry)
    system.service.limits = Limits(total=10_000)
    runner = system.service.runner
    assert isinstance(runner, ThreadRunner)
    # No periodic beat within the test, however slow the machine: every "beat" call it
    # sees is a first beat made one run at a time (CI once took over the 1 s interval).
    runner.heartbeat.interval = 60.0
    make_thread = runner._thread

    def counted(*args: Any) -> threading.Thread:
        thread = make_thread(*args)
        start = thread.start

        def start_counted() -> None:
            nonlocal started
            if started == count - 1:  # the last: a job not held back would run meanwhile
                first_job.wait(0.5)
            start()
            started += 1
        thread.start = start_counted  # type: ignore[method-assign]
        return thread

    runner._thread = counted  # type: ignore[method-assign]
    with system:
        results = system.service.start_many([StartRequest(f"u{n}", "note") for n in
                                             range(count)])
        assert all(isinstance(r, Run) for r in results)
        wait_for(lambda: len(seen_at_jobs) == count, 10)
        assert seen_at_jobs == [count] * count
        assert store.calls.count("replace_runs") == 3
        assert f"beat_many {count}" in store.calls and "beat" not in store.calls


def test_a_batchs_moves_are_announced_by_its_starter_before_its_threads_run() -> None:
    """The moves to running of a batch are announced by the thread that hands the batch
    over, before any of its runs' threads runs: not by 1,000 run threads at once, each
    waiting for the CPU behind all the others."""
    registry = JobRegistry()
    ran: list[str] = []

    @job(registry=registry)
    def note(running: Running, n: int = 0) -> None:
        ran.append(f"run-{n}")

    _store, system, _seen = moving_system(registry)
    heard: list[tuple[str, RunState, str, int]] = []
    system.service.subscribe(lambda run: heard.append(
        (run.id, run.state, threading.current_thread().name, len(ran))))
    with system:
        results = system.service.start_many([StartRequest(f"u{n}", "note", {"n": str(n)},
                                                          run_id=f"run-{n}") for n in range(4)])
        assert all(isinstance(r, Run) for r in results)
        wait_for(lambda: sorted(ran) == [f"run-{n}" for n in range(4)], 10)
        wait_for(lambda: sum(state is RunState.SUCCEEDED for _i, state, *_r in heard) == 4, 10)
    running = [(i, name, jobs) for i, state, name, jobs in heard if state is RunState.RUNNING]
    me = threading.current_thread().name
    assert running == [(f"run-{n}", me, 0) for n in range(4)]


def test_no_run_of_a_batch_ends_before_every_job_of_the_batch_has_begun() -> None:
    """The ends of a batch's first runs (a dozen store requests each) do not keep its
    last jobs from beginning: a run whose job is done ends once every job of the batch
    has begun (``BatchStart``)."""
    registry = JobRegistry()
    count = 6
    one_ended = threading.Event()
    began: list[int] = []
    ended_with: list[int] = []

    @job(registry=registry)
    def note(running: Running, n: int = 0) -> None:
        began.append(n)

    _store, system, _seen = moving_system(registry)
    runner = system.service.runner
    assert isinstance(runner, ThreadRunner)
    run = runner._run

    def slow_last(*args: Any) -> None:
        if args[0].id == "run-last":  # its thread late: a run that may end early has by now
            one_ended.wait(0.5)
        run(*args)

    runner._run = slow_last  # type: ignore[method-assign]

    def on_change(run: Run) -> None:
        if run.state.finished:
            ended_with.append(len(began))
            one_ended.set()

    system.service.subscribe(on_change)
    with system:
        results = system.service.start_many([StartRequest(
            f"u{n}", "note", {"n": str(n)}, run_id="run-last" if n == count - 1 else None)
            for n in range(count)])
        assert all(isinstance(r, Run) for r in results)
        wait_for(lambda: len(ended_with) == count, 10)
    assert ended_with == [count] * count
    assert all((r := system.store.get_run(run.id)) is not None
               and r.state is RunState.SUCCEEDED for run in results if isinstance(run, Run))


def held_preparation(monkeypatch: pytest.MonkeyPatch, held: set[str],
                     ) -> tuple[threading.Event, threading.Event]:
    """Hold the preparation of the runs in ``held`` (``prepare_uploads``, between a
    run's thread reaching ``run_job`` and its job's call) until ``release`` is set;
    ``entered`` is set once one is held."""
    entered, release = threading.Event(), threading.Event()
    prepare = runner_module.prepare_uploads

    def holding(store: Any, run_id: str, *args: Any) -> dict[str, Any]:
        if run_id in held:
            entered.set()
            release.wait(30)
        return prepare(store, run_id, *args)

    monkeypatch.setattr(runner_module, "prepare_uploads", holding)
    return entered, release


def test_a_batch_has_begun_only_once_each_of_its_jobs_is_called(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``launch_all(began=...)`` is set once every job of the batch has been called,
    not when a run's thread starts preparing it (its uploads, its folder): until then
    the batch's ends, and what its caller does next, would compete with the
    preparation of its last jobs."""
    registry = JobRegistry()
    called: list[int] = []

    @job(registry=registry)
    def note(running: Running, n: int = 0) -> None:
        called.append(n)

    entered, release = held_preparation(monkeypatch, {"run-1"})
    _store, system, _seen = moving_system(registry)
    with system:
        made = system.service.create_many([StartRequest(f"u{n}", "note", {"n": str(n)},
                                                        run_id=f"run-{n}") for n in range(2)])
        began = threading.Event()
        try:
            results = system.service.launch_all([made], began=began)[0]
            assert all(isinstance(r, Run) for r in results)
            assert entered.wait(10)  # run-1's thread is in its preparation
            wait_for(lambda: called == [0], 10)
            assert not began.is_set()
        finally:
            release.set()
        assert began.wait(10)
        wait_for(lambda: all((r := system.store.get_run(f"run-{n}")) is not None
                             and r.state is RunState.SUCCEEDED for n in range(2)), 10)
    assert sorted(called) == [0, 1]


def test_a_run_that_fails_before_its_job_still_counts_as_begun() -> None:
    """A run of a batch whose job is never called (its upload gone) still counts as
    begun: without it, ``began`` would never be set and the batch's other runs would
    each wait ``BATCH_END_WAIT_SECONDS`` to end."""
    registry = JobRegistry()

    @job(registry=registry)
    def note(running: Running, n: int = 0) -> None:
        print(n)

    _store, system, _seen = moving_system(registry)
    with system:
        made = system.service.create_many([StartRequest(f"u{n}", "note", {"n": str(n)},
                                                        run_id=f"run-{n}") for n in range(3)])

        def gone(*_args: Any) -> dict[str, Any]:
            raise runner_module.UploadGoneError("The file is not stored any more.")

        began = threading.Event()
        with pytest.MonkeyPatch.context() as patch:
            original = runner_module.prepare_uploads
            patch.setattr(runner_module, "prepare_uploads", lambda store, run_id, *rest: (
                gone() if run_id == "run-0" else original(store, run_id, *rest)))
            system.service.launch_all([made], began=began)
            assert began.wait(30)
            wait_for(lambda: all((r := system.store.get_run(f"run-{n}")) is not None
                                 and r.state.finished for n in range(3)), 30)
    states = [system.store.get_run(f"run-{n}") for n in range(3)]
    assert [r.state if r else None for r in states] == [
        RunState.FAILED, RunState.SUCCEEDED, RunState.SUCCEEDED]
