"""One run's standard input: what ``sys.stdin``, ``input()`` and ``getpass`` read in a
run's threads.

Contract: :class:`RunStdin` reads the run's input items from the store's
:class:`~..ports.RunInput` (so the user may type in a browser connected to another
process than the one executing the run), buffers them, and serves ``readline``,
``read`` and iteration as a text stream does; ``""`` means end-of-file, which also
comes when the user presses Stop while the job waits (a thread cannot be interrupted
otherwise). While it waits it tells ``on_wait`` the prompt (the text given to
``input()`` or ``getpass``, else the line the run is writing and has not ended, told
again when that changes) and whether the input is secret, and ``on_wait(None,
False)`` when the wait is over: the run record shows it (``waiting_input``). Each item
it takes is echoed into the run's output as the ``stdin`` stream, ``***`` for a secret
one, never its text. One reader at a time: readers in several of the run's threads
take turns.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from ..output import STDERR, STDIN, STDOUT
from ..ports import RunInput, StoreClosedError, StoreUnavailableError
from .buffer import RunCapture

#: How often a wait for input looks at ``running()`` (and at a store that was away).
INPUT_POLL_SECONDS = 0.25
#: What a secret line (read by ``getpass``) shows in the output instead of its text.
MASK = "***"
#: The most characters of a run's unfinished line shown as its prompt (the end of it).
PROMPT_CHARS = 200
#: The system line written when the user ends the input.
EOF_LINE = "End of input (end-of-file)."

#: ``on_wait(prompt, secret)``; ``prompt`` None: the run no longer waits.
WaitListener = Callable[[str | None, bool], object]


class RunStdin:
    """The run's stdin, read from ``source`` (the store) for run ``run_id``, echoed to
    ``capture``. ``running`` is the job's ``running()``: False ends a wait."""

    def __init__(self, source: RunInput, run_id: str, capture: RunCapture,
                 running: Callable[[], bool], on_wait: WaitListener | None = None,
                 poll: float = INPUT_POLL_SECONDS) -> None:
        self.source = source
        self.run_id = run_id
        self.capture = capture
        self.running = running
        self.on_wait = on_wait
        self.poll = poll
        #: What the run shows while it waits: set by the ``input()`` and ``getpass``
        #: hooks (``core/capture/hooks.py``) for the read they make.
        self.prompt = ""
        self.secret = False
        self._buffer = ""
        self._eof = False
        self._lock = threading.RLock()

    # -- reading ---------------------------------------------------------------------
    def readline(self, size: int | None = -1) -> str:
        """The next line with its ``"\\n"`` (at most ``size`` characters when given),
        what is left before end-of-file without one, ``""`` at end-of-file."""
        limit = -1 if size is None else size
        with self._lock:
            while "\n" not in self._buffer and (limit < 0 or len(self._buffer) < limit):
                if not self._fill():
                    break
            end = self._buffer.find("\n") + 1 or len(self._buffer)
            if limit >= 0:
                end = min(end, limit)
            line, self._buffer = self._buffer[:end], self._buffer[end:]
            return line

    def read(self, size: int | None = -1) -> str:
        """Up to ``size`` characters (all until end-of-file when negative or None)."""
        limit = -1 if size is None else size
        with self._lock:
            while (limit < 0 or len(self._buffer) < limit) and self._fill():
                pass
            end = len(self._buffer) if limit < 0 else limit
            text, self._buffer = self._buffer[:end], self._buffer[end:]
            return text

    def read_item(self) -> str:
        """The next piece of input as it was sent (what is buffered first), ``""`` at
        end-of-file: for feeding a command's stdin pipe without waiting for lines."""
        with self._lock:
            if not self._buffer:
                self._fill()
            text, self._buffer = self._buffer, ""
            return text

    def readlines(self, hint: int = -1) -> list[str]:
        """Lines until end-of-file (or until ``hint`` characters were read)."""
        lines: list[str] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    @property
    def at_eof(self) -> bool:
        """Whether end-of-file was reached (sent by the user, or a Stop while waiting)."""
        return self._eof and not self._buffer

    # -- one item from the store -------------------------------------------------------
    def _fill(self) -> bool:
        """Add the next item to the buffer; False at end-of-file."""
        if self._eof:
            return False
        waiting = False
        told: str | None = None
        try:
            while True:
                item = self._take(self.poll if waiting else 0.0)
                if item is not None:
                    break
                if not self.running():  # Stop while waiting: end-of-file for the job
                    self._eof = True
                    return False
                prompt = self._prompt()
                if prompt != told:  # the first time, and when a command prints its prompt
                    waiting, told = True, prompt
                    self._tell(prompt, self.secret)
        finally:
            if waiting:
                self._tell(None, False)
        if item == "":
            self._eof = True
            self.capture.write(STDIN, "")  # nothing typed, but it ends the prompt's line
            self.capture.system(EOF_LINE)
            return False
        self._buffer += item
        if self.secret:
            self.capture.write(STDIN, MASK + ("\n" if item.endswith("\n") else ""))
        else:
            self.capture.write(STDIN, item)
        return True

    def _prompt(self) -> str:
        """What the run shows while it waits: the prompt given to ``input()`` or
        ``getpass``, else the line the run is writing and has not ended (stdout's, else
        stderr's: ``print("Name?", end=" ")``, a command's ``read -p``), its end only."""
        prompt = self.prompt or self.capture.current_line(STDOUT) or self.capture.current_line(
            STDERR)
        return prompt[-PROMPT_CHARS:]

    def _take(self, timeout: float) -> str | None:
        try:
            return self.source.take_input(self.run_id, timeout)
        except StoreClosedError:
            return ""  # the server is stopping: no more input will come
        except StoreUnavailableError:
            time.sleep(self.poll)  # the job waits for input anyway; the store comes back
            return None

    def _tell(self, prompt: str | None, secret: bool) -> None:
        if self.on_wait is not None:
            with contextlib.suppress(StoreUnavailableError):
                self.on_wait(prompt, secret)
