"""While a run floods and other runs share the process, the pump serves the others
between the flood's slices: their lines are not stored behind the flood's batch
interval, and a flood (a process run's reader, a thread run's printing threads) is
held to one slice per drain cycle, from the moment another run opens."""

from __future__ import annotations

import threading

import pytest

from flask_realtime.core.capture import CapturePump, RunCapture
from flask_realtime.core.capture.pump import (
    FLOOD_ALONE_CHARS_PER_DRAIN,
    FLOOD_ALONE_LINES_PER_DRAIN,
    FLOOD_LINES_PER_DRAIN,
    FLOOD_OVERRUN_LINES,
    SHARED_FLOOD_CHARS_PER_DRAIN,
    SHARED_FLOOD_LINES_PER_DRAIN,
    _Outbox,
)
from flask_realtime.core.output import STDOUT
from tests.conftest import wait_for
from tests.core.conftest import Sink


def flood_lines(first: int, count: int) -> str:
    return "".join(f"{i:08d} {'x' * 50}\n" for i in range(first, first + count))


def test_a_quiet_run_is_stored_between_the_slices_of_a_flood(
        slow_pump: CapturePump, sink: Sink) -> None:
    quiet, flood = slow_pump.open("quiet"), slow_pump.open("flood")
    flood.write(STDOUT, flood_lines(1, 5000))  # one slice: the pump now coalesces
    wait_for(lambda: flood.intake == SHARED_FLOOD_LINES_PER_DRAIN)  # seen flooding, shared
    assert len(sink.texts("flood")) == 5000
    flood.write(STDOUT, flood_lines(5001, 5000))  # waits for the minute's round
    for i in range(3):
        quiet.write(STDOUT, f"quiet {i}\n")
        wait_for(lambda i=i: sink.texts("quiet") == [f"quiet {n}" for n in range(i + 1)])
    assert len(sink.texts("flood")) == 5000  # the flood's second slice still waits
    assert slow_pump.close(flood) and slow_pump.close(quiet)
    assert sink.texts("flood") == [f"{i:08d} {'x' * 50}" for i in range(1, 10_001)]


def test_a_flood_is_held_to_a_small_slice_per_drain_while_others_share_the_process(
        sink: Sink) -> None:
    """A process run's reader is held to one slice (``intake``) per drain while the run
    floods beside another; alone, to a slice forty times larger, which keeps a round
    short without holding the flood back."""
    pump = CapturePump(sink)
    quiet, flood = pump.open("quiet"), pump.open("flood")
    written = [0]

    def flood_until(condition: object) -> None:
        def burst() -> bool:
            flood.write(STDOUT, flood_lines(written[0] + 1, 2000))
            written[0] += 2000
            return bool(condition())  # type: ignore[operator]
        wait_for(burst)

    flood_until(lambda: flood.intake == SHARED_FLOOD_LINES_PER_DRAIN)
    # Shared, a slice is a quarter of what makes a flood: this process handles a
    # quarter of a shared flood's lines a round, not all it would make.
    assert SHARED_FLOOD_LINES_PER_DRAIN * 4 <= FLOOD_LINES_PER_DRAIN
    assert quiet.intake == FLOOD_ALONE_LINES_PER_DRAIN  # far more than it writes
    assert pump.close(quiet)
    flood_until(lambda: flood.intake == FLOOD_ALONE_LINES_PER_DRAIN)  # alone
    assert FLOOD_ALONE_LINES_PER_DRAIN >= 40 * SHARED_FLOOD_LINES_PER_DRAIN
    assert pump.close(flood)
    pump.shutdown()
    assert sink.texts("flood") == [f"{i:08d} {'x' * 50}" for i in range(1, written[0] + 1)]


