"""Capture: route what a run's threads print to that run, and nothing else.

``sys.stdout`` and ``sys.stderr`` are replaced once per process by proxies that look up
the writing thread's :class:`RunCapture`; threads that belong to no run write through
to the real streams. A thread belongs to a run when the runner put it there, when it
was started (``threading.Thread``) by a thread of the run, or while it executes a work
item submitted to a ``concurrent.futures.ThreadPoolExecutor`` by a thread of the run
(this covers ``asyncio.to_thread`` and ``loop.run_in_executor``). Logging records made
in such threads go to the run too.

The write path is the hot path (``print`` makes two writes per line): it appends to a
list, takes no lock, and wakes the pump only when the list was empty. Lines are
assembled in bulk by :class:`CapturePump`, which also decides batch timing: a quiet run's
line is drained at once, a busy run's output at most every ``interval`` seconds.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import gc
import io
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .output import (
    DEFAULT_MAX_LINE_CHARS,
    DEFAULT_PARTIAL_FLUSH_SECONDS,
    LOG,
    STDERR,
    STDOUT,
    SYSTEM,
    Line,
    LineAssembler,
)


class _Local(threading.local):
    capture: RunCapture | None = None  # a class default: no getattr fallback per write


_local = _Local()

#: ``sink(run_id, lines, epoch_ms)``: where assembled lines go (the store's output log).
LineSink = Callable[[str, list[Line], int], object]

#: Upper bound on how long a captured line waits for the pump while its run is open.
FLUSH_WINDOW_SECONDS = 0.02
#: While the store is unavailable, how often storing is tried again.
RETRY_SECONDS = 0.5
#: Lines per run kept while the store is unavailable; older ones are dropped and counted.
DEFAULT_MAX_UNSENT = 100_000

log = logging.getLogger(__name__)


def current_capture() -> RunCapture | None:
    return _local.capture


def _set_capture(capture: RunCapture | None) -> RunCapture | None:
    previous = _local.capture
    _local.capture = capture
    return previous


class RunCapture:
    """The raw writes of one run, in order, waiting for the pump.

    ``chunks`` holds ``str`` for stdout (the common case, kept cheap) and
    ``(stream, str)`` tuples for everything else.
    """

    __slots__ = ("_decoders", "_deliver_lock", "_lock", "assemblers", "chunks", "closed",
                 "lost", "retry_at", "run_id", "unsent", "unsent_since", "wake")

    def __init__(self, run_id: str, wake: Callable[[], None], max_line_chars: int) -> None:
        self.run_id = run_id
        self.chunks: list[Any] = []
        self.wake = wake
        self.closed = False
        self.assemblers = {s: LineAssembler(s, max_line_chars) for s in (STDOUT, STDERR, LOG)}
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        # Lines the store refused (it was unavailable), oldest first, and how many of
        # them had to be dropped to stay within the bound.
        self.unsent: list[Line] = []
        self.lost = 0
        self.retry_at = 0.0
        self.unsent_since = 0.0

    def keep_unsent(self, lines: list[Line], bound: int) -> None:
        self.unsent.extend(lines)
        excess = len(self.unsent) - bound
        if excess > 0:
            del self.unsent[:excess]
            self.lost += excess

    def write(self, stream: str, text: str) -> None:
        chunks = self.chunks
        if not chunks:
            self.wake()
        chunks.append(text if stream == STDOUT else (stream, text))

    def write_bytes(self, stream: str, data: bytes) -> None:
        decoder = self._decoders.get(stream)
        if decoder is None:
            decoder = self._decoders[stream] = codecs.getincrementaldecoder("utf-8")("replace")
        self.write(stream, decoder.decode(data))

    def system(self, text: str) -> None:
        """A line from Flask-Realtime itself (stop requested, result not storable, …)."""
        self.write(SYSTEM, text)

    def drain(self, now: float, partial_delay: float, force: bool = False) -> list[Line]:
        """Assemble everything written so far into lines. Safe to call from any thread.

        The garbage collector is paused meanwhile: assembling makes one tuple per line,
        which set off a young-generation collection every 700 of them, each one walking
        the lines made so far; deferring them to after the drain halved its cost.
        """
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            return self._drain(now, partial_delay, force)
        finally:
            if collecting:
                gc.enable()

    def _drain(self, now: float, partial_delay: float, force: bool) -> list[Line]:
        with self._lock:
            chunks = self.chunks
            n = len(chunks)
            taken = chunks[:n]
            del chunks[:n]  # appends made meanwhile stay in the list: nothing is lost
            out: list[Line] = []
            stdout = self.assemblers[STDOUT]
            try:
                only_stdout = "".join(taken)  # the common case, without a loop per write
            except TypeError:
                only_stdout = None
            if only_stdout is not None:
                if only_stdout:
                    stdout.feed(only_stdout, now, out)
                taken = []
            run: list[str] = []
            for chunk in taken:
                if chunk.__class__ is str:
                    run.append(chunk)
                    continue
                if run:
                    stdout.feed("".join(run), now, out)
                    run = []
                stream, text = chunk
                if stream == SYSTEM:
                    for assembler in self.assemblers.values():
                        assembler.flush_partial(now, 0, out, force=True)
                    out.extend((SYSTEM, t, "\n") for t in text.split("\n"))
                else:
                    self.assemblers[stream].feed(text, now, out)
            if run:
                stdout.feed("".join(run), now, out)
            for assembler in self.assemblers.values():
                assembler.flush_partial(now, partial_delay, out, force=force)
            return out



def _as_text(s: object) -> str:
    """What ``write`` accepts besides exact ``str``: str subclasses, as plain str."""
    if not isinstance(s, str):
        raise TypeError(f"write() argument must be str, not {type(s).__name__}")
    return str(s)


class _StreamProxy(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr: run threads write to their run."""

    def __init__(self, real: Any, stream: str) -> None:
        self._real = real
        self._stream = stream
        self.buffer = _BufferProxy(self)

    def write(self, s: str) -> int:
        capture = _local.capture
        if capture is None:
            return self._real.write(s)
        if s.__class__ is not str:
            s = _as_text(s)
        capture.write(self._stream, s)
        return len(s)

    def flush(self) -> None:
        if _local.capture is None:
            self._real.flush()

    def isatty(self) -> bool:
        return False if _local.capture is not None else self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return "strict"

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _StdoutProxy(_StreamProxy):
    """sys.stdout: the hot path (``print`` writes twice per line), kept to a minimum."""

    def write(self, s: str) -> int:
        capture = _local.capture
        if capture is None:
            return self._real.write(s)
        if s.__class__ is not str:
            s = _as_text(s)
        chunks = capture.chunks
        if not chunks:
            capture.wake()
        chunks.append(s)
        return len(s)


