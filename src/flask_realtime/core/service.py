"""The run service: the one façade the web tier (and the CLI) talk to.

It validates a start before anything exists, enforces limits and ownership, and is
the one place that moves a run from state to state (:meth:`RunService.transition`),
so every move is checked against :data:`~.runs.TRANSITIONS` and announced once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from .access import JobAccess
from .files import (
    DEFAULT_ARTIFACT_BUDGET_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    UPLOAD_PREFIX,
    IncomingFile,
)
from .jobs import JobError, JobRegistry, JobSpec, ParamError, RunContext, UnknownJobError
from .output import OutputSlice
from .ports import DEFAULT_MAX_QUEUED_INPUT, ActiveLimitError, RunStore, StoreUnavailableError
from .runs import TRANSITIONS, NotifyError, Run, RunState, check_notify, new_run_id

log = logging.getLogger(__name__)

MAX_REQUEST_ID = 100


class RunNotFoundError(LookupError):
    """No such run *for this user*: another user's run is indistinguishable from none."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"There is no run {str(run_id)[:64]!r}.")


class JobForbiddenError(JobError):
    """The user may not run this job (its ``allowed`` rule, core/access.py): the web tier
    answers 403 with the sentence."""

    def __init__(self, job: str) -> None:
        super().__init__(f"You may not run the job {job[:100]!r}: ask an admin of this "
                         "server to add you to its allowed users.")
        self.job = job


class LimitReachedError(Exception):
    """A start refused by :class:`Limits`; the message says what to do next."""


class ShuttingDownError(StoreUnavailableError):
    """:meth:`RunService.start` refused: this process is shutting down (``closing``).
    A store error's kind: the web tier answers 503 with the sentence, as for a store
    that is away, and the user starts again in a moment, on another process."""


class InputError(ValueError):
    """Input refused by :meth:`RunService.send_input`; the message says why and what to
    do."""


class InputTooLargeError(InputError):
    """Input refused because one send holds more than ``input_max_bytes``."""


#: The most UTF-8 bytes one send of input may hold, unless configured (INPUT_MAX_BYTES).
DEFAULT_INPUT_MAX_BYTES = 16 * 1024
#: A prompt longer than this is cut in the run record (the output has all of it).
MAX_PROMPT_CHARS = 500


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


@runtime_checkable
class BatchRunner(Runner, Protocol):
    """A runner that also starts a batch of runs at once (:meth:`RunService.start_many`
    hands it the batch instead of one :meth:`~Runner.submit` each)."""

    def submit_many(self, starts: Sequence[tuple[Run, JobSpec, Mapping[str, Any],
                                                 RunContext]],
                    began: threading.Event | None = None) -> list[Exception | None]:
        """:meth:`~Runner.submit` for each ``(run, spec, params, context)``, each result
        (None, or the error ``submit`` would have raised) in its place. The thread
        runner moves the batch's runs queued -> running in one store request
        (:meth:`RunService.begin_runs`) and starts each one's thread right after: its
        ``started_at`` is when it was moved and its thread started. ``began``, when
        given, is set once every run of the batch has begun its job (or will not run
        one); a runner that cannot tell sets it before it returns."""


RunListener = Callable[[Run], None]


@dataclass(frozen=True)
class StartRequest:
    """One start of :meth:`RunService.start_many`: :meth:`RunService.start`'s arguments
    (files aside)."""

    user: str
    job: Any
    params: Any = None
    request_id: str | None = None
    services: Mapping[str, Any] | None = None
    schedule: tuple[str, str] | None = None
    run_id: str | None = None
    notify: Any = None


