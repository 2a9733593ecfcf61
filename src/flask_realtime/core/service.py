"""The run service: the one façade the web tier (and the CLI) talk to.

It validates a start before anything exists, enforces limits and ownership, and is
the one place that moves a run from state to state (:meth:`RunService.transition`),
so every move is checked against :data:`~.runs.TRANSITIONS` and announced once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .files import (
    DEFAULT_ARTIFACT_BUDGET_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    UPLOAD_PREFIX,
    IncomingFile,
)
from .jobs import JobRegistry, JobSpec, ParamError, RunContext
from .output import OutputSlice
from .ports import ActiveLimitError, RunStore, StoreUnavailableError
from .runs import TRANSITIONS, Run, RunState, new_run_id

log = logging.getLogger(__name__)

MAX_REQUEST_ID = 100


class RunNotFoundError(LookupError):
    """No such run *for this user*: another user's run is indistinguishable from none."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"There is no run {str(run_id)[:64]!r}.")


class LimitReachedError(Exception):
    """A start refused by :class:`Limits`; the message says what to do next."""


class ShuttingDownError(StoreUnavailableError):
    """:meth:`RunService.start` refused: this process is shutting down (``closing``).
    A store error's kind: the web tier answers 503 with the sentence, as for a store
    that is away, and the user starts again in a moment, on another process."""


class RequestIdError(ValueError):
    """A start's ``request_id`` is not what :func:`check_request_id` accepts."""


