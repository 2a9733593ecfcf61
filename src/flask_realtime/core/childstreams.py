"""``sys.stdout`` and ``sys.stderr`` of a job's own process: in order, and fast in a flood.

Contract: an :class:`FdStream` writes Python's text to a file descriptor (the pipe the
parent reads) so that what the job prints keeps its place among what the rest of the
process writes to the same descriptor directly (``os.system``, C code, children):

* Normally it is line-buffered: each line is written when its newline is, so a
  print before a C write or a command comes before it, as on a terminal.
* A run that prints more than :data:`FLOOD_LINES` lines within :data:`WINDOW_SECONDS`
  is flooding: one write per line would cost the flood most of its speed (a pipe
  write per line: 80,000 lines/s against 340,000 buffered, measured on this project's
  2-core machine), so its lines are then written in batches, at least every
  :data:`FLUSH_SECONDS` by a thread of its own, until the flood ends. During a flood
  what the job prints is still flushed before every ``os.system``, ``subprocess``
  child, ``fork``, ``exec`` and ``posix_spawn`` (:func:`flush_before_children`), and
  before every write to stderr; only C code writing to fd 1 in the middle of a flood
  may land up to :data:`FLUSH_SECONDS` ahead of lines printed just before it.

Thread-safe: the job's threads may print at once (the parts list is appended to
without a lock, as the thread runner's buffer is; a flush takes the lock).
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

#: Lines within :data:`WINDOW_SECONDS` that make a run a flood.
FLOOD_LINES = 200
WINDOW_SECONDS = 0.01
#: While flooding, the longest a printed line waits before it is written.
FLUSH_SECONDS = 0.005
#: While flooding, a batch this big is written at once, without waiting.
BATCH_PARTS = 16_384


class _Bytes:
    """``sys.stdout.buffer``: bytes written after the text before them."""

    def __init__(self, owner: FdStream) -> None:
        self._owner = owner

    def write(self, data: bytes) -> int:
        self._owner.flush()
        self._owner._write_all(bytes(data))
        return len(data)

    def flush(self) -> None:
        self._owner.flush()


class FdStream(io.TextIOBase):
    """A text stream on ``fd``, line-buffered until the job floods (see the module).
    ``before`` is called before each write (stderr's flushes stdout first)."""

    def __init__(self, fd: int, before: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._fd = fd
        self._before = before
        self._parts: list[str] = []
        self._lock = threading.Lock()
        self._window = time.monotonic()
        self._lines = 0
        self._flooding = False
        self._flusher: threading.Thread | None = None
        self.buffer = _Bytes(self)

    def write(self, s: str) -> int:
        """Append ``s``; written at its newline, or in the flood's next batch."""
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self._before is not None:
            self._before()
        parts = self._parts
        parts.append(s)
        if self._flooding:
            if len(parts) >= BATCH_PARTS:
                self.flush()
        elif "\n" in s:
            now = time.monotonic()
            if now - self._window > WINDOW_SECONDS:
                self._window, self._lines = now, 0
            self._lines += 1
            if self._lines > FLOOD_LINES:
                self._start_flood()
            else:
                self.flush()
        return len(s)

    def flush(self) -> None:
        """Write everything appended so far."""
        with self._lock:
            parts = self._parts
            n = len(parts)
            if not n:
                return
            taken = parts[:n]
            del parts[:n]  # appends made meanwhile stay: nothing is lost
            self._write_all("".join(taken).encode("utf-8", "backslashreplace"))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _start_flood(self) -> None:
        self._flooding = True
        if self._before is None:  # the hot path: print looks ``write`` up per call
            self.__dict__["write"] = self._flood_writer()
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                             name="flask-realtime-stdout-flusher")
            self._flusher.start()

    def _flood_writer(self) -> Callable[[str], int]:
        """``write`` while flooding: a closure that appends (one Python call per write,
        no attribute lookups), bound on the instance until the flood ends."""
        parts, append, flush, slow = self._parts, self._parts.append, self.flush, \
            FdStream.write.__get__(self)

        def write(s: str) -> int:
            if s.__class__ is not str:
                return int(slow(s))
            append(s)
            if len(parts) >= BATCH_PARTS:
                flush()
            return len(s)

        return write

    def _flush_loop(self) -> None:
        """While flooding: flush every FLUSH_SECONDS; a quiet interval ends the flood."""
        while True:
            time.sleep(FLUSH_SECONDS)
            if not self._flooding:
                continue
            quiet = len(self._parts) < FLOOD_LINES * FLUSH_SECONDS / WINDOW_SECONDS
            try:
                self.flush()
            except OSError:  # the parent is gone: the process ends with it
                return
            if quiet:
                self._window, self._lines = time.monotonic(), 0
                self.__dict__.pop("write", None)
                self._flooding = False
                self.flush()  # what came between the flush and the switch

    def fileno(self) -> int:
        """The file descriptor written to (1 or 2)."""
        return self._fd

    def isatty(self) -> bool:
        """Never a terminal: a pipe to the server."""
        return False

    def writable(self) -> bool:
        """Always."""
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """UTF-8, as the server decodes it."""
        return "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        """Characters UTF-8 cannot encode are written as backslash escapes."""
        return "backslashreplace"


def flush_before_children(*streams: FdStream) -> None:
    """Have ``os.system``, ``subprocess`` children, ``fork``, ``exec*`` and
    ``posix_spawn*`` flush ``streams`` first, so what was printed comes before what the
    child writes. Called once, in the job's process only."""

    def flushing(call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for stream in streams:
                stream.flush()
            return call(*args, **kwargs)
        return wrapper

    for name in ("system", "fork", "execv", "execve", "posix_spawn", "posix_spawnp",
                 "spawnv", "spawnve"):
        if hasattr(os, name):
            setattr(os, name, flushing(getattr(os, name)))
    subprocess.Popen.__init__ = flushing(subprocess.Popen.__init__)  # type: ignore[method-assign]
