"""The core with the isolating runner (core/isolation.py) on the process tests' jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flask_realtime.core.system import build, isolating_runner
from flask_realtime.store.memory import MemoryStore
from tests.core.conftest import Core

from . import jobs_for_process


@pytest.fixture
def core() -> Iterator[Core]:
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=MemoryStore(),
                   registry=jobs_for_process.registry, runner=isolating_runner)
    with system:
        yield Core(system.registry, system.store, system.service)