def test_a_run_floods_by_its_lines_per_round_or_while_its_reader_is_held(
        sink: Sink) -> None:
    """Flooding is ``FLOOD_LINES_PER_DRAIN`` lines between two rounds, the drains
    between rounds (quiet runs served early) counted with the round's; and a reader
    held at its bound keeps the run flooding, whatever the count, else the bound
    would come and go with each drain."""
    pump = CapturePump(sink, interval=0.01)
    outbox = _Outbox(RunCapture("r", lambda: None, 1000))
    capture = outbox.capture
    pump._note(outbox, 600, shared=True, round_=False)  # between rounds: not yet
    assert not outbox.flooding and capture.intake == 0  # as made: _note left it
    pump._note(outbox, 500, shared=True, round_=False)  # 1,100 since the round
    assert outbox.flooding and capture.intake == SHARED_FLOOD_LINES_PER_DRAIN
    assert capture.give_way == pump.give_way
    pump._note(outbox, 0, shared=True)  # the round counts them: still flooding
    assert outbox.flooding
    pump._note(outbox, 900, shared=True)  # a round with fewer: quiet again
    assert not outbox.flooding and capture.give_way == 0
    assert capture.intake == FLOOD_ALONE_LINES_PER_DRAIN
    capture.held = True  # the reader waited for this drain
    pump._note(outbox, 5, shared=True)
    assert outbox.flooding and capture.intake == SHARED_FLOOD_LINES_PER_DRAIN
    assert not capture.held  # taken: the next drain asks again
    pump._note(outbox, 5, shared=True)
    assert not outbox.flooding and capture.intake == FLOOD_ALONE_LINES_PER_DRAIN
    pump._note(outbox, 5000, shared=False)  # alone: flooding, no pause, a large slice
    assert outbox.flooding and capture.give_way == 0
    assert capture.intake == FLOOD_ALONE_LINES_PER_DRAIN
    assert capture.fast and capture._hold[0] == 0
    capture.held = True  # alone and held at its bound: the pump does not keep up
    pump._note(outbox, 5, shared=False)
    assert outbox.flooding and not capture.fast
    assert capture._hold[0] == FLOOD_ALONE_CHARS_PER_DRAIN


def test_a_capture_counts_its_drains_and_wakes_who_waits_for_one() -> None:
    capture = RunCapture("r", lambda: None, 1000)
    assert not capture.wait_drained(capture.drains, 0.01)
    count = capture.drains
    capture.drain(0.0, 0.1)
    assert capture.drains == count + 1 and capture.wait_drained(count, 0)


def test_a_process_runs_reader_is_bounded_from_the_moment_its_run_opens(
        sink: Sink) -> None:
    """Before any round has seen what it writes, a run's reader may write
    ``FLOOD_ALONE_LINES_PER_DRAIN`` lines per drain: a pump busy with a long round
    does not let a new flood in unbounded meanwhile. ``give_way`` 0 turns it off."""
    pump, unbounded = CapturePump(sink), CapturePump(sink, give_way=0)
    assert pump.open("r").intake == FLOOD_ALONE_LINES_PER_DRAIN
    assert unbounded.open("r").intake == 0
    pump.shutdown()
    unbounded.shutdown()


