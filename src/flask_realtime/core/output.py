"""The output log's vocabulary: numbered lines, how raw writes become lines, and batches.

A run's output is an append-only sequence of lines numbered from 1 (their *seq*).
Each line remembers its stream and how it ended, so that partial lines and ``\\r``
progress updates survive the trip to the browser without the log ever rewriting a
line it has already numbered:

* ``end == "\\n"``: an ordinary line.
* ``end == ""``: a partial line flushed because no newline came in time; the next
  line of the same stream continues it.
* ``end == "\\r"``: a carriage return; the next line of the same stream replaces it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat

STDOUT, STDERR, LOG, SYSTEM = "stdout", "stderr", "log", "system"
#: What the user typed for the run, echoed as the job read it (``***`` for a secret).
STDIN = "stdin"

#: Lines longer than this many characters are cut (the rest of the line is dropped).
DEFAULT_MAX_LINE_CHARS = 16_384
#: A partial line (no newline yet) is published after this many seconds.
DEFAULT_PARTIAL_FLUSH_SECONDS = 0.1


#: Carriage returns right before a newline: a terminal shows the line, then moves on.
_CRS_LF = re.compile("\r+\n")

#: ``(stream, text, end)``. A plain tuple, not a NamedTuple, on purpose: the garbage
#: collector stops tracking exact tuples that hold only strings, so the millions of
#: lines a store keeps cost nothing at each full collection. A tuple subclass stays
#: tracked, and with 100,000s of retained lines that made capture several times slower.
Line = tuple[str, str, str]


def line(stream: str, text: str, end: str = "\n") -> Line:
    """A :data:`Line` tuple; ``end`` is ``"\n"`` for a whole line, ``""`` for a cut or
    unfinished one."""
    return (stream, text, end)


@dataclass
class OutputSlice:
    """Lines ``first_seq .. first_seq + len(lines) - 1`` of a run, as read from a store.

    ``skipped`` counts lines after the reader's position that the retention cap
    already dropped; ``times`` holds ``(index, epoch_ms)`` change points.
    """

    first_seq: int
    lines: list[Line]
    end_seq: int
    skipped: int = 0
    times: list[tuple[int, int]] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.lines) - 1


def take_fitting(out: list[Line], lines: Sequence[Line], total: int, max_lines: int,
                 max_chars: int, *, start: int = 0,
                 sizes: Sequence[int] | None = None) -> tuple[int, bool]:
    """Append to ``out`` the first of ``lines[start:]`` that fit in a read's limits;
    returns (the characters of text in ``out`` now, whether some were left out).

    ``out`` (holding ``total`` characters of text) grows to at most ``max_lines`` lines
    and ``max_chars`` characters, except that it always gets one line if it is empty,
    however long (a read always moves on). Every store's ``read_output`` fills its
    slice with this, chunk after chunk. ``sizes``, when the caller keeps them, are the
    running totals of ``lines``' characters (``sizes[k]``: of the first ``k`` lines,
    ``len(lines) + 1`` of them): the cut is then a bisection, with no step per line.
    """
    room = max_lines - len(out)
    stop = min(len(lines), start + max(room, 0))
    if sizes is not None:
        limit = max_chars - total + sizes[start]
        count = max(bisect_right(sizes, limit, start, stop + 1) - 1 - start, 0)
        if count == 0 and not out and start < stop:
            count = 1
        out += lines[start:start + count]
        return total + sizes[start + count] - sizes[start], start + count < len(lines)
    window = lines[start:stop]
    for index, line in enumerate(window):
        total += len(line[1])
        if total > max_chars and (index or out):
            out += window[:index]
            return total - len(line[1]), True
    out += window
    return total, stop < len(lines)


def render_text(lines: Iterable[Line]) -> Iterable[str]:
    """Lines back to the text the job wrote (for the plain-text log download)."""
    for _stream, text, end in lines:
        yield text + end


def _cut_marker(limit: int) -> str:
    return f" [flask-realtime: line cut at {limit} characters]"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean(text: str) -> str:
    """Text that can be encoded as UTF-8 (lone surrogates from odd decoders become '?')."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _no_line_longer(text: str, limit: int) -> bool:
    """True if no line of ``text`` is longer than ``limit``; False means "maybe".

    Without a call per line: a line longer than ``limit`` covers a whole aligned window
    of ``(limit + 1) // 2`` characters, so it is enough that every window holds a
    newline (a few thousand ``find`` calls for a million lines, instead of a ``len``
    per line).
    """
    window = max((limit + 1) // 2, 1)
    find = text.find
    return all(find("\n", start, start + window) >= 0
               for start in range(0, len(text) - window + 1, window))


class LineAssembler:
    """Turns one stream's raw writes into :class:`Line` records.

    Writes arrive in arbitrary pieces (``print`` writes the text and the newline
    separately); the assembler holds an unterminated tail until its terminator arrives
    or :meth:`flush_partial` decides it has waited long enough.
    """

    __slots__ = ("_cutting", "_open", "max_chars", "open_text", "pending", "pending_since",
                 "stream")

    def __init__(self, stream: str, max_chars: int = DEFAULT_MAX_LINE_CHARS) -> None:
        self.stream = stream
        self.max_chars = max_chars
        self.pending = ""
        self.pending_since: float | None = None
        self._open = False  # the last line emitted was partial: the next one continues it
        self._cutting = False  # dropping the rest of an over-long line until its end
        #: The text of the partial lines emitted since the last line ended (a prompt
        #: waiting for input, say); see :meth:`current_line`.
        self.open_text = ""

    def feed(self, text: str, now: float, out: list[Line]) -> None:
        """Add raw text; append each completed line to ``out``."""
        if self.pending:
            text = self.pending + text
            self.pending = ""
        carriage = "\r" in text
        if carriage:
            text = _CRS_LF.sub("\n", text)  # "\r\n" and "\r\r\n" end a line, as on a terminal
            carriage = "\r" in text
        parts = text.split("\n")
        tail = parts.pop()
        if parts:
            if (not self._cutting and not carriage and self._none_too_long(text, parts)
                    and (text.isascii() or _encodable(text))):
                # The common case, in bulk: a line object per line and no call per line.
                out.extend(zip(repeat(self.stream), parts, repeat("\n")))
                self._open = False
                self.open_text = ""
                self.pending_since = None
            else:
                for part in parts:
                    if "\r" in part:
                        *segments, part = part.split("\r")
                        for segment in segments:
                            self._line(segment, "\r", out)
                    self._line(part, "\n", out)
        if "\r" in tail:
            # Carriage returns at the very end may be the first half of a "\r\n" that
            # the next write completes: they are held with the tail.
            body = tail.rstrip("\r")
            held = tail[len(body):]
            *segments, tail = body.split("\r")
            for segment in segments:
                self._line(segment, "\r", out)
            tail += held
        if tail:
            if len(tail) > self.max_chars and not tail.endswith("\r"):
                self._line(tail, "", out)  # cuts, and drops what follows until the line ends
                self._cutting = True
                return
            if self._cutting:
                return
            if self.pending_since is None:
                self.pending_since = now
            self.pending = tail
        else:
            self.pending_since = None

    def _none_too_long(self, text: str, parts: list[str]) -> bool:
        """Whether no line of ``parts`` (split from ``text``) is longer than allowed: for
        a big batch, a few ``find`` calls rather than a ``len`` per line."""
        limit = self.max_chars
        return (len(text) <= limit or _no_line_longer(text, limit)
                or max(map(len, parts)) <= limit)

    def feed_lines(self, texts: list[str], joined: str, out: list[Line]) -> bool:
        """Add whole lines at once (``joined`` is ``"".join(texts)``); False, having done
        nothing, unless they are the common case: no tail held, none too long, none
        holding a newline or carriage return, all encodable.

        This is ``print`` in a loop: each text was written and followed by a newline, so
        the texts already are the lines, and no splitting is needed.
        """
        if not texts or self.pending or self._cutting or "\n" in joined or "\r" in joined:
            return False
        if len(joined) > self.max_chars and not (
                _no_line_longer("\n".join(texts), self.max_chars)
                or max(map(len, texts)) <= self.max_chars):
            return False
        if not (joined.isascii() or _encodable(joined)):
            return False
        out.extend(zip(repeat(self.stream), texts, repeat("\n")))
        self._open = False
        self.open_text = ""
        self.pending_since = None
        return True

    def current_line(self) -> str:
        """The line being written and not ended yet: what was published of it as
        partial lines, then what is held (a prompt such as ``Name: ``)."""
        return self.open_text + self.pending

    def end_line(self, now: float, out: list[Line]) -> None:
        """End the line being written, if one is: what the newline a terminal echoes
        after typed input does to a prompt (``input("Name: ")``)."""
        if self.pending or self._open:
            self.feed("\n", now, out)

    def flush_partial(self, now: float, delay: float, out: list[Line], force: bool = False) -> None:
        """Publish a tail that has waited ``delay`` seconds (or at once with ``force``)."""
        if not self.pending or self.pending_since is None:
            return
        if not force and now - self.pending_since < delay:
            return
        tail, self.pending, self.pending_since = self.pending, "", None
        if tail.endswith("\r"):
            self._line(tail.rstrip("\r"), "\r", out)
        else:
            self._line(tail, "", out)

    def _line(self, text: str, end: str, out: list[Line]) -> None:
        if self._cutting:
            if end == "":
                return
            self._cutting = False
            if end == "\n":
                return  # the newline that ends the line we cut: it was ended already
        if end == "\r" and not text and not self._open:
            return  # "\r" at the start of a line overwrites nothing
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + _cut_marker(self.max_chars)
            if end == "":
                end = "\n"
        out.append((self.stream, _clean(text), end))
        self.open_text = (self.open_text + text if self._open else text) if end == "" else ""
        self._open = end == ""
        self.pending_since = None