class _BufferProxy:
    """``sys.stdout.buffer`` for run threads: bytes are decoded, bad bytes become U+FFFD."""

    def __init__(self, owner: _StreamProxy) -> None:
        self._owner = owner

    def write(self, data: bytes) -> int:
        capture = _local.capture
        if capture is None:
            return self._owner._real.buffer.write(data)
        capture.write_bytes(self._owner._stream, bytes(data))
        return len(data)

    def flush(self) -> None:
        if _local.capture is None:
            self._owner._real.buffer.flush()


class _RunLogHandler(logging.Handler):
    """Sends records made in a run's threads to that run's output."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = _local.capture
        if capture is None:
            return
        try:
            capture.write(LOG, self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _NotFromRuns(logging.Filter):
    """Keeps a run's log records out of the server's own log handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _local.capture is None


_installed = False
_install_lock = threading.Lock()


def install(log_level: int = logging.INFO) -> None:
    """Put the proxies and hooks in place; called again at each run start. Idempotent."""
    global _installed
    with _install_lock:
        # Whoever replaced sys.stdout since (a test runner, redirect_stdout) is wrapped too.
        if not isinstance(sys.stdout, _StreamProxy):
            sys.stdout = _StdoutProxy(sys.stdout, STDOUT)
        if not isinstance(sys.stderr, _StreamProxy):
            sys.stderr = _StreamProxy(sys.stderr, STDERR)
        if _installed:
            return
        _installed = True
        _patch_threads()
        root = logging.getLogger()
        for handler in root.handlers:
            handler.addFilter(_NotFromRuns())
        if not root.handlers:
            # Adding our handler would silence logging's last-resort output: keep its effect.
            fallback = logging.StreamHandler(sys.__stderr__)
            fallback.setLevel(logging.WARNING)
            fallback.addFilter(_NotFromRuns())
            root.addHandler(fallback)
        run_handler = _RunLogHandler(log_level)
        run_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(run_handler)
        if root.level > log_level:
            root.setLevel(log_level)


def _patch_threads() -> None:
    original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        capture = current_capture()
        if capture is not None:
            run = self.run

            def run_in_capture() -> None:
                _set_capture(capture)
                try:
                    run()
                finally:
                    _set_capture(None)

            self.run = run_in_capture  # type: ignore[method-assign]
        original_start(self)

    original_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit(
        self: concurrent.futures.ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any,
        **kwargs: Any,
    ) -> concurrent.futures.Future[Any]:
        capture = current_capture()

        def call_in_capture() -> Any:
            previous = _set_capture(capture)  # None too: a shared pool must not leak a run
            try:
                return fn(*args, **kwargs)
            finally:
                _set_capture(previous)

        return original_submit(self, call_in_capture)

    threading.Thread.start = start  # type: ignore[method-assign]
    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]


