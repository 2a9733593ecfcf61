"""Capture: route what a run's threads print to that run, and nothing else.

``sys.stdout`` and ``sys.stderr`` are replaced once per process by proxies that look up
the writing thread's :class:`RunCapture`; threads that belong to no run write through
to the real streams. A thread belongs to a run when the runner put it there, when it
was started (``threading.Thread``) by a thread of the run, or while it executes a work
item submitted to a ``concurrent.futures.ThreadPoolExecutor`` by a thread of the run
(this covers ``asyncio.to_thread`` and ``loop.run_in_executor``). Logging records made
in such threads go to the run too, and so does the output of child processes they start
with ``subprocess`` (see :func:`_patch_subprocess`).

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
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

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
    #: stdout proxies on which this thread's ``write`` is bound to its run (see _StdoutProxy)
    bound: tuple[_StdoutProxy, ...] = ()


_local = _Local()

class LineSink(Protocol):
    """Where assembled lines go: the store's :meth:`~..store.base.Store.append_output`.

    ``writer`` and ``offset`` number the lines so that a batch sent again after a lost
    reply is not stored twice.
    """

    def __call__(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                 writer: str | None = None, offset: int = 0) -> object: ...

#: Upper bound on how long a captured line waits for the pump while its run is open.
FLUSH_WINDOW_SECONDS = 0.02
#: While the store is unavailable, how often storing is tried again.
RETRY_SECONDS = 0.5
#: Lines per run kept while the store is unavailable; older ones are dropped and counted.
DEFAULT_MAX_UNSENT = 100_000

#: A run that wrote at least this many lines between two drains floods (at the 10 ms
#: batch interval, 100,000 lines/s).
FLOOD_LINES_PER_DRAIN = 1000
#: How long a flooding run's printing thread pauses once per drain cycle while other
#: runs share the process (0 turns it off). Without it a run printing as fast as it can
#: kept the GIL busy enough to triple another run's p99 latency (bench/flood.py).
DEFAULT_GIVE_WAY_SECONDS = 0.005

log = logging.getLogger(__name__)


def current_capture() -> RunCapture | None:
    return _local.capture


def _set_capture(capture: RunCapture | None) -> RunCapture | None:
    previous = _local.capture
    if capture is not previous:
        _local.capture = capture
        if _local.bound:  # this thread's shortcut to its old run must not outlive it
            for proxy in _local.bound:
                proxy.__dict__.pop("write", None)
            _local.bound = ()
    return previous


def _stdout_writer(chunks: list[Any], first_write: Callable[[], None]) -> Callable[[str], int]:
    """``sys.stdout.write`` for one run's threads: the hot path, kept to a minimum.

    Bound once per thread on the stdout proxy (see :class:`_StdoutProxy`), so that a
    ``print`` costs one Python call per write and no lookup of the thread's run. A
    closure rather than a method: no bound-method indirection and no attribute loads.
    """
    append = chunks.append

    def write_stdout(s: str) -> int:
        if s.__class__ is not str:
            s = _as_text(s)
        if not chunks:
            first_write()
        append(s)
        return len(s)

    return write_stdout


class RunCapture:
    """The raw writes of one run, in order, waiting for the pump.

    ``chunks`` holds ``str`` for stdout (the common case, kept cheap) and
    ``(stream, str)`` tuples for everything else.
    """

    __slots__ = (
        "_decoders",
        "_deliver_lock",
        "_lock",
        "assemblers",
        "chunks",
        "closed",
        "flooding",
        "give_way",
        "given",
        "lost",
        "retry_at",
        "run_id",
        "unsent",
        "unsent_since",
        "wake",
        "write_stdout",
        "writer",
    )

    def __init__(self, run_id: str, wake: Callable[[], None], max_line_chars: int) -> None:
        self.run_id = run_id
        self.chunks: list[Any] = []
        self.wake = wake
        self.write_stdout = _stdout_writer(self.chunks, self._first_write)
        # Seconds this run's printing thread gives way at each drain cycle: non-zero while
        # it floods and other runs share the process (set by the pump).
        self.give_way = 0.0
        self.flooding = False
        self.closed = False
        self.assemblers = {s: LineAssembler(s, max_line_chars) for s in (STDOUT, STDERR, LOG)}
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        # Lines the store refused (it was unavailable), oldest first, and how many of
        # them had to be dropped to stay within the bound.
        self.unsent: list[Line] = []
        self.lost = 0
        # This capture's name as a writer to the store, and the number of its next line
        # to give (the first unsent one): a refused batch may still have been stored.
        self.writer = uuid.uuid4().hex
        self.given = 0
        self.retry_at = 0.0
        self.unsent_since = 0.0

    def keep_unsent(self, lines: list[Line], bound: int) -> None:
        self.unsent.extend(lines)
        excess = len(self.unsent) - bound
        if excess > 0:
            del self.unsent[:excess]
            self.lost += excess
            self.given += excess

    def _first_write(self) -> None:
        """The first stdout write after a drain: once per drain cycle however busy the
        run, so this is where a flooding run gives way, at no cost to each write."""
        if self.give_way:
            time.sleep(self.give_way)
        self.wake()

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

    @staticmethod
    def _lines_printed(taken: list[Any], stdout: LineAssembler, out: list[Line]) -> bool:
        """The common case in bulk: only ``print(text)`` calls, each a text then a newline."""
        seps = taken[1::2]
        if len(taken) % 2 or seps.count("\n") != len(seps):
            return False
        texts = taken[0::2]
        try:
            joined = "".join(texts)
        except TypeError:  # a write to another stream
            return False
        return stdout.feed_lines(texts, joined, out)

    def _drain(self, now: float, partial_delay: float, force: bool) -> list[Line]:
        with self._lock:
            chunks = self.chunks
            n = len(chunks)
            taken = chunks[:n]
            del chunks[:n]  # appends made meanwhile stay in the list: nothing is lost
            out: list[Line] = []
            stdout = self.assemblers[STDOUT]
            if self._lines_printed(taken, stdout, out):
                taken = []
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


class _ProxyBase:
    """What the sys.stdout and sys.stderr proxies share: run threads write to their run,
    every other thread to the real stream."""

    _real: Any
    _stream: str

    def __init__(self, real: Any, stream: str) -> None:
        self._real = real
        self._stream = stream
        self.buffer = _BufferProxy(self)

    def write(self, s: str) -> int:
        capture = _local.capture
        if capture is None:
            return int(self._real.write(s))
        if s.__class__ is not str:
            s = _as_text(s)
        capture.write(self._stream, s)
        return len(s)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _local.capture is None:
            self._real.flush()

    def close(self) -> None:
        """A job cannot close the server's stream: closing it does nothing."""

    @property
    def closed(self) -> bool:
        return False

    def isatty(self) -> bool:
        return False if _local.capture is not None else bool(self._real.isatty())

    def fileno(self) -> int:
        return int(self._real.fileno())

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str | None:
        return "strict"

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class _StreamProxy(_ProxyBase, io.TextIOBase):  # type: ignore[misc,override]
    """sys.stderr: writes are few, each goes through :meth:`RunCapture.write`."""

    def __getattr__(self, name: str) -> Any:
        if name == "_real":  # not set up yet: no endless recursion
            raise AttributeError(name)
        return getattr(self._real, name)