def check_request_id(value: Any) -> str | None:
    """A start's ``request_id``: None (or empty) for none, else a string of at most
    :data:`MAX_REQUEST_ID` printable characters. Printable excludes lone surrogates
    (Redis cannot store them), control characters and the NUL that separates the
    user from the id in the request key. Raises :class:`RequestIdError`."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_REQUEST_ID or not value.isprintable():
        raise RequestIdError(
            f'"request_id" must be a string of at most {MAX_REQUEST_ID} printable characters '
            "(letters, digits, punctuation or spaces).")
    return value


@dataclass(frozen=True)
class Limits:
    """How many runs may go at once, per user and in total (checked atomically by the store
    at create), and how many each user keeps."""

    per_user: int = 5
    total: int = 50
    #: Runs kept per user, the newest; older finished ones are deleted (0: keep all).
    history: int = 200
    #: Largest file a start may upload for a file parameter (MAX_UPLOAD_BYTES).
    upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: Bytes of artifacts one run may keep (ARTIFACT_BUDGET_BYTES).
    artifact_bytes: int = DEFAULT_ARTIFACT_BUDGET_BYTES


class Runner(Protocol):
    """Executes runs: in threads of this process, or on RQ workers."""

    def submit(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
               context: RunContext) -> None:
        """Start executing ``run`` (validated ``params``) and return without waiting for
        it; the runner moves it through :meth:`RunService.transition`."""

    def stop(self, run_id: str) -> None:
        """Ask the run's job to stop if this runner executes it; must not block, and does
        nothing for a run it does not know."""


RunListener = Callable[[Run], None]


class RunService:
    """What users and runners do with runs: start, stop, list and read them, and move them
    through :data:`TRANSITIONS` by compare-and-set on the store.

    Every method is safe to call from any thread and, with a shared store, from any process.
    Each method may raise :class:`StoreUnavailableError`. ``runner`` is set by the assembly
    (``core/system.py``) before the first start."""

    def __init__(
        self, store: RunStore, registry: JobRegistry, *, limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.limits = limits or Limits()
        self.runner: Runner | None = None
        #: Set at shutdown (core/system.py ``System.shutdown``): the sentence a start
        #: is then refused with (:class:`ShuttingDownError`).
        self.closing: str | None = None
        self._listeners: list[RunListener] = []

    def subscribe(self, listener: RunListener) -> None:
        """Call ``listener(run)`` after every state change (from the changing thread)."""
        self._listeners.append(listener)

    # -- what users do ---------------------------------------------------------------
    def start(
        self, user: str, job: Any, params: Any = None, *, request_id: str | None = None,
        services: Mapping[str, Any] | None = None,
        files: Mapping[str, IncomingFile] | None = None,
    ) -> Run:
        """Validate and start a run; a repeated ``request_id`` returns the first run.

        ``files`` are the uploads for the job's file parameters (docs/jobs.md, "Files
        in"), each at most ``limits.upload_bytes``; they are stored with the run
        before it exists, and deleted again when it is not made. A file parameter
        given in ``params`` instead, or a file for a parameter that takes none, is a
        :class:`ParamError`. Raises :class:`RequestIdError`, the job's errors, or
        :class:`LimitReachedError` when the user (or everyone) has as many runs going
        as :class:`Limits` allows: the store counts and creates in one atomic step, so
        this holds however many web processes start runs at once."""
        assert self.runner is not None, "RunService.runner must be set before starting runs"
        if self.closing is not None:
            raise ShuttingDownError(self.closing)
        request_id = check_request_id(request_id)
        spec = self.registry.get(job)
        uploads = dict(files or {})
        values = spec.validate(self._with_files(spec, params, uploads))
        key = f"{user}\x00{request_id}" if request_id else None
        new = Run(id=new_run_id(), job=spec.name, title=spec.title, user=user,
                  params=spec.params_json(values))
        try:
            for name, upload in uploads.items():
                self.store.put_blob(new.id, UPLOAD_PREFIX + name, upload.data)
            run = self.store.create_run(new, key, per_user=self.limits.per_user,
                                        total=self.limits.total)
        except BaseException as exc:
            if uploads:
                with contextlib.suppress(StoreUnavailableError):
                    self.store.delete_blobs(new.id)
            if not isinstance(exc, ActiveLimitError):
                raise
            if exc.scope == "user":
                raise LimitReachedError(
                    f"You already have {self.limits.per_user} runs going: stop one or wait "
                    "for one to finish, then start again.") from None
            raise LimitReachedError(
                "The server is running as many jobs as it allows right now; "
                "try again when one has finished.") from None
        if run.id != new.id:  # a retried start: the first one is already going
            if uploads:
                self.store.delete_blobs(new.id)
            return run
        self._announce(run)
        self.runner.submit(run, spec, values, RunContext(run.id, user, dict(services or {})))
        return run

    def _with_files(self, spec: JobSpec, params: Any,
                    uploads: Mapping[str, IncomingFile]) -> Any:
        """``params`` with the uploads added, after refusing (ParamError, every problem at
        once) a file parameter sent as a value, a file for a parameter that takes none,
        and a file larger than ``limits.upload_bytes``."""
        takes = set(spec.file_params)
        errors: dict[str, str] = {}
        if isinstance(params, Mapping):
            for name in takes & set(params):
                errors[name] = ("is a file: upload it with POST /api/runs as "
                                "multipart/form-data (docs/protocol.md)")
        limit = self.limits.upload_bytes
        for name, upload in uploads.items():
            if name not in takes:
                errors[str(name)[:100]] = (
                    "is not a file parameter of this job" if takes else
                    "is a file, but this job takes no files")
            elif upload.size > limit:
                errors[name] = (f"is {upload.size:,} bytes, larger than the {limit:,} bytes "
                                "a file may have (MAX_UPLOAD_BYTES)")
        if errors:
            raise ParamError(errors)
        if not uploads:
            return params
        return {**(params if isinstance(params, Mapping) else {}), **uploads}

    def stop(self, user: str, run_id: Any) -> Run:
        """Ask a run to stop. Stopping twice, or stopping a finished run, changes nothing."""
        run = self.get(user, run_id)
        if run.state.finished:
            return run
        self.store.request_stop(run.id)
        moved = (self.transition(run.id, RunState.STOPPED) if run.state is RunState.QUEUED
                 else self.transition(run.id, RunState.STOPPING))
        if self.runner is not None:
            self.runner.stop(run.id)
        return moved or self.store.get_run(run.id) or run

    def get(self, user: str, run_id: Any) -> Run:
        """``user``'s run ``run_id``; raises :class:`RunNotFoundError` when there is none or
        it is another user's (the two are not told apart)."""
        run = self.store.get_run(run_id) if isinstance(run_id, str) else None
        if run is None or run.user != user:
            raise RunNotFoundError(str(run_id))
        return run

    def list(self, user: str, *, job: str | None = None, state: str | None = None,
             limit: int = 100) -> list[Run]:
        """``user``'s runs, newest first, at most ``limit``, optionally of one ``job`` or in
        one ``state`` (a :class:`RunState` value)."""
        states = [RunState(state)] if state else None
        return self.store.list_runs(user, job=job, states=states, limit=limit)

    def read(self, user: str, run_id: Any, after: int, **limits: int) -> OutputSlice:
        """Output lines of ``user``'s run after seq ``after``, within the store's
        ``read_output`` limits; raises :class:`RunNotFoundError` as :meth:`get` does."""
        run = self.get(user, run_id)
        return self.store.read_output(run.id, after, **limits)

    # -- what runners do ---------------------------------------------------------------
    def transition(self, run_id: str, state: RunState, **changes: Any) -> Run | None:
        """Move a run to ``state``; None when the move is not allowed from where it is."""
        for _ in range(20):  # compare-and-set: another thread or process may move it first
            current = self.store.get_run(run_id)
            if current is None or state not in TRANSITIONS[current.state]:
                return None
            moved = current.moved_to(state, **changes)
            if self.store.replace_run(moved, current.state):
                self._announce(moved)
                if moved.state.finished:
                    self._forget_old_runs(moved.user)
                return moved
        log.error("run %s: could not move to %s: the record keeps changing", run_id, state)
        return None

    def finish(self, run_id: str, *, error: str | None = None, stopped: bool = False,
               result: Any = None, has_result: bool = False,
               artifacts: Iterable[dict[str, Any]] | None = None) -> Run | None:
        """End a run whose code has returned: failed, stopped or succeeded, as it went,
        with the ``artifacts`` it kept listed on its record."""
        current = self.store.get_run(run_id)
        if current is None or current.state.finished:
            return current
        stopping = stopped or current.state is RunState.STOPPING or self.store.stop_requested(
            run_id)
        state = (RunState.FAILED if error else RunState.STOPPED if stopping
                 else RunState.SUCCEEDED)
        listed = [dict(a) for a in artifacts or ()]
        kept = {"artifacts": listed} if listed else {}
        done = self.transition(run_id, state, error=error, result=result, has_result=has_result,
                               **kept)
        if done is None and state is RunState.SUCCEEDED:  # a stop arrived meanwhile
            done = self.transition(run_id, RunState.STOPPED, result=result,
                                   has_result=has_result, **kept)
        return done

    def _forget_old_runs(self, user: str) -> None:
        """Keep the user's newest ``limits.history`` runs: without a bound, the embedded
        store's memory (and Redis's) grew with every run ever made."""
        if self.limits.history <= 0:
            return
        with contextlib.suppress(StoreUnavailableError):  # done at the next finish then
            self.store.forget_old_runs(user, self.limits.history)

    def _announce(self, run: Run) -> None:
        for listener in self._listeners:
            try:
                listener(run)
            except Exception:
                log.exception("run listener failed for run %s", run.id)