def test_a_thread_runs_printing_waits_for_a_drain_once_it_has_written_its_slice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``hold_after``: a thread of the run that has more than its share of stdout
    waiting for the pump waits for the next drain, as a process run's reader waits with
    its slice; every line still arrives once, in order."""
    monkeypatch.setattr("flask_realtime.core.capture.buffer.HOLD_SECONDS", 60.0)
    capture = RunCapture("r", lambda: None, 1000)
    capture.hold_after(25)  # two lines of 10 characters, and the write that passes it
    writes = [0]

    def printing() -> None:
        for i in range(10):
            capture.write_stdout(f"line {i:03d}\n")
            writes[0] += 1

    printer = threading.Thread(target=printing, daemon=True)
    printer.start()
    lines: list[str] = []
    for expected_writes in (2, 5, 8):  # the third write of each slice waits in it
        wait_for(lambda: capture.held)
        assert writes[0] == expected_writes
        capture.held = False
        lines += [text for _, text, _ in capture.drain(0.0, 0.1)]
    printer.join(10)
    assert not printer.is_alive()
    lines += [text for _, text, _ in capture.drain(0.0, 0.1)]
    assert lines == [f"line {i:03d}" for i in range(10)]


def test_a_writer_waits_no_longer_than_hold_seconds_for_a_pump_that_does_not_come(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("flask_realtime.core.capture.buffer.HOLD_SECONDS", 0.01)
    capture = RunCapture("r", lambda: None, 1000)
    capture.hold_after(5)
    for i in range(20):  # nobody drains: each write past the bound waits 10 ms, no more
        capture.write_stdout(f"line {i}\n")
    assert capture.held
    capture.hold_after(0)  # alone again, or closed: never waits
    capture.held = False
    capture.write_stdout("free\n")
    assert not capture.held
    assert len(capture.drain(0.0, 0.1)) == 21


def test_a_flood_alone_is_bounded_when_another_run_opens_not_a_round_later(
        sink: Sink) -> None:
    """A thread run flooding alone prints through the fast path, unbounded: the next
    run's open switches it to the shared bound at once, as the next round would."""
    pump = CapturePump(sink, interval=60)  # no round comes within the test
    flood = pump.open("flood")
    with pump._lock:
        pump._outboxes[flood].flooding = True
    flood.set_fast(True)
    assert flood.give_way == 0 and flood._hold[0] == 0
    pump.open("other")
    assert not flood.fast
    assert flood.give_way == pump.give_way
    assert flood.intake == SHARED_FLOOD_LINES_PER_DRAIN
    assert flood._hold[0] == SHARED_FLOOD_CHARS_PER_DRAIN
    assert pump.close(flood)
    assert flood._hold[0] == 0  # closed: nobody waits for a drain that will not come
    pump.shutdown()


def test_a_thread_flood_beside_another_run_is_held_to_its_slice_and_freed_alone(
        sink: Sink) -> None:
    """The pump's rounds set the bound: a thread run flooding beside another is held
    to ``SHARED_FLOOD_CHARS_PER_DRAIN`` characters a drain cycle; alone, not at all."""
    pump = CapturePump(sink, interval=0.01)
    outbox = _Outbox(RunCapture("r", lambda: None, 1000))
    pump._note(outbox, 5000, shared=True)
    assert outbox.capture._hold[0] == SHARED_FLOOD_CHARS_PER_DRAIN
    pump._note(outbox, 5000, shared=False)
    assert outbox.capture._hold[0] == 0
    unbounded = CapturePump(sink, give_way=0)  # fairness off: no bound either
    other = _Outbox(RunCapture("s", lambda: None, 1000))
    unbounded._note(other, 5000, shared=True)
    assert other.capture._hold[0] == 0


def test_a_thread_flood_alone_that_outruns_the_pump_is_bounded_until_it_keeps_up(
        sink: Sink) -> None:
    """Alone, a flood prints on the fast path, unbounded, while the pump keeps up. A
    round of more than ``FLOOD_OVERRUN_LINES`` says it does not (each round held what was
    printed while the last was stored, and grew): the run is then held to
    ``FLOOD_ALONE_CHARS_PER_DRAIN`` a drain cycle, for as long as its printing waits at
    that bound, and back on the fast path after a round in which it did not."""
    pump = CapturePump(sink, interval=0.01)
    outbox = _Outbox(RunCapture("r", lambda: None, 1000))
    capture = outbox.capture
    pump._note(outbox, FLOOD_OVERRUN_LINES, shared=False)  # large, but kept up with
    assert capture.fast and capture._hold[0] == 0
    pump._note(outbox, FLOOD_OVERRUN_LINES + 1, shared=False)
    assert not capture.fast and capture._hold[0] == FLOOD_ALONE_CHARS_PER_DRAIN
    assert capture.give_way == 0  # nobody to give way to
    capture.held = True  # its printing waited at the bound: still more than the pump
    pump._note(outbox, 10_000, shared=False)
    assert not capture.fast and capture._hold[0] == FLOOD_ALONE_CHARS_PER_DRAIN
    pump._note(outbox, 10_000, shared=False)  # a round it did not wait in
    assert capture.fast and capture._hold[0] == 0
    unbounded = CapturePump(sink, give_way=0)  # fairness off: never bounded
    other = _Outbox(RunCapture("s", lambda: None, 1000))
    unbounded._note(other, FLOOD_OVERRUN_LINES + 1, shared=False)
    assert other.capture.fast and other.capture._hold[0] == 0