class CapturePump:
    """One thread per process that turns captured writes into stored lines.

    Batching: when a run has been quiet, its first write wakes the pump at once (low
    latency); under load the pump drains at most every ``interval`` seconds so each
    batch is large and the store and the sockets see few, big appends.
    """

    def __init__(
        self, sink: LineSink, *, interval: float = 0.01,
        partial_delay: float = DEFAULT_PARTIAL_FLUSH_SECONDS,
        max_line_chars: int = DEFAULT_MAX_LINE_CHARS, max_unsent: int = DEFAULT_MAX_UNSENT,
    ) -> None:
        self.sink = sink
        self.max_unsent = max_unsent
        self.interval = interval
        self.partial_delay = partial_delay
        self.max_line_chars = max_line_chars
        self._captures: dict[str, RunCapture] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closing = False

    def open(self, run_id: str) -> RunCapture:
        install()
        capture = RunCapture(run_id, self._wake.set, self.max_line_chars)
        with self._lock:
            self._captures[run_id] = capture
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="flask-realtime-capture", daemon=True)
                self._thread.start()
        return capture

    def close(self, capture: RunCapture, wait: float = 120.0) -> bool:
        """Store everything the run wrote, partial lines included; then forget it.

        If the store is unavailable, keeps trying for ``wait`` seconds (the run is not
        seen to end before its output is stored); False if lines were still unsent.
        """
        with self._lock:
            self._captures.pop(capture.run_id, None)
        capture.closed = True
        deadline = time.monotonic() + wait
        with capture._deliver_lock:
            self._deliver(capture, time.monotonic(), force=True)
            while capture.unsent and time.monotonic() < deadline:
                time.sleep(RETRY_SECONDS)
                self._deliver(capture, time.monotonic(), force=True)
        return not capture.unsent

    def capture_of(self, run_id: str) -> RunCapture | None:
        with self._lock:
            return self._captures.get(run_id)

    def attach(self, capture: RunCapture) -> RunCapture | None:
        """Make the calling thread part of ``capture``'s run; returns what it was before."""
        return _set_capture(capture)

    def detach(self, previous: RunCapture | None = None) -> None:
        _set_capture(previous)

    def _deliver(self, capture: RunCapture, now: float, force: bool = False) -> None:
        """Drain and store; lines the store refuses wait (bounded) for the next try."""
        lines = capture.drain(now, self.partial_delay, force=force)
        if capture.unsent:
            if now < capture.retry_at and not force:
                capture.keep_unsent(lines, self.max_unsent)
                return
            lines = capture.unsent + lines
            capture.unsent = []
        if lines:
            batch = lines
            if capture.lost:  # the lost lines came before every kept one: say so first
                batch = [(SYSTEM, f"[flask-realtime: {capture.lost} lines were lost while "
                                  "the output store was unavailable]", "\n"), *lines]
            try:
                self.sink(capture.run_id, batch, int(time.time() * 1000))
            except Exception as exc:
                if not capture.unsent_since:
                    log.warning("could not store output of run %s (%s): keeping up to %d "
                                "lines until the store is back", capture.run_id, exc,
                                self.max_unsent)
                    capture.unsent_since = now
                capture.retry_at = now + RETRY_SECONDS
                capture.keep_unsent(lines, self.max_unsent)  # the count of lost ones grows
            else:
                if capture.unsent_since:
                    log.info("output of run %s stored again", capture.run_id)
                capture.unsent_since = 0.0
                capture.lost = 0

    def _loop(self) -> None:
        last = 0.0
        while not self._closing:
            with self._lock:
                captures = list(self._captures.values())
            # The writer's lock-free "wake if the list was empty" can lose a wake-up
            # against a drain in progress, so open runs are also drained on a timer
            # (FLUSH_WINDOW_SECONDS: the longest a line waits before it is stored).
            self._wake.wait(min(self.partial_delay, FLUSH_WINDOW_SECONDS) if captures else 1.0)
            pause = self.interval - (time.monotonic() - last)
            if pause > 0:
                time.sleep(pause)  # rate limit under load; a quiet run never waits here
            self._wake.clear()
            now = time.monotonic()
            last = now
            for capture in captures:
                with capture._deliver_lock:
                    if not capture.closed:
                        self._deliver(capture, now)
