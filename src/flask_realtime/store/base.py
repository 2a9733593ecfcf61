"""The store interface: run records, stop requests, output logs, login sessions and
encrypted tokens, in one place.

Two implementations sit behind it: :mod:`.memory` (embedded, the default) and
:mod:`.redis` (shared by several processes). The contract tests in
``tests/store/test_contract.py`` run against both.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Literal

from ..core.output import Line, OutputSlice
from ..core.runs import Run, RunState

#: Default number of lines each run keeps; older lines are dropped (and counted).
DEFAULT_RETENTION_LINES = 100_000


class StoreUnavailableError(Exception):
    """The store cannot be reached; the message says what to do."""


class ActiveLimitError(Exception):
    """:meth:`Store.create_run` refused: ``scope`` says whose active runs are at their
    limit, the user's (``"user"``) or everyone's (``"total"``)."""

    def __init__(self, scope: Literal["user", "total"]) -> None:
        super().__init__(f"the {scope} limit of active runs is reached")
        self.scope = scope


class Store(ABC):
    """Where runs and their output live."""

    def __init__(self, retention_lines: int = DEFAULT_RETENTION_LINES) -> None:
        self.retention_lines = retention_lines
        #: Set whenever some run's output grew; the delivery loop waits on it.
        self.output_changed = threading.Event()

    # -- run records ---------------------------------------------------------------
    @abstractmethod
    def create_run(self, run: Run, request_key: str | None = None, *,
                   per_user: int | None = None, total: int | None = None) -> Run:
        """Store a new run. With ``request_key``, a second create for the same key
        returns the first run instead (a retried start must not start twice).

        With ``per_user`` or ``total``, raises :class:`ActiveLimitError` instead of
        storing when ``run.user`` already has ``per_user`` runs not finished, or
        everyone together ``total``. The count and the create are one atomic step for
        every process sharing the store: concurrent creates never pass a limit."""

    @abstractmethod
    def run_for_request(self, request_key: str) -> Run | None:
        """The run an earlier create with this ``request_key`` made, if any."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run | None: ...

    @abstractmethod
    def replace_run(self, run: Run, expected_state: RunState) -> bool:
        """Save ``run`` only if the stored record is still in ``expected_state``."""

    @abstractmethod
    def list_runs(
        self, user: str | None = None, *, job: str | None = None,
        states: Iterable[RunState] | None = None, limit: int = 100,
    ) -> list[Run]:
        """Newest first; ``user=None`` lists every user's runs (for limits and reapers)."""

    @abstractmethod
    def forget_old_runs(self, user: str, keep: int) -> list[str]:
        """Delete ``user``'s finished runs older than their newest ``keep`` runs, records
        and output alike; returns their ids. Runs not finished are never deleted."""

    # -- stop requests ---------------------------------------------------------------
    @abstractmethod
    def request_stop(self, run_id: str) -> None:
        """Record that the run should stop. Repeating it is harmless."""

    @abstractmethod
    def stop_requested(self, run_id: str) -> bool: ...

    # -- output ----------------------------------------------------------------------
    @abstractmethod
    def append_output(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                      writer: str | None = None, offset: int = 0) -> int:
        """Append lines (numbered after the current end); returns the new end seq.

        ``writer`` and ``offset`` make sending a batch again safe. A writer (the capture
        of one run in one process) numbers the lines it hands over from 0, and
        ``offset`` is the number of ``lines[0]``. The store remembers how far each
        writer got and skips lines it already holds: when a reply is lost (the store
        went away after it appended), the writer cannot know, sends the batch again
        with more lines after it, and no line is stored twice. Without ``writer``
        each call is a writer of its own.
        """

    @abstractmethod
    def read_output(
        self, run_id: str, after: int, *, max_lines: int = 1000, max_chars: int = 65_536,
    ) -> OutputSlice:
        """Lines with seq > ``after``, at least one if there is any, within both limits."""

    @abstractmethod
    def output_end(self, run_id: str) -> int:
        """The seq of the last line (0 when there is none)."""

    # -- login sessions (web/sessions.py) -----------------------------------------------
    @abstractmethod
    def load_session(self, sid: str) -> dict[str, Any] | None:
        """The data saved under ``sid``, or None when there is none or it expired."""

    @abstractmethod
    def save_session(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        """Keep ``data`` (JSON-serialisable) under ``sid`` for ``ttl`` seconds from now."""

    @abstractmethod
    def delete_session(self, sid: str) -> None:
        """Forget ``sid``. Deleting a missing session is harmless."""

    # -- Webex tokens (web/tokens.py): opaque encrypted blobs, one per user -------------
    @abstractmethod
    def save_tokens(self, user: str, blob: bytes) -> None: ...

    @abstractmethod
    def load_tokens(self, user: str) -> bytes | None: ...

    @abstractmethod
    def delete_tokens(self, user: str) -> None:
        """Forget the user's tokens. Deleting missing tokens is harmless."""

    @abstractmethod
    def replace_tokens(self, user: str, expected: bytes | None, blob: bytes | None) -> bool:
        """Compare-and-set: store ``blob`` (None: delete) only if the stored blob is
        still ``expected`` (None: none stored), atomically for every process; returns
        whether it did. A renewal saved this way cannot undo a logout that came while
        it was at Webex (the logout deleted what it expected)."""

    @abstractmethod
    def sessions_and_tokens(self, session_ids: Iterable[str],
                            users: Iterable[str]) -> tuple[set[str], dict[str, bytes]]:
        """Which of ``session_ids`` still exist, and the token blobs of those of
        ``users`` who have some: one round trip however many (every web process asks
        this about its open sockets twice a second)."""

    # -- executor heartbeats (shared stores: a killed process is noticed) -------------------
    def beat(self, run_id: str, ttl: float) -> None:  # noqa: B027  (one process: nothing to do)
        """The process executing ``run_id`` is alive, for ``ttl`` more seconds."""

    def executor_alive(self, run_id: str) -> bool:
        """False once the run's executor stopped beating (always True in one process)."""
        return True

    def close(self) -> None:  # noqa: B027  (optional hook: most stores hold nothing)
        """Release connections and threads."""

    def healthy(self) -> bool:
        return True
