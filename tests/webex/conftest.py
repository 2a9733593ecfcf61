"""A real simulator on a free port, and helpers to run coroutines against it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from flask_realtime.webex.simulator import SimulatorConfig, SimulatorHandle, start_simulator

T = TypeVar("T")


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Override in a module for other data, latency or rate limits."""
    return SimulatorConfig(spaces=30, messages=3000)


@pytest.fixture
def sim(sim_config: SimulatorConfig) -> Iterator[SimulatorHandle]:
    handle = start_simulator(sim_config)
    yield handle
    handle.stop()


#: How long a coroutine of these tests may run. A client that loops for ever (renewing
#: a refused token again and again, asking for the first page again) then fails its
#: test by name. pytest-timeout alone did not end such a test: its failure, raised in
#: the main thread, left a ``with ThreadPoolExecutor`` block whose exit then waited for
#: the looping thread, for ever.
RUN_DEADLINE_SECONDS = 30.0


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, T]], T]:
    """``asyncio.run`` in a thread of its own, whatever loop the main thread has; the
    coroutine is cancelled, and the test fails, after ``RUN_DEADLINE_SECONDS``."""

    def run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
        async def bounded() -> T:
            try:
                return await asyncio.wait_for(coroutine, RUN_DEADLINE_SECONDS)
            except TimeoutError as exc:  # its cause shows where the coroutine was
                raise AssertionError(
                    f"the coroutine was still running after {RUN_DEADLINE_SECONDS:g} s "
                    "(a request or paging loop that never ends?)") from exc

        # A daemon thread, not a pool: nothing waits for it if the test fails anyway.
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        threading.Thread(target=lambda: _settle(done, bounded), daemon=True,
                         name="webex-test-loop").start()
        return done.result()

    return run_in_thread


def _settle(future: concurrent.futures.Future[T],
            main: Callable[[], Coroutine[Any, Any, T]]) -> None:
    try:
        future.set_result(asyncio.run(main()))
    except BaseException as exc:
        future.set_exception(exc)
