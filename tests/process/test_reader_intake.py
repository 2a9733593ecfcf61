"""The reader of a process run's pipes (core/isolation.py ``_Reader``): while the run
floods beside others it takes one slice per drain, and the job's process waits on its
full pipe meanwhile; otherwise it takes all there is."""

from __future__ import annotations

import os
import threading
import time

import pytest

from flask_realtime.core import isolation
from flask_realtime.core.capture import RunCapture
from flask_realtime.core.isolation import (
    MIN_SLICE_READ_BYTES,
    READ_BYTES,
    SLICE_LINE_BYTES,
    _Outcome,
    _read_size,
    _Reader,
)
from flask_realtime.core.output import STDOUT
from tests.conftest import wait_for

LINE = 61  # bytes of each line below, its newline included
TOTAL = 20_000


def start_flood() -> tuple[int, threading.Thread]:
    """A pipe with a writer thread that writes TOTAL numbered lines into it (blocking
    when it is full) and then closes it; the read end."""
    r, w = os.pipe()
    data = b"".join(f"{i:08d} {'x' * 51}\n".encode() for i in range(1, TOTAL + 1))

    def write() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
        os.close(w)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return r, writer


def pending_lines(capture: RunCapture) -> int:
    return capture.out.getvalue().count("\n")


@pytest.mark.parametrize("slice_", [250, 1000])
def test_a_bounded_reader_takes_one_slice_per_drain_and_holds_the_job_back(
        monkeypatch: pytest.MonkeyPatch, slice_: int) -> None:
    monkeypatch.setattr(isolation, "INTAKE_WAIT_SECONDS", 60.0)  # only a drain frees it
    capture = RunCapture("flood", lambda: None, 10_000)
    capture.intake = slice_
    r, writer = start_flood()
    reader = _Reader(capture, {r: STDOUT}, None, _Outcome())
    # The bound is checked before each read, and each read is sized to the rest of the
    # slice: at most a slice (at SLICE_LINE_BYTES a line) and one smallest read more,
    # not one of READ_BYTES (about 1,000 lines: four slices of 250).
    most = slice_ * SLICE_LINE_BYTES // LINE + MIN_SLICE_READ_BYTES // LINE + 2
    assert most < slice_ + READ_BYTES // LINE
    texts: list[str] = []
    drains = 0
    while reader.thread.is_alive():
        wait_for(lambda: capture.held or not reader.thread.is_alive())
        assert pending_lines(capture) <= most
        if drains == 0:  # 1.2 MB to write, one slice read: the writer waits on its pipe
            assert writer.is_alive()
        capture.held = False
        texts += [text for _s, text, _e in capture.drain(time.monotonic(), 0.1)]
        drains += 1
    reader.close(1)
    texts += [text for _s, text, _e in capture.drain(time.monotonic(), 0.1, force=True)]
    assert texts == [f"{i:08d} {'x' * 51}" for i in range(1, TOTAL + 1)]
    assert drains >= TOTAL // most


def test_an_unbounded_reader_takes_all_there_is_without_a_drain() -> None:
    capture = RunCapture("flood", lambda: None, 10_000)
    r, writer = start_flood()
    reader = _Reader(capture, {r: STDOUT}, None, _Outcome())
    wait_for(lambda: pending_lines(capture) == TOTAL)
    assert not capture.held and capture.drains == 0
    reader.close(10)
    writer.join(10)


def test_a_read_is_sized_to_the_rest_of_the_slice() -> None:
    assert _read_size(0, 0) == READ_BYTES  # unbounded
    assert _read_size(250, 0) == 250 * SLICE_LINE_BYTES
    assert _read_size(250, 200) == MIN_SLICE_READ_BYTES  # never tiny
    assert _read_size(250, 400) == MIN_SLICE_READ_BYTES  # past the bound: waits next
    assert _read_size(100_000, 0) == READ_BYTES  # never more than unbounded


def test_once_the_child_has_exited_the_rest_of_its_pipe_is_read_unbounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``close`` is called when the job's process has ended: what its pipe still holds
    is read at once, not one slice per drain until ``close``'s wait runs out and the
    rest is lost (here no drain ever comes)."""
    monkeypatch.setattr(isolation, "INTAKE_WAIT_SECONDS", 1.0)
    capture = RunCapture("flood", lambda: None, 10_000)
    capture.intake = 250
    r, writer = start_flood()
    reader = _Reader(capture, {r: STDOUT}, None, _Outcome())
    wait_for(lambda: capture.held)  # one slice read, the writer waits on its pipe
    assert writer.is_alive()
    reader.close(10)  # (the writer stands for the child's last writes)
    writer.join(10)
    texts = [text for _s, text, _e in capture.drain(time.monotonic(), 0.1, force=True)]
    assert texts == [f"{i:08d} {'x' * 51}" for i in range(1, TOTAL + 1)]


def test_a_line_cut_between_two_reads_is_stored_whole_however_long_the_reader_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A read ends where the pipe's bytes were cut, mostly within a line. The reader
    waits between two reads (for a drain while bounded; for the interpreter on a busy
    machine): here each wait is a drain that publishes partial lines at once. Every
    line the job printed whole is still one whole line (CI, under load: a flood's line
    came out as "0" and "0034611 xxx...")."""
    drained: list[tuple[str, str, str]] = []
    capture = RunCapture("flood", lambda: None, 10_000)

    def drain_instead(self: RunCapture, count: int, timeout: float) -> bool:
        drained.extend(self.drain(time.monotonic(), 0.0))  # the pump, as late as can be
        return True

    monkeypatch.setattr(RunCapture, "wait_drained", drain_instead)
    capture.intake = 1  # a drain between any two reads
    r, _writer = start_flood()
    reader = _Reader(capture, {r: STDOUT}, None, _Outcome())
    reader.thread.join(30)
    assert not reader.thread.is_alive()
    drained.extend(capture.drain(time.monotonic(), 0.0, force=True))
    assert [text for _s, text, _e in drained] == [
        f"{i:08d} {'x' * 51}" for i in range(1, TOTAL + 1)]
    assert {end for _s, _t, end in drained} == {"\n"}
    reader.close(1)


def test_an_unfinished_line_is_written_once_its_pipe_is_quiet() -> None:
    """A prompt, or a progress bar: no newline comes, and the text is written as it is
    (``TAIL_QUIET_SECONDS``), for the pump to publish as a partial line."""
    capture = RunCapture("prompt", lambda: None, 10_000)
    r, w = os.pipe()
    reader = _Reader(capture, {r: STDOUT}, None, _Outcome())
    os.write(w, b"line one\nYour name: ")
    wait_for(lambda: capture.current_line() == "Your name: ")
    os.write(w, b"Ada\n")
    os.close(w)
    reader.thread.join(10)
    texts = [(text, end) for _s, text, end in capture.drain(time.monotonic(), 0.0, force=True)]
    assert texts == [("line one", "\n"), ("Your name: Ada", "\n")]
    reader.close(1)
