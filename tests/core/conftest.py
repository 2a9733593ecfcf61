"""The core as every process builds it (core/system.py ``build``), without Flask: the
core knows nothing of the web."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flask_realtime.core.capture import CapturePump
from flask_realtime.core.jobs import JobRegistry
from flask_realtime.core.output import Line
from flask_realtime.core.runs import Run
from flask_realtime.core.service import RunService
from flask_realtime.core.system import build
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
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=MemoryStore(), registry=JobRegistry())
    with system:
        yield Core(system.registry, system.store, system.service)


class Sink:
    """The embedded store's append, as a capture pump's sink, counting the appends."""

    def __init__(self) -> None:
        self.store = MemoryStore(retention_lines=10_000_000)
        self.appends = 0

    def __call__(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                 writer: str | None = None, offset: int = 0) -> int:
        self.appends += 1
        return self.store.append_output(run_id, lines, epoch_ms, writer=writer, offset=offset)

    def lines(self, run_id: str = "r1") -> list[Line]:
        return self.store.read_output(run_id, 0, max_lines=10**7, max_chars=10**10).lines

    def texts(self, run_id: str = "r1", stream: str | None = None) -> list[str]:
        return [text for s, text, _end in self.lines(run_id) if stream is None or s == stream]


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def slow_pump(sink: Sink) -> Iterator[CapturePump]:
    """A pump on :class:`Sink` whose batch interval is a minute: a line that waits for
    it is late."""
    pump = CapturePump(sink, interval=60.0)
    yield pump
    pump.shutdown()
