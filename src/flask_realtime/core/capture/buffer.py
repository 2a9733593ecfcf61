"""The per-run buffer: one run's raw writes, in order, until the pump turns them into lines.

Contract: :class:`RunCapture` takes writes from any number of the run's threads and keeps
their order; stdout writes take no lock. It calls ``wake`` on the first write after a
drain (the pump's cue), except while the pump has made the run's stdout its fast path
(:meth:`RunCapture.set_fast`: the run floods and the pump drains it on a timer anyway).
The pump reads it with :meth:`RunCapture.drain`, which may be called from any thread
and returns the complete lines written so far, plus partial lines that have waited long
enough. What becomes of those lines afterwards (storing them, keeping them while the
store is unavailable) is the pump's business, not the buffer's.

The stdout write is the hot path (``print`` makes two writes per line). Stdout text
goes into one ``io.StringIO`` per run, ``out``, whose ``write`` is C: while the run
floods, the threads' ``sys.stdout.write`` *is* ``out.write``, with no Python frame at all
(see :class:`~.streams._StdoutProxy`); otherwise it is a small closure that also wakes
the pump. Every other stream is written rarely: those writes take the lock, move the
stdout text written so far into ``chunks`` and append themselves after it, so the
order of streams is kept. Taking ``out``'s text and emptying it is one step that no
other thread can interleave with (:func:`_take`): this relies on the GIL, as the rest
of the package does.
"""

from __future__ import annotations

import codecs
import gc
import io
import operator
import threading
import time
from collections.abc import Callable
from typing import Any

from ..output import LOG, STDERR, STDIN, STDOUT, SYSTEM, Line, LineAssembler


def _take(out: io.StringIO) -> str:
    """``out``'s text, leaving it empty, in one step no write of another thread can
    split: ``map`` calls the two C methods from C, with no bytecode between them (the
    only place where CPython switches threads, besides blocking calls, which these are
    not; neither makes a container object, so no garbage collection with its
    finalizers can start in between). Re-initialising keeps the StringIO in its fast,
    append-only state. ``tests/core/test_capture_batching.py`` has four threads write
    through drains and switches and checks that no write is lost or repeated."""
    text, _ = map(operator.call, (out.getvalue, out.__init__))  # type: ignore[misc]
    return str(text)


#: The longest a run's thread waits for a drain once it has written its share of a
#: drain cycle (``RunCapture.hold_after``): a pump that does not come (a store that
#: hangs, a lock the thread holds and the pump's logging needs) costs it no more.
HOLD_SECONDS = 0.05


def _stdout_writer(out: io.StringIO, first_write: Callable[[], None], hold: list[int],
                   held_back: Callable[[], None]) -> Callable[[str], int]:
    """``sys.stdout.write`` for one run's threads while the run does not flood alone.

    Bound once per thread on the stdout proxy (see :class:`~.streams._StdoutProxy`), so
    that a ``print`` costs one Python call per write and no lookup of the thread's run.
    Wakes the pump when the buffer was empty (the first write since a drain); calls
    ``held_back`` when more than ``hold[0]`` characters (0: no bound) wait for the pump.
    """
    write = out.write
    tell = out.tell

    def write_stdout(s: str) -> int:
        if s.__class__ is not str:
            s = _as_text(s)
        n = write(s)
        pos = tell()
        if pos <= n:  # it was empty, or drained since: the pump's cue
            first_write()
        elif hold[0] and pos > hold[0]:
            held_back()
        return n

    return write_stdout


