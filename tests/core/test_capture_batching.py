"""When the capture pump stores lines: at once while the pipeline is idle, in batches
under load (one run's many lines, or many runs' few), and with nothing lost, repeated or
reordered when it switches between the two."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

import pytest

from flask_realtime.core.capture import CapturePump, RunCapture
from flask_realtime.core.capture.pump import BUSY_RUNS_PER_INTERVAL
from flask_realtime.core.output import Line
from flask_realtime.core.ports import OutputBatch, StoreUnavailableError
from tests.conftest import wait_for
from tests.core.conftest import Sink


def printing(pump: CapturePump, capture: RunCapture) -> Callable[[Callable[[], object]], None]:
    """Run a function with the calling thread attached to ``capture``."""
    def run(body: Callable[[], object]) -> None:
        previous = pump.attach(capture)
        try:
            body()
        finally:
            pump.detach(previous)
    return run


def flood_until_fast(pump: CapturePump, capture: RunCapture) -> int:
    """Print thousands of lines per batch until the pump puts the run on its fast path;
    returns how many."""
    printed = [0]

    def burst() -> bool:
        for _ in range(5000):
            print("flood")
        printed[0] += 5000
        return capture.fast

    printing(pump, capture)(lambda: wait_for(burst))
    return printed[0]


def test_a_quiet_run_has_each_line_stored_without_waiting_for_the_batch_interval(
        slow_pump: CapturePump, sink: Sink) -> None:
    capture = slow_pump.open("r1")
    run = printing(slow_pump, capture)
    for i in range(5):  # each one would wait out the minute if the pump batched it
        run(lambda i=i: print(f"line {i}"))
        wait_for(lambda i=i: sink.texts() == [f"line {n}" for n in range(i + 1)])
    assert sink.appends == 5
    slow_pump.close(capture)


def test_a_flood_alone_writes_through_the_fast_path_and_keeps_every_line_in_order(
        sink: Sink) -> None:
    pump = CapturePump(sink)
    capture = pump.open("r1")
    flooded = flood_until_fast(pump, capture)

    def mixed() -> None:
        assert sys.stdout.write("counted\n") == 8  # the fast path counts characters too
        for i in range(3):
            print(f"out {i}")
            print(f"err {i}", file=sys.stderr)
            logging.getLogger("jobs.mixed").warning("log %d", i)

    printing(pump, capture)(mixed)
    assert pump.close(capture)
    pump.shutdown()
    texts = sink.texts()
    assert texts[:flooded] == ["flood"] * flooded
    assert texts[flooded:] == [
        "counted", "out 0", "err 0", "WARNING jobs.mixed: log 0", "out 1", "err 1",
        "WARNING jobs.mixed: log 1", "out 2", "err 2", "WARNING jobs.mixed: log 2"]


def test_when_the_flood_ends_the_run_wakes_the_pump_again(sink: Sink) -> None:
    """Off the fast path, a write wakes the pump again (on it, none does); a ``write``
    looked up during the flood still writes to the run, in order."""
    pump = CapturePump(sink)
    capture = pump.open("r1")
    run = printing(pump, capture)
    flood_until_fast(pump, capture)
    cached: list[Callable[[str], int]] = []
    run(lambda: cached.append(sys.stdout.write))
    wait_for(lambda: not capture.fast)  # nothing printed for a batch: quiet again
    wait_for(lambda: not capture.pending())
    stored = len(sink.texts())
    wakes: list[str] = []
    wake = capture.wake
    capture.wake = lambda: (wakes.append("woken"), wake())[-1]
    run(lambda: print("after the flood"))
    assert wakes  # the pump was woken (by the text, and maybe by the newline too)
    wait_for(lambda: sink.texts()[stored:] == ["after the flood"])
    run(lambda: cached[0]("through the old write\n"))
    assert pump.close(capture)
    pump.shutdown()
    assert sink.texts()[stored:] == ["after the flood", "through the old write"]


def test_a_thread_that_leaves_a_flooding_run_prints_to_the_server_again(
        sink: Sink, capsys: pytest.CaptureFixture[str]) -> None:
    pump = CapturePump(sink)
    capture = pump.open("r1")
    flood_until_fast(pump, capture)  # the main thread was on the fast path, then left
    print("the server's own line")
    other = pump.open("r2")
    printing(pump, other)(lambda: print("second run"))
    assert pump.close(capture) and pump.close(other)
    pump.shutdown()
    assert "the server's own line" in capsys.readouterr().out
    assert "the server's own line" not in sink.texts()
    assert [t for _s, t, _e in sink.lines("r2")] == ["second run"]


def test_threads_printing_through_batches_and_switches_lose_and_repeat_nothing(
        sink: Sink) -> None:
    """Four threads of one run print at once while the pump drains, goes on the fast
    path and off it: every line arrives once, each thread's in its order. (Each line is
    one write: ``print`` makes two, and another thread's may come between them, as on
    any stream.)"""
    pump = CapturePump(sink)
    capture = pump.open("r1")
    count = 30_000

    def body(tag: str) -> None:
        for i in range(count):
            sys.stdout.write(f"{tag} {i}\n")
            if i % 5000 == 0:
                sys.stderr.write(f"{tag} note {i}\n")

    threads = [threading.Thread(target=printing(pump, capture), args=(lambda t=t: body(t),))
               for t in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pump.close(capture)
    pump.shutdown()
    for tag in "abcd":
        assert [t for t in sink.texts(stream="stdout") if t.startswith(f"{tag} ")] == [
            f"{tag} {i}" for i in range(count)]
        assert [t for t in sink.texts(stream="stderr") if t.startswith(f"{tag} ")] == [
            f"{tag} note {i}" for i in range(0, count, 5000)]


class RoundSink(Sink):
    """:class:`Sink` with the store's ``append_outputs`` as ``many``: records the runs of
    each call and when every call came. ``hold`` cleared, a single append waits for it
    (``held`` says one does); ``fail_many`` set, ``many`` stores and then fails, as a
    call whose reply was lost."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds: list[list[str]] = []  # the run ids of each ``many`` call
        self.calls: list[float] = []  # monotonic times of every call
        self.hold, self.held, self.fail_many = threading.Event(), threading.Event(), False
        self.hold.set()

    def __call__(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                 writer: str | None = None, offset: int = 0) -> int:
        self.calls.append(time.monotonic())
        self.held.set()
        self.hold.wait(30)
        return super().__call__(run_id, lines, epoch_ms, writer=writer, offset=offset)

    def many(self, batches: list[OutputBatch], epoch_ms: int) -> list[int]:
        self.calls.append(time.monotonic())
        self.rounds.append([run_id for run_id, *_ in batches])
        ends = self.store.append_outputs(batches, epoch_ms)
        if self.fail_many:
            raise StoreUnavailableError("the reply was lost")
        return ends


