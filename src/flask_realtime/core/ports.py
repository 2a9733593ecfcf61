"""What core needs from a store, and nothing else: core owns these interfaces.

Five small interfaces, one per concern, and :class:`RunStore`, all five together, which
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
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, Protocol, TypeAlias

from .output import Line, OutputSlice
from .runs import Run, RunState
from .schedules import Schedule

#: Default number of lines each run keeps; older lines are dropped (and counted).
DEFAULT_RETENTION_LINES = 100_000


#: One run's batch for :meth:`OutputLog.append_outputs`: (run id, lines, writer, offset).
OutputBatch: TypeAlias = tuple[str, list[Line], str | None, int]


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


def create_each(create: Callable[[Run, str | None], Run],
                creates: list[tuple[Run, str | None]]) -> list[Run | ActiveLimitError]:
    """``create(run, request_key)`` for each of ``creates``, in order, each result in its
    place, an :class:`ActiveLimitError` returned instead of raised (what
    :meth:`RunRecords.create_runs` answers; a store calls it under its lock or inside
    its transaction)."""
    made: list[Run | ActiveLimitError] = []
    for run, request_key in creates:
        try:
            made.append(create(run, request_key))
        except ActiveLimitError as exc:
            made.append(exc)
    return made


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

    def create_runs(self, creates: list[tuple[Run, str | None]], *,
                    per_user: int | None = None, total: int | None = None,
                    ) -> list[Run | ActiveLimitError]:
        """:meth:`create_run` for each ``(run, request_key)``, in order, with the same
        limits; each result in its create's place: the run stored (or the first run of
        its request key), or the :class:`ActiveLimitError` that create would have
        raised, returned instead so that one refusal does not stop the others.

        Each create counts the ones before it in the list, and every count and create
        is atomic for every process sharing the store, as :meth:`create_run`'s are:
        a batch never passes a limit. A shared store makes the batch one request (the
        scheduler starts a round's fires with it). Tested in
        ``tests/store/test_contract_create_runs.py``."""
        return create_each(lambda run, request_key: self.create_run(
            run, request_key, per_user=per_user, total=total), creates)

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

    def replace_runs(self, changes: list[tuple[Run, RunState]]) -> list[bool]:
        """:meth:`replace_run` for each ``(run, expected_state)``, in order, each result
        (whether it saved) in its place: a batch of compare-and-sets, each atomic for
        every process sharing the store. A shared store makes the batch one request (a
        round of scheduled starts moves its runs queued -> running with it). Tested in
        ``tests/store/test_contract_replace_runs.py``."""
        return [self.replace_run(run, expected) for run, expected in changes]

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

    def append_outputs(self, batches: list[OutputBatch], epoch_ms: int) -> list[int]:
        """Append several batches at once, each ``(run_id, lines, writer, offset)`` as
        :meth:`append_output` takes them; returns each one's new end seq, in order.

        The capture pump stores a round's batches of many runs this way: the stores do it
        in one write (SQLite: one transaction) rather than one per run. Numbered as in
        :meth:`append_output`, a call that failed may be made again (or each batch sent
        on its own) and no line is stored twice. This default appends them one by one.
        """
        return [self.append_output(run_id, lines, epoch_ms, writer=writer, offset=offset)
                for run_id, lines, writer, offset in batches]

    @abstractmethod
    def read_output(
        self, run_id: str, after: int, *, max_lines: int = 1000, max_chars: int = 65_536,
    ) -> OutputSlice:
        """Lines with seq > ``after``, at least one if there is any, within both limits."""

    def read_outputs(
        self, reads: Sequence[tuple[str, int]], *, max_lines: int = 1000,
        max_chars: int = 65_536,
    ) -> list[OutputSlice]:
        """:meth:`read_output` of each ``(run_id, after)``, in order, each within the
        limits: a turn of the delivery (web/delivery.py) reads the next batch of every
        run it has lines of to send this way. Redis answers with one pipeline; this
        default reads one by one."""
        return [self.read_output(run_id, after, max_lines=max_lines, max_chars=max_chars)
                for run_id, after in reads]

    @abstractmethod
    def output_end(self, run_id: str) -> int:
        """The seq of the last line (0 when there is none)."""

    def output_ends(self, run_ids: Sequence[str]) -> list[int]:
        """:meth:`output_end` of each run, in order: the announcement of many runs'
        state changes asks this of all of them at once (web/announcer.py), and so does
        each turn of the delivery of their lines (web/delivery.py). Redis
        answers with one request; this default asks one by one."""
        return [self.output_end(run_id) for run_id in run_ids]


#: What :meth:`RunInput.send_input` did: queued it, or refused it because the run's
#: input has ended (end-of-file was sent, or the run ended) or holds too much unread.
InputOutcome: TypeAlias = Literal["sent", "closed", "full"]
#: Unread input a run may hold, in UTF-8 bytes, unless the caller says otherwise.
DEFAULT_MAX_QUEUED_INPUT = 1 << 20


class RunInput(Protocol):
    """Each run's standard input: what its user typed, queued in the store until the
    process executing the run reads it (a web process, an RQ worker on another machine,
    or a job's child process fed by its parent).

    The contract, for every store and every reader:

    * Input is a queue of *items* per run, in the order sent: a non-empty text chunk
      (usually one line with its ``"\n"``; a terminal forwarded by ``flask-realtime
      exec`` may send pieces), or end-of-file, which is the last item ever queued.
    * :meth:`take_input` hands each item to exactly one reader, once, and deletes it
      from the store (a password typed for ``getpass`` is not kept after it is read).
      There is one reader per run: the process executing it.
    * After end-of-file, or after :meth:`close_input` (the run ended), sends are
      refused with ``"closed"`` and nothing more is queued; what was unread is dropped
      by :meth:`close_input`.
    * A reader waits for input with a timeout, so it can look at ``running()`` in
      between: a Stop must end a wait for input (the readers treat it as end-of-file).

    A process-isolated runner connects its child's file descriptor 0 to this port: a
    pipe whose parent end gets each text item written (UTF-8) as it is taken, and is
    closed at end-of-file; the record's ``waiting_input`` is then kept by the parent.
    """

    @abstractmethod
    def send_input(self, run_id: str, text: str | None, *,
                   max_queued: int = DEFAULT_MAX_QUEUED_INPUT) -> InputOutcome:
        """Queue ``text`` (non-empty) for the run, or end-of-file when ``text`` is None.

        ``"closed"`` (nothing queued) once end-of-file was queued or the input closed;
        ``"full"`` (nothing queued) when the run's unread text would pass ``max_queued``
        UTF-8 bytes. Atomic for every process sharing the store."""

    @abstractmethod
    def take_input(self, run_id: str, timeout: float) -> str | None:
        """Remove and return the run's oldest item: its text, or ``""`` for end-of-file;
        None when nothing came within ``timeout`` seconds (0: do not wait)."""

    @abstractmethod
    def close_input(self, run_id: str) -> None:
        """The run's input is over (the run ended): drop what is unread, refuse sends
        from now on. Repeating it is harmless."""


class ExecutorLiveness(Protocol):
    """Heartbeats of the processes executing runs, so that a killed one is noticed.

    The defaults are right for a store used by one process: the executor is this
    process, alive whenever it is asked. Shared stores (Redis) override both.
    """

    def beat(self, run_id: str, ttl: float) -> None:
        """The process executing ``run_id`` is alive, for ``ttl`` more seconds."""
        return None  # one process: nothing to record (an empty body would be abstract)

    def beat_many(self, run_ids: list[str], ttl: float) -> None:
        """:meth:`beat` for each of ``run_ids`` (a store shared by processes: in one
        request)."""
        for run_id in run_ids:
            self.beat(run_id, ttl)

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


class RunStore(RunRecords, StopRequests, OutputLog, RunInput, ExecutorLiveness, BlobStore,
               Protocol):
    """Everything the run service needs: one database, opened and closed as a whole."""

    def close(self) -> None:
        """Release connections and threads (most stores hold nothing to release)."""
        return None  # not abstract: a store holding nothing need not say so

    def healthy(self) -> bool:
        """Whether the store can be reached now (for the health check)."""
        return True


class ScheduleStore(Protocol):
    """Schedules (``core/schedules.py``), and the claims that make each due time fire
    once however many processes share the store (``core/scheduler.py``).

    A schedule is saved only by compare-and-set on its ``version``, and found by its
    ``wake_at`` (``due_schedules``). Every store keeps them; the memory store loses
    them at exit like everything else, SQLite and Redis keep them across restarts.
    The contract is tested in ``tests/store/test_contract_schedules.py``."""

    @abstractmethod
    def create_schedule(self, schedule: Schedule, *, per_user: int | None = None) -> bool:
        """Store a new schedule; False (nothing stored) when ``schedule.user`` already
        has ``per_user`` schedules. The count and the create are one atomic step."""

    @abstractmethod
    def get_schedule(self, schedule_id: str) -> Schedule | None:
        """The stored schedule, or None."""

    @abstractmethod
    def list_schedules(self, user: str) -> list[Schedule]:
        """``user``'s schedules, oldest first."""

    @abstractmethod
    def replace_schedule(self, schedule: Schedule, expected_version: int) -> bool:
        """Save ``schedule`` only if the stored one still has ``expected_version``;
        returns whether it did (atomically for every process sharing the store)."""

    @abstractmethod
    def delete_schedule(self, schedule_id: str) -> bool:
        """Forget the schedule; returns whether there was one."""

    @abstractmethod
    def due_schedules(self, now: float, limit: int = 1000) -> list[Schedule]:
        """Schedules whose ``wake_at`` is at or before epoch ``now``, soonest first, at
        most ``limit``."""

    @abstractmethod
    def next_wake(self) -> float | None:
        """The smallest ``wake_at`` of all schedules (None when none is enabled): the
        scheduler sleeps until then, at most a tick."""

    @abstractmethod
    def claim_fire(self, key: str, ttl: float) -> bool:
        """Claim ``key`` (a schedule id and a due time) for ``ttl`` seconds: True for
        the first caller only, in every process sharing the store. A claim is never
        compared with a clock: it is a key that exists or not."""

    def claim_fires(self, keys: list[str], ttl: float) -> list[bool]:
        """:meth:`claim_fire` for each of ``keys``, in order (a shared store makes it one
        request)."""
        return [self.claim_fire(key, ttl) for key in keys]

    def replace_schedules(self, saves: list[tuple[Schedule, int]]) -> list[bool]:
        """:meth:`replace_schedule` for each ``(schedule, expected_version)``, in order,
        each its own compare-and-set (a shared store makes it one request)."""
        return [self.replace_schedule(schedule, version) for schedule, version in saves]