class RunCapture:
    """The raw writes of one run, in order, waiting for the pump.

    ``out`` holds the stdout text written since the last drain or the last write to
    another stream; ``chunks`` holds, in order, ``(stream, str)`` tuples for the other
    streams and the stdout texts written before each of them. ``write_stdout`` is what
    a thread of the run binds as its ``sys.stdout.write``: the waking closure, or
    ``out.write`` itself while the run is on its fast path. ``give_way`` is set by the
    pump: the seconds this run's printing thread pauses once per drain cycle while it
    floods and other runs share the process (0 otherwise; never on the fast path);
    in the same case, :meth:`hold_after` bounds what it writes per drain cycle.
    ``intake``, set by the pump in the same case, is how many lines a process run's
    reader (``core/isolation.py``) may write per drain cycle before it waits for the
    next drain (:meth:`wait_drained`; 0: no bound); ``held`` is set by that reader when
    it waited, and taken by the pump (:meth:`take_held`). ``drains`` counts drains.
    """

    __slots__ = (
        "_bound",
        "_decoders",
        "_drained",
        "_fast",
        "_hold",
        "_lock",
        "_waking",
        "assemblers",
        "chunks",
        "drains",
        "give_way",
        "held",
        "intake",
        "out",
        "run_id",
        "stdin",
        "wake",
        "write_stdout",
    )

    def __init__(self, run_id: str, wake: Callable[[], None], max_line_chars: int) -> None:
        self.run_id = run_id
        self.out = io.StringIO()
        self.chunks: list[Any] = []
        self.wake = wake
        self._hold = [0]  # characters of stdout past which a writer waits for a drain
        self._waking = _stdout_writer(self.out, self._first_write, self._hold,
                                      self._held_back)
        self.write_stdout: Callable[[str], int] = self._waking
        self._fast = False
        # The stdout proxies' per-thread attribute dicts holding ``write_stdout``, by id:
        # switching to or from the fast path rebinds them all.
        self._bound: dict[int, dict[str, Any]] = {}
        self.give_way = 0.0
        self.intake = 0
        self.held = False
        self.drains = 0
        self._drained = threading.Condition(threading.Lock())
        self.assemblers = {s: LineAssembler(s, max_line_chars)
                           for s in (STDOUT, STDERR, LOG, STDIN)}
        #: The run's stdin (a :class:`~.stdin.RunStdin`), set by the runner; None: the
        #: run reads end-of-file.
        self.stdin: Any = None
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        # Serialises drains, writes to streams other than stdout, and (un)binding.
        self._lock = threading.Lock()

    def _first_write(self) -> None:
        """The first stdout write after a drain: once per drain cycle however busy the
        run, so this is where a flooding run gives way, at no cost to each write."""
        if self.give_way:
            time.sleep(self.give_way)
        self.wake()

    def hold_after(self, chars: int) -> None:
        """Set by the pump while the run floods beside other runs: a thread of the run
        that has more than ``chars`` characters of stdout waiting for the pump waits
        for its next drain (at most ``HOLD_SECONDS`` a time), as a process run's reader
        waits with its slice (``intake``), so that the process handles one slice of
        the flood per drain cycle; 0 (alone, or not flooding): never."""
        self._hold[0] = chars

    def _held_back(self) -> None:
        """A writer past its share of the drain cycle (see :meth:`hold_after`)."""
        count = self.drains
        if self.out.tell() <= self._hold[0]:
            return  # drained since the write: room again
        self.held = True  # the pump keeps the run flooding (``take_held``)
        self.wait_drained(count, HOLD_SECONDS)

    def bind(self, attributes: dict[str, Any]) -> Callable[[str], int]:
        """Bind this run's stdout write in a thread's proxy ``attributes`` (its
        ``__dict__``), so that later switches reach it; returns the write."""
        with self._lock:
            write = attributes["write"] = self.write_stdout
            self._bound[id(attributes)] = attributes
        return write

    def unbind(self, attributes: dict[str, Any]) -> None:
        """Undo :meth:`bind`: the thread left the run and must never write to it again."""
        with self._lock:
            attributes.pop("write", None)
            self._bound.pop(id(attributes), None)

    def set_fast(self, fast: bool) -> None:
        """Make ``out.write`` itself every bound thread's ``sys.stdout.write`` (True), or
        the closure that wakes the pump (False). Called by the pump: fast while the run
        floods alone, when the pump drains it on its timer and no wake-up is needed.

        Writes a thread makes through the fast path after the switch back (it had
        looked ``write`` up before) are in ``out`` all the same; the pump's timer
        drains them."""
        if fast == self._fast:
            return
        with self._lock:
            self._fast = fast
            write = self.write_stdout = self.out.write if fast else self._waking
            for attributes in self._bound.values():
                attributes["write"] = write

    @property
    def fast(self) -> bool:
        """Whether the run's stdout writes are on the fast path (see :meth:`set_fast`)."""
        return self._fast

    def wait_drained(self, count: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until a drain after the ``count``-th
        (``drains`` is no longer ``count``); whether one came."""
        with self._drained:
            return self._drained.wait_for(lambda: self.drains != count, timeout)

    def take_held(self) -> bool:
        """Whether the reader (or, for a thread run, a writer: :meth:`hold_after`) waited
        for a drain since the last call (see ``held``)."""
        held, self.held = self.held, False
        return held

    def pending(self) -> bool:
        """Whether anything was written since the last drain."""
        return bool(self.chunks) or bool(self.out.tell())

    def write(self, stream: str, text: str) -> None:
        """Append ``text`` to ``stream`` (stdout, stderr, log, stdin or system) of this
        run."""
        with self._lock:
            first = not self.chunks and not self.out.tell()
            if stream == STDOUT:
                self.out.write(text)
            else:
                earlier = _take(self.out)
                if earlier:
                    self.chunks.append(earlier)
                self.chunks.append((stream, text))
        if first:
            self.wake()

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
            if stream == STDOUT:
                text += self.out.getvalue()  # stdout written since the last other stream
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
            with self._drained:
                self.drains += 1
                self._drained.notify_all()

    def _drain(self, now: float, partial_delay: float, force: bool) -> list[Line]:
        with self._lock:
            taken, self.chunks = self.chunks, []
            last = _take(self.out)  # written after every chunk taken: it goes last
            if last:
                taken.append(last)
            out: list[Line] = []
            stdout = self.assemblers[STDOUT]
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