def test_the_lines_of_many_runs_found_in_one_round_are_stored_with_one_call() -> None:
    """While the pump stores one run's line, ten others print one each: its next round
    finds them all and stores them together (one transaction on SQLite), not with ten
    appends."""
    sink = RoundSink()
    pump = CapturePump(sink, batches=sink.many)
    first = pump.open("first")
    others = [pump.open(f"r{i}") for i in range(10)]
    sink.hold.clear()
    first.write("stdout", "first\n")
    wait_for(sink.held.is_set)  # the pump is in the store with it
    for capture in others:
        capture.write("stdout", f"{capture.run_id}\n")
    sink.hold.set()
    wait_for(lambda: all(sink.texts(c.run_id) == [c.run_id] for c in others))
    assert sink.rounds == [[c.run_id for c in others]]
    assert sink.appends == 1  # "first" alone
    for capture in [first, *others]:
        assert pump.close(capture)
    pump.shutdown()
    assert sink.texts("first") == ["first"]


def test_many_runs_writing_within_the_batch_interval_make_the_pump_coalesce() -> None:
    """Each of a few quiet runs has its line stored at once; once
    BUSY_RUNS_PER_INTERVAL runs wrote within one batch interval, the pipeline is busy
    and the next lines wait for the interval's round, stored there together."""
    interval = 1.0
    sink = RoundSink()
    pump = CapturePump(sink, interval=interval, batches=sink.many)
    captures = [pump.open(f"r{i}") for i in range(BUSY_RUNS_PER_INTERVAL + 1)]
    for capture in captures[:BUSY_RUNS_PER_INTERVAL]:  # one at a time: each alone
        capture.write("stdout", f"{capture.run_id} 1\n")
        wait_for(lambda c=capture: sink.texts(c.run_id) == [f"{c.run_id} 1"])
    assert sink.appends == BUSY_RUNS_PER_INTERVAL and not sink.rounds
    busy_since = sink.calls[-1]
    captures[-1].write("stdout", "last 1\n")
    captures[0].write("stdout", "r0 2\n")
    wait_for(lambda: sink.texts("r0") == ["r0 1", "r0 2"], timeout=10)
    assert sink.rounds == [[captures[0].run_id, captures[-1].run_id]]
    assert sink.calls[-1] - busy_since >= interval * 0.9  # it waited for the round
    for capture in captures:
        assert pump.close(capture)
    pump.shutdown()
    assert sink.texts(captures[-1].run_id) == ["last 1"]


def test_when_storing_a_round_at_once_fails_each_run_is_stored_on_its_own_once() -> None:
    """The call for the round failed after storing (its reply lost): each run's batch
    is sent again on its own, and the store skips what it holds; no line is lost or
    repeated, and later rounds go on."""
    sink = RoundSink()
    pump = CapturePump(sink, batches=sink.many)
    first = pump.open("first")
    others = [pump.open(f"r{i}") for i in range(5)]
    sink.fail_many = True
    sink.hold.clear()
    first.write("stdout", "first\n")
    wait_for(sink.held.is_set)
    for capture in others:
        capture.write("stdout", f"{capture.run_id} 1\n")
    sink.hold.set()
    wait_for(lambda: sink.appends == 1 + len(others))  # each again, on its own
    assert len(sink.rounds) == 1
    for capture in others:
        capture.write("stdout", f"{capture.run_id} 2\n")
    for capture in [first, *others]:
        assert pump.close(capture)
    pump.shutdown()
    for capture in others:
        assert sink.texts(capture.run_id) == [f"{capture.run_id} 1", f"{capture.run_id} 2"]
