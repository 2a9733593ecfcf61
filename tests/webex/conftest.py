"""A real simulator on a free port, and helpers to run coroutines against it."""

from __future__ import annotations

import asyncio
import concurrent.futures
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


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, T]], T]:
    """``asyncio.run`` in a thread of its own, whatever loop the main thread has."""

    def run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    return run_in_thread
