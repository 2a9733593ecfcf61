"""A Stop asked in this process reaches the job directly, not only through the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from flask_realtime.core.capture import CapturePump
from flask_realtime.core.jobs import JobRegistry, Running, job
from flask_realtime.core.ports import StoreClosedError, StoreUnavailableError
from flask_realtime.core.runner import ThreadRunner
from flask_realtime.core.runs import RunState
from flask_realtime.core.service import RunService
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for


class StopChecksFail(MemoryStore):
    """A store that cannot be read for stop requests (Redis away, for instance)."""

    def stop_requested(self, run_id: str) -> bool:
        raise StoreUnavailableError("the store is unavailable")


@pytest.fixture
def give_up() -> Iterator[threading.Event]:
    """Ends the job of a failed test, which would otherwise poll forever."""
    event = threading.Event()
    yield event
    event.set()


def test_stop_reaches_a_job_of_this_process_while_the_store_is_away(
        give_up: threading.Event) -> None:
    registry = JobRegistry()
    store = StopChecksFail()
    service = RunService(store, registry)
    service.runner = ThreadRunner(service, CapturePump(store.append_output), stop_grace=0.3)

    @job(registry=registry)
    def polls(running: Running) -> None:
        while running() and not give_up.is_set():
            give_up.wait(0.01)

    run = service.start("u", "polls")
    wait_for(lambda: store.get_run(run.id).state is RunState.RUNNING)  # type: ignore[union-attr]
    service.stop("u", run.id)
    done = wait_for(lambda: (r := store.get_run(run.id)) and r.state.finished and r)
    assert done.state is RunState.STOPPED


class ClosesAtFinish(MemoryStore):
    """A store its own process closes while a run is going (the server stopping)."""

    closed = False

    def get_run(self, run_id: str):  # type: ignore[no-untyped-def]
        if self.closed:
            raise StoreClosedError("The store is closed: the server is stopping.")
        return super().get_run(run_id)


def test_a_run_ending_after_its_store_closed_logs_a_warning_and_does_not_wait(
        give_up: threading.Event, caplog: pytest.LogCaptureFixture) -> None:
    """An outage is waited out (FINISH_WAIT_SECONDS); a store closed for good is not:
    the thread ends at once with one warning, no exception escapes it."""
    registry = JobRegistry()
    store = ClosesAtFinish()
    service = RunService(store, registry)
    runner = ThreadRunner(service, CapturePump(store.append_output), stop_grace=0.3)
    service.runner = runner
    crashed: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: crashed.append(args.exc_value)

    @job(registry=registry)
    def waits(running: Running) -> None:
        give_up.wait(10)

    try:
        run = service.start("u", "waits")
        wait_for(lambda: store.get_run(run.id).state is RunState.RUNNING)  # type: ignore[union-attr]
        store.closed = True
        give_up.set()
        wait_for(lambda: "could not be stored" in caplog.text, timeout=5)
        wait_for(lambda: not [t for t in threading.enumerate()
                              if t.name == f"flask-realtime-run-{run.id}"], timeout=5)
    finally:
        threading.excepthook = previous
    assert crashed == []
