"""The per-run buffer: one run's raw writes, in order, until the pump turns them into lines.

Contract: :class:`RunCapture` takes writes from any number of the run's threads without
a lock (``list.append`` is atomic under the GIL) and keeps their order; it calls
``wake`` on the first write after a drain only, which is the pump's cue. The pump reads
it with :meth:`RunCapture.drain`, which may be called from any thread (its own lock
serialises drains) and returns the complete lines written so far, plus partial lines
that have waited long enough. What becomes of those lines afterwards (storing them,
keeping them while the store is unavailable) is the pump's business, not the buffer's.

The stdout write is the hot path (``print`` makes two writes per line): the closure of
:func:`_stdout_writer` appends to a list, takes no lock and looks nothing up.
"""

from __future__ import annotations

import codecs
import gc
import threading
import time
from collections.abc import Callable
from typing import Any

from ..output import LOG, STDERR, STDIN, STDOUT, SYSTEM, Line, LineAssembler


def _stdout_writer(chunks: list[Any], first_write: Callable[[], None]) -> Callable[[str], int]:
    """``sys.stdout.write`` for one run's threads: the hot path, kept to a minimum.

    Bound once per thread on the stdout proxy (see :class:`~.streams._StdoutProxy`), so that a
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
    ``(stream, str)`` tuples for everything else. ``give_way`` is set by the pump: the
    seconds this run's printing thread pauses once per drain cycle while it floods and
    other runs share the process (0 otherwise).
    """

    __slots__ = (
        "_decoders",
        "_lock",
        "assemblers",
        "chunks",
        "give_way",
        "run_id",
        "stdin",
        "wake",
        "write_stdout",
    )

    def __init__(self, run_id: str, wake: Callable[[], None], max_line_chars: int) -> None:
        self.run_id = run_id
        self.chunks: list[Any] = []
        self.wake = wake
        self.write_stdout = _stdout_writer(self.chunks, self._first_write)
        self.give_way = 0.0
        self.assemblers = {s: LineAssembler(s, max_line_chars)
                           for s in (STDOUT, STDERR, LOG, STDIN)}
        #: The run's stdin (a :class:`~.stdin.RunStdin`), set by the runner; None: the
        #: run reads end-of-file.
        self.stdin: Any = None
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        self._lock = threading.Lock()

    def _first_write(self) -> None:
        """The first stdout write after a drain: once per drain cycle however busy the
        run, so this is where a flooding run gives way, at no cost to each write."""
        if self.give_way:
            time.sleep(self.give_way)
        self.wake()

    def write(self, stream: str, text: str) -> None:
        """Append ``text`` to ``stream`` (stdout, stderr, log, stdin or system) of this
        run."""
        chunks = self.chunks
        if not chunks:
            self.wake()
        chunks.append(text if stream == STDOUT else (stream, text))

    def write_bytes(self, stream: str, data: bytes) -> None:
        """Append bytes written to ``stream``'s ``buffer``: UTF-8, a character split
        between two writes joined again, bad bytes as U+FFFD."""
        decoder = self._decoders.get(stream)
        if decoder is None:
            decoder = self._decoders[stream] = codecs.getincrementaldecoder("utf-8")("replace")
        self.write(stream, decoder.decode(data))

    def current_line(self, stream: str = STDOUT) -> str:
        """The text of ``stream``'s line that is being written and has not ended: the
        prompt of a job or command waiting for input. Safe from any thread."""
        with self._lock:  # no drain meanwhile: the assembler and the chunks agree
            text = self.assemblers[stream].current_line()
            for chunk in list(self.chunks):
                if chunk.__class__ is str:
                    if stream == STDOUT:
                        text += chunk
                elif chunk[0] == stream:
                    text += chunk[1]
        return text.rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]

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
                    if stream == STDIN:  # typed input ends the prompt's line, as on a tty
                        stdout.end_line(now, out)
                        self.assemblers[STDERR].end_line(now, out)
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
