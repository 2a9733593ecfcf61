"""A run service wired like the app's, without Flask: the core knows nothing of the web."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flask_realtime.core.capture import CapturePump
from flask_realtime.core.jobs import JobRegistry
from flask_realtime.core.runner import ThreadRunner
from flask_realtime.core.runs import Run
from flask_realtime.core.service import RunService
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for


@dataclass
class Core:
    registry: JobRegistry
    store: MemoryStore
    service: RunService

    def texts(self, run_id: str, stream: str | None = None) -> list[str]:
        piece = self.store.read_output(run_id, 0, max_lines=10**7, max_chars=10**9)
        return [text for s, text, _end in piece.lines if stream is None or s == stream]

    def finished(self, run_id: str, timeout: float = 10) -> Run:
        return wait_for(lambda: (r := self.store.get_run(run_id)) and r.state.finished and r,
                        timeout)


@pytest.fixture
def core() -> Iterator[Core]:
    registry = JobRegistry()
    store = MemoryStore()
    service = RunService(store, registry)
    service.runner = ThreadRunner(service, CapturePump(store.append_output), stop_grace=0.3)
    yield Core(registry, store, service)