@dataclass(frozen=True)
class MadeRuns:
    """Runs :meth:`RunService.create_many` made and announced, not yet handed to the
    runner (:meth:`RunService.launch` does)."""

    #: Each start's outcome so far, in its place: its run, or the error refusing it.
    results: list[Run | Exception | None]
    #: The runs to hand to the runner, each with its place in ``results``.
    submits: list[tuple[int, tuple[Run, JobSpec, Mapping[str, Any], RunContext]]]


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
        #: The most UTF-8 bytes one :meth:`send_input` may hold, and a run unread.
        self.input_max_bytes = DEFAULT_INPUT_MAX_BYTES
        self.input_max_queued = DEFAULT_MAX_QUEUED_INPUT
        #: Set at shutdown (core/system.py ``System.shutdown``): the sentence a start
        #: is then refused with (:class:`ShuttingDownError`).
        self.closing: str | None = None
        self._listeners: list[RunListener] = []
        #: Who may run which job (set by the web app from JOB_GROUPS, web/app.py); None:
        #: everyone may run every job (``flask-realtime exec``, core's tests).
        self.access: JobAccess | None = None

    def may_run(self, user: str, spec: JobSpec) -> bool:
        """Whether ``user`` may run ``spec`` (and so see it listed, re-run it, share its
        runs): its ``allowed`` rule, when :attr:`access` is set."""
        return self.access is None or self.access.may_run(user, spec)

    def jobs_for(self, user: str) -> list[JobSpec]:
        """The jobs ``user`` may run, by name: what the job list shows them."""
        return [spec for spec in self.registry if self.may_run(user, spec)]

    def check_job(self, user: str, job: Any, *, known: bool = False) -> JobSpec:
        """The job named ``job``, if ``user`` may run it; else ``UnknownJobError``, the
        answer for a name no job has: a job is not told apart from none by someone who
        may not run it and guesses its name (docs/access.md). ``known``: the user knows
        the job already (a schedule of theirs, a run of theirs): then
        :class:`JobForbiddenError`, which says why."""
        spec = self.registry.get(job)
        if not self.may_run(user, spec):
            if known:
                raise JobForbiddenError(spec.name)
            raise UnknownJobError(spec.name)
        return spec

    def subscribe(self, listener: RunListener) -> None:
        """Call ``listener(run)`` after every state change, and when a run starts or
        stops waiting for input (:meth:`waiting_for_input`), from the changing thread."""
        self._listeners.append(listener)

    # -- what users do ---------------------------------------------------------------
    def start(
        self, user: str, job: Any, params: Any = None, *, request_id: str | None = None,
        services: Mapping[str, Any] | None = None, schedule: tuple[str, str] | None = None,
        run_id: str | None = None, notify: Any = None,
        files: Mapping[str, IncomingFile] | None = None,
    ) -> Run:
        """:meth:`start_once`'s run (the first one for a repeated ``request_id``)."""
        return self.start_once(user, job, params, request_id=request_id, services=services,
                               schedule=schedule, run_id=run_id, notify=notify,
                               files=files)[0]

    def start_once(
        self, user: str, job: Any, params: Any = None, *, request_id: str | None = None,
        services: Mapping[str, Any] | None = None, schedule: tuple[str, str] | None = None,
        run_id: str | None = None, notify: Any = None,
        files: Mapping[str, IncomingFile] | None = None,
    ) -> tuple[Run, bool]:
        """Validate and start a run: the run, and whether this call made it (False: a
        repeated ``request_id``, whose first run is returned and not started again: a
        caller that records starts records that one once).
        ``schedule`` is the ``(id, name)`` of the schedule starting it, kept on the run;
        ``run_id`` the new run's id when the caller chose it (the scheduler saves it
        on the schedule first), else a new one.

        ``notify`` is when the owner is told of the run's end (a
        :class:`~.runs.Notify` value; None: their default then), kept on the record.

        ``files`` are the uploads for the job's file parameters (docs/jobs.md, "Files
        in"), each at most ``limits.upload_bytes``; they are stored with the run
        before it exists, and deleted again when it is not made. A file parameter
        given in ``params`` instead, or a file for a parameter that takes none, is a
        :class:`ParamError`.

        Raises :class:`RequestIdError`, :class:`~.runs.NotifyError`, the job's errors,
        or :class:`LimitReachedError`
        when the user (or everyone) has as many runs going as :class:`Limits` allows:
        the store counts and creates in one atomic step, so this holds however many
        web processes start runs at once. When the job's rule does not let ``user``
        run it: ``UnknownJobError``, as for a name no job has (a schedule's start:
        :class:`JobForbiddenError`)."""
        runner = self._runner()
        uploads = dict(files or {})
        spec, values, new, key = self._prepare(StartRequest(
            user, job, params, request_id=request_id, schedule=schedule, run_id=run_id,
            notify=notify), uploads)
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
            raise self._refusal(exc) from None
        if run.id != new.id:  # a retried start: the first one is already going
            if uploads:
                self.store.delete_blobs(new.id)
            return run, False
        self._announce(run)
        runner.submit(run, spec, values, RunContext(run.id, user, dict(services or {})))
        return run, True

    def start_many(self, starts: Sequence[StartRequest]) -> list[Run | Exception]:
        """:meth:`start` for each of ``starts`` (no files), in order, the runs created in
        one request to the store (:meth:`~.ports.RunRecords.create_runs`: each counted
        against :class:`Limits` as :meth:`start` counts it). Each result is in its
        start's place: the run (the first run of a repeated ``request_id``), or the
        error :meth:`start` would have raised for it (the job's errors,
        :class:`RequestIdError`, :class:`~.runs.NotifyError`,
        :class:`LimitReachedError`), returned so that one refusal does not stop the
        others; also, for a run created whose runner refused it, the runner's error.
        :class:`StoreUnavailableError` (and :class:`ShuttingDownError`) is raised for
        the whole batch. Each run is announced, then submitted, as :meth:`start` does.

        :meth:`create_many` then :meth:`launch`: a caller with several batches (the
        scheduler's round) makes every batch's runs before it launches any."""
        return self.launch(self.create_many(starts))

    def create_many(self, starts: Sequence[StartRequest]) -> MadeRuns:
        """The first half of :meth:`start_many`: each start checked, its run created (one
        request to the store) and announced (``queued``), none handed to the runner
        yet: :meth:`launch` does. :attr:`MadeRuns.results` has each start's outcome
        so far in its place (a refusal is final; a run made may still be refused by
        the runner at its launch). Raises as :meth:`start_many` does."""
        self._runner()
        results: list[Run | Exception | None] = [None] * len(starts)
        batch: list[tuple[int, StartRequest, JobSpec, dict[str, Any], Run, str | None]] = []
        for i, start in enumerate(starts):
            try:
                spec, values, new, key = self._prepare(start, {})
            except (JobError, ParamError, RequestIdError, NotifyError) as exc:
                results[i] = exc
                continue
            batch.append((i, start, spec, values, new, key))
        made = self.store.create_runs([(new, key) for *_rest, new, key in batch],
                                      per_user=self.limits.per_user, total=self.limits.total)
        submits: list[tuple[int, tuple[Run, JobSpec, Mapping[str, Any], RunContext]]] = []
        for (i, start, spec, values, new, _key), run in zip(batch, made, strict=True):
            if isinstance(run, ActiveLimitError):
                results[i] = self._refusal(run)
                continue
            results[i] = run
            if run.id != new.id:  # a retried start: the first one is already going
                continue
            self._announce(run)
            submits.append((i, (run, spec, values,
                                RunContext(run.id, start.user, dict(start.services or {})))))
        return MadeRuns(results, submits)

    def launch(self, made: MadeRuns) -> list[Run | Exception]:
        """The second half of :meth:`start_many`: hand the runs :meth:`create_many` made
        to the runner (one ``submit_many`` for a :class:`BatchRunner`), and return
        every start's result in its place, a runner's refusal in its run's. Not refused
        for a shutdown begun since the runs were made: they exist, and the runner ends
        them as it ends a run submitted while it shuts down."""
        return self.launch_all([made])[0]

    def launch_all(self, batches: Sequence[MadeRuns], *,
                   began: threading.Event | None = None) -> list[list[Run | Exception]]:
        """:meth:`launch` for each of ``batches`` at once: a :class:`BatchRunner` gets
        every batch's runs in one ``submit_many`` (the scheduler's round: its threads
        start together). Each batch's results, in its place. ``began``, when given, is
        set once every run launched has begun its job (``BatchRunner.submit_many``),
        or before this returns when there is nothing to wait for (no run, a runner
        that is not a :class:`BatchRunner`, an error raised)."""
        runner = self.runner
        assert runner is not None, "RunService.runner must be set before starting runs"
        submits = [submit for made in batches for _i, submit in made.submits]
        waits = began is not None and bool(submits) and isinstance(runner, BatchRunner)
        try:
            return self._launch_all(runner, batches, submits, began)
        except BaseException:
            waits = False  # the runner may never set it
            raise
        finally:
            if began is not None and not waits:
                began.set()

    def _launch_all(self, runner: Runner, batches: Sequence[MadeRuns],
                    submits: list[tuple[Run, JobSpec, Mapping[str, Any], RunContext]],
                    began: threading.Event | None) -> list[list[Run | Exception]]:
        """:meth:`launch_all`'s work: the runner given the runs, each result placed."""
        if isinstance(runner, BatchRunner):
            errors = runner.submit_many(submits, began) if submits else []
        else:
            errors = []
            for submit in submits:
                try:
                    runner.submit(*submit)
                    errors.append(None)
                except Exception as exc:  # as start() would raise it; the others still go
                    errors.append(exc)
        told = iter(errors)
        launched: list[list[Run | Exception]] = []
        for made in batches:
            results = list(made.results)
            for i, _submit in made.submits:
                error = next(told)
                if error is not None:
                    results[i] = error
            done = [result for result in results if result is not None]
            assert len(done) == len(results), "every start has its result"
            launched.append(done)
        return launched

    def _runner(self) -> Runner:
        """The runner, once a start may be made (not while shutting down)."""
        assert self.runner is not None, "RunService.runner must be set before starting runs"
        if self.closing is not None:
            raise ShuttingDownError(self.closing)
        return self.runner

    def _prepare(self, start: StartRequest, uploads: Mapping[str, IncomingFile],
                 ) -> tuple[JobSpec, dict[str, Any], Run, str | None]:
        """A start checked (its errors raised) and its run made, not yet stored: the
        job, the validated values, the new run and its request key."""
        request_id = check_request_id(start.request_id)
        when = check_notify(start.notify)
        spec = self.check_job(start.user, start.job, known=start.schedule is not None)
        values = spec.validate(self._with_files(spec, start.params, uploads))
        key = f"{start.user}\x00{request_id}" if request_id else None
        schedule = start.schedule
        new = Run(id=start.run_id or new_run_id(), job=spec.name, title=spec.title,
                  user=start.user, params=spec.params_json(values),
                  schedule_id=schedule[0] if schedule else None,
                  schedule_name=schedule[1] if schedule else None,
                  notify=when.value if when else None)
        return spec, values, new, key

    def _refusal(self, exc: ActiveLimitError) -> LimitReachedError:
        """The sentence a start refused by the store's limit check gets."""
        if exc.scope == "user":
            return LimitReachedError(
                f"You already have {self.limits.per_user} runs going: stop one or wait "
                "for one to finish, then start again.")
        return LimitReachedError(
            "The server is running as many jobs as it allows right now; "
            "try again when one has finished.")

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
        return self._stop(self.get(user, run_id))

    def _stop(self, run: Run) -> Run:
        if run.state.finished:
            return run
        self.store.request_stop(run.id)
        moved = (self.transition(run.id, RunState.STOPPED) if run.state is RunState.QUEUED
                 else self.transition(run.id, RunState.STOPPING))
        if self.runner is not None:
            self.runner.stop(run.id)
        return moved or self.store.get_run(run.id) or run

    def send_input(self, user: str, run_id: Any, text: Any, *, eof: bool = False) -> Run:
        """Send ``text`` (a string, sent exactly: end it with ``"\\n"`` to end a line) to
        the stdin of ``user``'s run, or end-of-file with ``eof``. Raises
        :class:`RunNotFoundError` as :meth:`get` does, and :class:`InputError` for text
        that is not a string, is empty or longer than ``input_max_bytes``, for a run
        that has ended or whose input has, and for a run holding ``input_max_queued``
        bytes it has not read."""
        run = self.get(user, run_id)
        if not eof:
            if not isinstance(text, str) or not text:
                raise InputError('Send {"text": "..."} with the text to type (end it with '
                                 '"\\n" for a line), or {"eof": true} to end the input.')
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > self.input_max_bytes:
                raise InputTooLargeError(
                    f"The input is {size} bytes, more than the {self.input_max_bytes} one "
                    "send may hold (INPUT_MAX_BYTES): send it in parts.")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError("The input holds characters that are not text (lone "
                                 "surrogates): send valid text.") from None
        if run.state.finished:
            raise InputError(f"This run has ended ({run.state.value}): it reads no more "
                             "input.")
        outcome = self.store.send_input(run.id, None if eof else text,
                                        max_queued=self.input_max_queued)
        if outcome == "closed":
            raise InputError("This run's input has ended (end-of-file was sent): it reads "
                             "no more.")
        if outcome == "full":
            raise InputError(
                f"This run has not read the {self.input_max_queued} bytes of input it holds "
                "(INPUT_MAX_QUEUED_BYTES): wait until it reads some, then send again.")
        return run

    def waiting_for_input(self, run_id: str, prompt: str | None, secret: bool = False,
                          ) -> Run | None:
        """Record that the run waits for input with ``prompt`` (None: it no longer does)
        and announce it as a change of the run; None for a run gone or ended."""
        value = None if prompt is None else {
            "prompt": " ".join(prompt.splitlines())[:MAX_PROMPT_CHARS], "secret": secret}
        for _ in range(20):  # compare-and-set on the state, as transition() does
            current = self.store.get_run(run_id)
            if current is None or current.state.finished:
                return None
            if current.waiting_input == value:
                return current
            moved = replace(current, waiting_input=value)
            if self.store.replace_run(moved, current.state):
                self._announce(moved)
                return moved
        return None
    # -- what admins do (the web tier checks the role first: web/admin.py) -------------
    def get_any(self, run_id: Any) -> Run:
        """Run ``run_id``, whoever's it is; raises :class:`RunNotFoundError` when there is
        none. For admins only: the caller checks the role."""
        run = self.store.get_run(run_id) if isinstance(run_id, str) else None
        if run is None:
            raise RunNotFoundError(str(run_id))
        return run

    def stop_any(self, run_id: Any) -> Run:
        """:meth:`stop` for run ``run_id`` whoever's it is (for admins only)."""
        return self._stop(self.get_any(run_id))

    def list_any(self, *, user: str | None = None, job: str | None = None,
                 state: str | None = None, limit: int = 100) -> list[Run]:
        """Every user's runs (or ``user``'s), newest first, filtered as :meth:`list` does
        (for admins only)."""
        states = [RunState(state)] if state else None
        return self.store.list_runs(user, job=job, states=states, limit=limit)

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
    def transition(self, run_id: str, state: RunState, *, current: Run | None = None,
                   **changes: Any) -> Run | None:
        """Move a run to ``state``; None when the move is not allowed from where it is.

        ``current`` is the record as the caller knows it is stored (the runner's first
        move, from ``queued``: the record :meth:`start` made), tried first instead of
        reading it: one request fewer before the run starts. The save is still a
        compare-and-set on the state: when the run moved meanwhile (stopped while
        queued), it fails and the record is read again. Only for a record whose other
        fields no one changes while it keeps its state (a queued run's)."""
        known = current if current is not None and current.id == run_id else None
        for _ in range(20):  # compare-and-set: another thread or process may move it first
            guessed = known is not None
            current, known = (known if guessed else self.store.get_run(run_id)), None
            if current is None or state not in TRANSITIONS[current.state]:
                if guessed:
                    continue  # the store says, not the caller's copy
                return None
            moved = current.moved_to(state, **changes)
            if self.store.replace_run(moved, current.state):
                if moved.state.finished:  # unread input (a password, say) goes now
                    with contextlib.suppress(StoreUnavailableError):
                        self.store.close_input(run_id)
                self._announce(moved)
                if moved.state.finished:
                    self._forget_old_runs(moved.user)
                return moved
        log.error("run %s: could not move to %s: the record keeps changing", run_id, state)
        return None

    def begin_runs(self, runs: Sequence[Run]) -> Sequence[Run | None]:
        """Move each of ``runs`` (queued, the records :meth:`start_many` made) to
        ``running`` with one request to the store (``RunRecords.replace_runs``: each a
        compare-and-set on ``queued``, ``started_at`` stamped now), each result in its
        place: the moved record, or None for a run no longer queued (stopped
        meanwhile; the caller makes its first move with :meth:`transition`, which reads
        it). The moves are not announced here: the caller announces each
        (:meth:`announce`; the thread runner before it starts the runs' threads)."""
        moves = [run.moved_to(RunState.RUNNING) if run.state is RunState.QUEUED else None
                 for run in runs]
        tried = [(moved, RunState.QUEUED) for moved in moves if moved is not None]
        saved = iter(self.store.replace_runs(tried) if tried else [])
        return [moved if moved is not None and next(saved) else None for moved in moves]

    def announce(self, run: Run) -> None:
        """Tell the listeners (``subscribe``) of ``run``'s change, already saved: a run
        :meth:`begin_runs` moved."""
        self._announce(run)

    def annotate(self, run_id: str, change: Callable[[Run], Run | None]) -> Run | None:
        """Save ``change(run)`` over the stored run without moving it (the notifier's
        record of what it sent, on a finished run), by compare-and-set on its state,
        and announce it as a state change is announced. ``change`` returns None to
        leave the run as it is; None is returned then, and for a run gone."""
        for _ in range(20):
            current = self.store.get_run(run_id)
            changed = change(current) if current is not None else None
            if current is None or changed is None:
                return None
            if changed.state is not current.state or changed.id != current.id:
                raise ValueError("annotate may not move a run: use transition")
            if self.store.replace_run(changed, current.state):
                self._announce(changed)
                return changed
        log.error("run %s: could not save a note: the record keeps changing", run_id)
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
        kept: dict[str, Any] = {"artifacts": listed} if listed else {}
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
