"""The store goes away while a run prints: its lines wait (bounded) and none is lost."""

from __future__ import annotations

import threading

from flask_realtime.core.capture import CapturePump
from flask_realtime.core.output import Line
from flask_realtime.core.ports import StoreUnavailableError
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for


class FlakySink:
    """The embedded store's append, refusing lines while ``down`` is set, or storing
    them and then failing, as when the reply is lost, while ``lose_replies`` is set."""

    def __init__(self) -> None:
        self.store = MemoryStore(retention_lines=1_000_000)
        self.down = threading.Event()
        self.lose_replies = threading.Event()
        self.refused = 0

    def __call__(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                 writer: str | None = None, offset: int = 0) -> int:
        if self.down.is_set():
            self.refused += 1
            raise StoreUnavailableError("away")
        end = self.store.append_output(run_id, lines, epoch_ms, writer=writer, offset=offset)
        if self.lose_replies.is_set():
            self.refused += 1
            raise StoreUnavailableError("the reply was lost")
        return end

    @property
    def lines(self) -> list[Line]:
        return self.store.read_output("r1", 0, max_lines=10**6, max_chars=10**9).lines

    def texts(self) -> list[str]:
        return [text for _stream, text, _end in self.lines]


def test_lines_printed_while_the_store_is_away_are_stored_when_it_is_back() -> None:
    sink = FlakySink()
    pump = CapturePump(sink, max_unsent=1000)
    capture = pump.open("r1")
    capture.write("stdout", "before\n")
    wait_for(lambda: sink.texts() == ["before"])
    sink.down.set()
    for i in range(300):
        capture.write("stdout", f"{i}\n")
    wait_for(lambda: sink.refused >= 1)  # the pump tried, and kept the lines
    sink.down.clear()
    wait_for(lambda: len(sink.lines) == 301, timeout=5)  # retried without a close
    assert sink.texts() == ["before", *map(str, range(300))]
    assert pump.close(capture)


def test_a_batch_stored_before_its_reply_was_lost_is_not_stored_again() -> None:
    """The pump sends a refused batch again with the lines printed since; when the
    store had appended it after all, those lines must not appear twice."""
    sink = FlakySink()
    pump = CapturePump(sink)
    capture = pump.open("r1")
    sink.lose_replies.set()
    for i in range(100):
        capture.write("stdout", f"{i}\n")
    wait_for(lambda: sink.refused >= 1)
    for i in range(100, 200):
        capture.write("stdout", f"{i}\n")
    sink.lose_replies.clear()
    assert pump.close(capture)
    assert sink.texts() == [str(i) for i in range(200)]


def test_an_overflowing_buffer_keeps_the_newest_lines_and_says_how_many_were_lost() -> None:
    sink = FlakySink()
    pump = CapturePump(sink, max_unsent=50)
    capture = pump.open("r1")
    sink.down.set()
    for i in range(120):
        capture.write("stdout", f"{i}\n")
    wait_for(lambda: sink.refused >= 1)
    sink.down.clear()
    assert pump.close(capture)
    texts = sink.texts()
    assert texts[0] == ("[flask-realtime: 70 lines were lost while the output store was "
                        "unavailable]")
    assert sink.lines[0][0] == "system"
    assert texts[1:] == [str(i) for i in range(70, 120)]


def test_close_waits_for_the_store_and_then_reports_what_it_could_not_store() -> None:
    sink = FlakySink()
    pump = CapturePump(sink)
    capture = pump.open("r1")
    sink.down.set()
    capture.write("stdout", "kept\n")
    assert not pump.close(capture, wait=0.6)  # bounded: a run's end is never stuck forever
    assert sink.lines == []
