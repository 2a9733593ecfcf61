"""The stream proxies: ``sys.stdout`` and ``sys.stderr`` as :func:`~.hooks.install` sets them.

Contract: in a thread that belongs to a run (see :mod:`.context`), ``write`` and
``buffer.write`` go to that run's :class:`~.buffer.RunCapture`, and ``flush`` does
nothing; in every other thread each call goes to the real stream the proxy wraps.
Either way the proxy behaves as a text stream that cannot be closed (a job's
``sys.stdout.close()`` must not close the server's terminal), reports UTF-8, and is not
a tty inside a run. The stdout proxy keeps ``print`` inside a run to one Python call
per write (see :class:`_StdoutProxy`); stderr is written rarely and kept simple.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable
from typing import Any

from .buffer import _as_text
from .context import _local


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
    """sys.stderr: writes are few, each goes through :meth:`~.buffer.RunCapture.write`."""

    def __getattr__(self, name: str) -> Any:
        if name == "_real":  # not set up yet: no endless recursion
            raise AttributeError(name)
        return getattr(self._real, name)


class _StdoutProxy(_ProxyBase, threading.local):
    """sys.stdout: the hot path (``print`` writes twice per line).

    ``print`` looks ``write`` up on ``sys.stdout`` at every call. This proxy is a
    ``threading.local``, so that lookup answers from the calling thread's own
    attributes first: a run's thread gets its run's ``write_stdout`` (see
    :class:`~.buffer.RunCapture`) bound there on its first write, and from then on
    prints without looking up which run it belongs to: one Python call per write, or
    none while the run floods, when the binding is the C ``write`` of the run's
    ``io.StringIO`` (see :meth:`~.buffer.RunCapture.set_fast`).
    :func:`~.context._set_capture` removes the binding when the thread's run changes;
    every other thread finds the class's ``write``.
    """

    def write(self, s: str) -> int:
        capture = _local.capture
        if capture is None:
            return int(self._real.write(s))
        write = capture.bind(self.__dict__)
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


class _StdinProxy(io.TextIOBase):
    """sys.stdin: in a run's thread, the run's :class:`~.stdin.RunStdin` (end-of-file
    at once for a run without one), never the server's own stdin; in every other thread
    the real stream. ``fileno()`` raises in a run's thread, which makes ``input()``
    write its prompt to ``sys.stdout`` and read ``sys.stdin.readline()`` rather than
    use the server's terminal."""

    def __init__(self, real: Any) -> None:
        self._real = real

    @property
    def buffer(self) -> Any:
        """``sys.stdin.buffer``: the run's input as UTF-8 bytes in a run's thread (never
        the server's stdin), the real stream's buffer elsewhere."""
        stdin = self._run_stdin()
        return self._real.buffer if stdin is None else _StdinBytes(stdin)

    def _run_stdin(self) -> Any:
        capture = _local.capture
        return None if capture is None else (capture.stdin or _NO_INPUT)

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        stdin = self._run_stdin()
        if stdin is None:
            return str(self._real.readline(-1 if size is None else size))
        return str(stdin.readline(size))

    def read(self, size: int | None = -1) -> str:
        stdin = self._run_stdin()
        if stdin is None:
            return str(self._real.read(-1 if size is None else size))
        return str(stdin.read(size))

    def readlines(self, hint: int = -1) -> list[str]:  # type: ignore[override]
        stdin = self._run_stdin()
        return list((self._real if stdin is None else stdin).readlines(hint))

    def __iter__(self) -> Any:
        stdin = self._run_stdin()
        return iter(self._real if stdin is None else stdin)

    def __next__(self) -> str:  # type: ignore[override]
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def fileno(self) -> int:
        if _local.capture is not None:
            raise io.UnsupportedOperation("a run's stdin has no file descriptor")
        return int(self._real.fileno())

    def isatty(self) -> bool:
        return False if _local.capture is not None else bool(self._real.isatty())

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """A job cannot close the server's stdin: closing it does nothing."""

    @property
    def closed(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8" if _local.capture is not None else str(
            getattr(self._real, "encoding", "utf-8"))

    def __getattr__(self, name: str) -> Any:
        if name == "_real":
            raise AttributeError(name)
        return getattr(self._real, name)


class _StdinBytes:
    """``sys.stdin.buffer`` in a run's thread: the run's stdin, encoded as UTF-8."""

    def __init__(self, stdin: Any) -> None:
        self._stdin = stdin

    def read(self, size: int | None = -1) -> bytes:
        return str(self._stdin.read(size)).encode()

    def read1(self, size: int | None = -1) -> bytes:
        return self.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        return str(self._stdin.readline(size)).encode()

    def readlines(self, hint: int = -1) -> list[bytes]:
        return [line.encode() for line in self._stdin.readlines(hint)]

    def __iter__(self) -> Any:
        return (line.encode() for line in self._stdin)


class _NoInput:
    """The stdin of a run that has none: end-of-file at once."""

    def readline(self, size: int | None = -1) -> str:
        return ""

    def read(self, size: int | None = -1) -> str:
        return ""

    def readlines(self, hint: int = -1) -> list[str]:
        return []

    def __iter__(self) -> Any:
        return iter(())


_NO_INPUT = _NoInput()
