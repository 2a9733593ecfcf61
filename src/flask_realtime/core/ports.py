"""What core needs from a store, and nothing else: core owns these interfaces.

Four small interfaces, one per concern, and :class:`RunStore`, all four together, which
the run service takes. The stores in ``flask_realtime.store`` (memory, SQLite, Redis)
subclass :class:`RunStore`; core never imports them. Each consumer names only what it
uses: :class:`~.runner.StopSignal` takes :class:`StopRequests`,
:class:`~.runner.Heartbeat` takes :class:`ExecutorLiveness`, the capture pump takes
:meth:`OutputLog.append_output` alone. Login sessions and Webex tokens are the web tier's
concern (``web/ports.py``). The contract every store keeps is tested in
``tests/store/test_contract.py``.

Every method may raise :class:`StoreUnavailableError` when the store cannot be reached.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterable
from typing import Literal, Protocol

from .output import Line, OutputSlice
from .runs import Run, RunState

#: Default number of lines each run keeps; older lines are dropped (and counted).
DEFAULT_RETENTION_LINES = 100_000


class StoreUnavailableError(Exception):
    """The store cannot be reached; the message says what to do."""


class StoreClosedError(StoreUnavailableError):
    """The store was closed by its own process (the server is stopping): unlike an
    outage it will not come back, so waiting for it is pointless."""


class ActiveLimitError(Exception):
    """:meth:`RunRecords.create_run` refused: ``scope`` says whose active runs are at
    their limit, the user's (``"user"``) or everyone's (``"total"``)."""

    def __init__(self, scope: Literal["user", "total"]) -> None:
        super().__init__(f"the {scope} limit of active runs is reached")
        self.scope = scope


class RunRecords(Protocol):
    """The run records: created once, moved only by compare-and-set, listed, forgotten."""

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
    def get_run(self, run_id: str) -> Run | None:
        """The stored record, or None when there is no such run."""

    @abstractmethod
    def replace_run(self, run: Run, expected_state: RunState) -> bool:
        """Save ``run`` only if the stored record is still in ``expected_state``;
        returns whether it did (atomically for every process sharing the store)."""

    @abstractmethod
    def list_runs(
        self, user: str | None = None, *, job: str | None = None,
        states: Iterable[RunState] | None = None, limit: int = 100,
    ) -> list[Run]:
        """Newest first; ``user=None`` lists every user's runs (for limits and reapers)."""

    @abstractmethod
    def forget_old_runs(self, user: str, keep: int) -> list[str]:
        """Delete ``user``'s finished runs older than their newest ``keep`` runs, records,
        output and blobs alike; returns their ids. Runs not finished are never deleted."""


class StopRequests(Protocol):
    """Stop requests, seen by every process: the job's ``running()`` reads them."""

    @abstractmethod
    def request_stop(self, run_id: str) -> None:
        """Record that the run should stop. Repeating it is harmless."""

    @abstractmethod
    def stop_requested(self, run_id: str) -> bool:
        """Whether a stop was requested for the run (False for an unknown run)."""


class OutputLog(Protocol):
    """Each run's output: numbered lines, the newest ``retention_lines`` kept."""

    #: Lines each run keeps; older ones are dropped and counted in ``OutputSlice.skipped``.
    retention_lines: int
    #: Set whenever some run's output grew; the delivery loop waits on it.
    output_changed: threading.Event

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


class ExecutorLiveness(Protocol):
    """Heartbeats of the processes executing runs, so that a killed one is noticed.

    The defaults are right for a store used by one process: the executor is this
    process, alive whenever it is asked. Shared stores (Redis) override both.
    """

    def beat(self, run_id: str, ttl: float) -> None:
        """The process executing ``run_id`` is alive, for ``ttl`` more seconds."""
        return None  # one process: nothing to record (an empty body would be abstract)

    def executor_alive(self, run_id: str) -> bool:
        """False once the run's executor stopped beating (always True in one process)."""
        return True


class BlobStore(Protocol):
    """Files kept with a run (uploads and artifacts, ``core/files.py``), by name, as
    bytes; deleted with the run by :meth:`RunRecords.forget_old_runs`. Shared stores
    hold them for every process (an RQ worker reads a run's uploads from Redis)."""

    @abstractmethod
    def put_blob(self, run_id: str, name: str, data: bytes) -> None:
        """Keep ``data`` as the run's blob ``name``, replacing one of that name."""

    @abstractmethod
    def get_blob(self, run_id: str, name: str) -> bytes | None:
        """The run's blob ``name``, or None when there is none."""

    @abstractmethod
    def list_blobs(self, run_id: str) -> dict[str, int]:
        """The run's blobs: name -> size in bytes."""

    @abstractmethod
    def delete_blobs(self, run_id: str) -> None:
        """Delete every blob of the run (nothing when it has none)."""


class RunStore(RunRecords, StopRequests, OutputLog, ExecutorLiveness, BlobStore, Protocol):
    """Everything the run service needs: one database, opened and closed as a whole."""

    def close(self) -> None:
        """Release connections and threads (most stores hold nothing to release)."""
        return None  # not abstract: a store holding nothing need not say so

    def healthy(self) -> bool:
        """Whether the store can be reached now (for the health check)."""
        return True