class _StdoutProxy(_ProxyBase, threading.local):
    """sys.stdout: the hot path (``print`` writes twice per line).

    ``print`` looks ``write`` up on ``sys.stdout`` at every call. This proxy is a
    ``threading.local``, so that lookup answers from the calling thread's own
    attributes first: a run's thread gets its run's :meth:`RunCapture.write_stdout`
    bound there on its first write, and from then on prints without looking up which
    run it belongs to (one Python call per write; measured 1.5x -> 1.3x of printing into
    ``io.StringIO``). :func:`_set_capture` removes the binding when the thread's run
    changes; every other thread finds the class's ``write``.
    """

    def write(self, s: str) -> int:
        capture = _local.capture
        if capture is None:
            return int(self._real.write(s))
        write = capture.write_stdout
        self.__dict__["write"] = write
        _local.bound = (*_local.bound, self)
        return write(s)


io.TextIOBase.register(_StdoutProxy)  # a threading.local cannot also be a TextIOBase


def _forward(name: str) -> property:
    return property(lambda self: getattr(self._real, name))


# The rest of the real stream's interface. Not by ``__getattr__``: on a threading.local
# its mere presence makes every attribute lookup, ``write`` included, a slower one.
for _name in ("name", "mode", "line_buffering", "write_through", "newlines", "reconfigure",
              "detach", "read", "readline", "readlines", "seek", "tell", "truncate"):
    setattr(_StdoutProxy, _name, _forward(_name))


class _BufferProxy:
    """``sys.stdout.buffer`` for run threads: bytes are decoded, bad bytes become U+FFFD."""

    def __init__(self, owner: _ProxyBase) -> None:
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
        if not isinstance(sys.stdout, _ProxyBase):
            sys.stdout = _StdoutProxy(sys.stdout, STDOUT)
        if not isinstance(sys.stderr, _ProxyBase):
            sys.stderr = _StreamProxy(sys.stderr, STDERR)
        if _installed:
            return
        _installed = True
        _patch_threads()
        _patch_subprocess()
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


#: How long ``Popen.wait`` waits, once the child has exited, for the rest of its output
#: to be read (a grandchild that keeps the pipe open is not waited for longer).
SUBPROCESS_DRAIN_SECONDS = 2.0


