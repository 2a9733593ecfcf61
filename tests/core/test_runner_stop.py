"""A Stop asked in this process reaches the job directly, not only through the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from flask_realtime.core.capture import CapturePump
from flask_realtime.core.jobs import JobRegistry, Running, job
from flask_realtime.core.ports import StoreUnavailableError
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
