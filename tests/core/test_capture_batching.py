"""When the capture pump stores lines: at once while the pipeline is idle, in batches
under load, and with nothing lost, repeated or reordered when it switches between the two."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

import pytest

from flask_realtime.core.capture import CapturePump, RunCapture
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