def _read_child_output(capture: RunCapture, stream: str, fd: int) -> None:
    """Read a child's stdout or stderr pipe into the run until the child closes it."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # its own: no mixed bytes
    try:
        while data := os.read(fd, 65_536):
            capture.write(stream, decoder.decode(data))
        if tail := decoder.decode(b"", final=True):
            capture.write(stream, tail)
    finally:
        os.close(fd)


def _patch_subprocess() -> None:
    """A child process started in a run, with stdout or stderr left to the parent's,
    writes to the run instead of the server's terminal.

    File descriptors 1 and 2 belong to the whole process, so they cannot be told apart
    by run: in a run's threads, ``Popen`` gives such a child a pipe of its own for
    each, and a thread reads it into the run. ``Popen.wait`` (which ``run``, ``call``,
    ``communicate`` and ``with Popen(...)`` use) returns once the child's output has
    been read too, so it comes before what the job prints next.
    """
    original_init = subprocess.Popen.__init__
    original_wait = subprocess.Popen.wait

    def __init__(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        capture = current_capture()
        pipes: list[tuple[str, int, int]] = []
        if capture is not None and len(rest) < 4:  # stdout and stderr not given by position
            for name, stream in (("stdout", STDOUT), ("stderr", STDERR)):
                if kwargs.get(name) is None:
                    read_end, write_end = os.pipe()
                    kwargs[name] = write_end
                    pipes.append((stream, read_end, write_end))
        try:
            original_init(self, args, *rest, **kwargs)
        except BaseException:
            for _stream, read_end, _write_end in pipes:
                os.close(read_end)
            raise
        finally:
            for _stream, _read_end, write_end in pipes:
                os.close(write_end)  # the child has its copy: EOF when it is done
        forwarders = []
        for stream, read_end, _write_end in pipes:
            assert capture is not None
            forwarder = threading.Thread(
                target=_read_child_output, args=(capture, stream, read_end),
                name="flask-realtime-subprocess", daemon=True)
            forwarder.start()
            forwarders.append(forwarder)
        self._flask_realtime_forwarders = forwarders  # type: ignore[attr-defined]

    def wait(self: subprocess.Popen[Any], timeout: float | None = None) -> int:
        code = original_wait(self, timeout)
        for forwarder in getattr(self, "_flask_realtime_forwarders", ()):
            forwarder.join(SUBPROCESS_DRAIN_SECONDS)
        return code

    subprocess.Popen.__init__ = __init__  # type: ignore[method-assign]
    subprocess.Popen.wait = wait  # type: ignore[method-assign]


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

    Fairness: runs share the process's GIL. A run that wrote ``FLOOD_LINES_PER_DRAIN``
    lines or more since the last drain is flooding; while other runs are open, its
    printing thread pauses ``give_way`` seconds once per drain cycle, and quiet runs
    are drained first. A flood alone in the process is never slowed.
    """

    def __init__(
        self, sink: LineSink, *, interval: float = 0.01,
        partial_delay: float = DEFAULT_PARTIAL_FLUSH_SECONDS,
        max_line_chars: int = DEFAULT_MAX_LINE_CHARS, max_unsent: int = DEFAULT_MAX_UNSENT,
        give_way: float = DEFAULT_GIVE_WAY_SECONDS,
    ) -> None:
        self.sink = sink
        self.give_way = give_way
        #: Called with True when a run starts flooding while others share the process,
        #: and with False when that ends (the web tier shortens the GIL switch interval).
        self.on_contention: Callable[[bool], object] | None = None
        self._contended = False
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

    def _deliver(self, capture: RunCapture, now: float, force: bool = False) -> int:
        """Drain and store; lines the store refuses wait (bounded) for the next try.
        Returns how many lines the run wrote since the last drain."""
        lines = capture.drain(now, self.partial_delay, force=force)
        written = len(lines)
        if capture.unsent:
            if now < capture.retry_at and not force:
                capture.keep_unsent(lines, self.max_unsent)
                return written
            lines = capture.unsent + lines
            capture.unsent = []
        if lines:
            batch, offset = lines, capture.given
            if capture.lost:
                # The lost lines came before every kept one: say so first. The note takes
                # the number of the last lost line, so the store skips it as well if an
                # attempt whose reply was lost had stored that line after all.
                batch = [(SYSTEM, f"[flask-realtime: {capture.lost} lines were lost while "
                                  "the output store was unavailable]", "\n"), *lines]
                offset -= 1
            try:
                self.sink(capture.run_id, batch, int(time.time() * 1000),
                          writer=capture.writer, offset=offset)
            except Exception as exc:
                if not capture.unsent_since:
                    log.warning("could not store output of run %s (%s): keeping up to %d "
                                "lines until the store is back", capture.run_id, exc,
                                self.max_unsent)
                    capture.unsent_since = now
                capture.retry_at = now + RETRY_SECONDS
                capture.keep_unsent(lines, self.max_unsent)  # the count of lost ones grows
            else:
                capture.given = offset + len(batch)
                if capture.unsent_since:
                    log.info("output of run %s stored again", capture.run_id)
                capture.unsent_since = 0.0
                capture.lost = 0
        return written

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
            shared = len(captures) > 1
            # Quiet runs first: their few lines are not stored after a flood's many.
            for capture in sorted(captures, key=lambda c: c.flooding):
                with capture._deliver_lock:
                    if not capture.closed:
                        written = self._deliver(capture, now)
                        capture.flooding = written >= FLOOD_LINES_PER_DRAIN
                        capture.give_way = self.give_way if shared and capture.flooding else 0.0
            contended = shared and any(c.flooding for c in captures)
            if contended != self._contended:
                self._contended = contended
                if self.on_contention is not None:
                    self.on_contention(contended)
