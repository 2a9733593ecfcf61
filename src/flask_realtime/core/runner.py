"""The thread runner: each run in a thread of this process, its output captured.

Stop is cooperative: ``running()`` turns False. An ``async def`` job runs on its own
event loop in the run's thread, and its main task is also cancelled if it is still
going ``stop_grace`` seconds after Stop. Python cannot kill a thread, so a sync job that
ignores ``running()`` stays ``stopping`` until it returns: the state says so honestly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import json
import logging
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .capture import CapturePump
from .capture.stdin import RunStdin
from .files import (
    UPLOAD_PREFIX,
    ArtifactError,
    Artifacts,
    IncomingFile,
    Picture,
    UploadRef,
    is_figure,
    write_upload,
)
from .jobs import JobFailure, JobSpec, RunContext
from .output import SYSTEM
from .ports import ExecutorLiveness, StopRequests, StoreClosedError, StoreUnavailableError
from .runs import Run, RunState
from .service import RunService

log = logging.getLogger(__name__)

#: Results bigger than this are not kept (the output still has everything the job printed).
MAX_RESULT_BYTES = 4 * 1024 * 1024


def checked_result(value: Any) -> tuple[Any, bool, str | None]:
    """(result, has_result, problem): the value if it can be stored as JSON."""
    if value is None:
        return None, False, None
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError) as exc:
        return None, False, f"The job's result was not kept: it is not JSON-serialisable ({exc})."
    if len(encoded) > MAX_RESULT_BYTES:
        return None, False, (f"The job's result was not kept: it is larger than "
                             f"{MAX_RESULT_BYTES // (1024 * 1024)} MiB as JSON.")
    return value, True, None


#: The error of a run this process ended because it was shutting down.
SHUTDOWN_ERROR = "The server was shut down."
#: The line a run's output gets when its job is asked to stop for a shutdown.
SHUTDOWN_STOP_LINE = "Shutting down: the job was asked to stop (running() is now False)."

#: Runs a batch (``ThreadRunner.submit_many``) moves to ``running`` per store request.
MOVE_CHUNK = 64
#: The longest a batch's run waits, its job done, for the batch's other jobs to begin.
BATCH_END_WAIT_SECONDS = 10.0
#: How long the end of a run is retried while the store is unavailable.
FINISH_WAIT_SECONDS = 300.0
#: After a stop check found the store unavailable, how long until the next one: the
#: check runs on the job's thread, and a store that is away must cost the job nothing.
UNAVAILABLE_CHECK_SECONDS = 1.0


class StopSignal:
    """The job's ``running()``: False once Stop was asked, here or in another process.

    A stop asked in this process sets the event at once. A stop asked elsewhere (another
    web process, with Redis) is seen in the store, which is read at most every
    ``check_every`` seconds however often the job polls, and while the store is away
    at most every ``UNAVAILABLE_CHECK_SECONDS`` (the job keeps running meanwhile).

    :meth:`shut_down` stops it because the process is going away: ``reason`` is then
    the run's error, and the run ends ``failed`` however the job returns. Setting
    ``reason`` alone (what a signal handler may do: it must not take a lock the
    interrupted thread holds) has the next ``running()`` carry the stop out.
    """

    def __init__(self, store: StopRequests, run_id: str, on_stop: Callable[[], None] | None = None,
                 check_every: float = 0.25) -> None:
        self.store = store
        self.run_id = run_id
        self.event = threading.Event()
        self.on_stop = on_stop
        self.check_every = check_every
        self._next_check = time.monotonic() + check_every
        self._lock = threading.Lock()
        self.reason: str | None = None
        #: The line the run's output gets at the stop, when not the usual one.
        self.stop_line: str | None = None
        #: Called once the job has returned, before the run's end is made (a batch's
        #: :meth:`BatchStart.wait`); None: nothing to wait for.
        self.before_end: Callable[[], None] | None = None
        #: Called right before the job's own code is called, once its uploads and
        #: folder are ready (a batch's :meth:`BatchStart.began`); None: nothing.
        self.before_job: Callable[[], None] | None = None

    def expire(self, reason: str, line: str) -> None:
        """Stop the job because it reached a limit (its timeout): ``line`` goes into the
        output, and the run ends failed with ``reason``. Nothing if stopped already."""
        with self._lock:
            if self.event.is_set():
                return
            self.reason, self.stop_line = reason, line
        self.stop()
        #: Seconds a job has after Stop before it is forced (set by :func:`run_job` to
        #: the runner's ``stop_grace``): a command job's process group is killed then.
        self.grace = 2.0

    def shut_down(self, reason: str = SHUTDOWN_ERROR) -> None:
        """Stop the job for a shutdown: the run ends failed with ``reason``."""
        self.reason = reason
        self.stop()

    def stop(self) -> None:
        """Stop the run: ``running()`` is False from now on. ``on_stop`` is called once,
        before the job can see the stop; later calls do nothing. Thread-safe."""
        with self._lock:
            if not self.event.is_set():
                if self.on_stop is not None:
                    self.on_stop()  # "Stop requested." before the job can see it and print
                self.event.set()

    def when_stopped(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` at Stop; at once if Stop came first (it can: Stop is
        possible as soon as the run is seen running, before its thread got this far)."""
        with self._lock:
            self.on_stop = callback
            if self.event.is_set():
                callback()

    def __call__(self) -> bool:
        if self.event.is_set():
            return False
        if self.reason is not None:  # set by a signal handler: the stop is done here
            self.stop()
            return False
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_every
            try:
                if self.store.stop_requested(self.run_id):
                    self.stop()
                    return False
            except StoreUnavailableError:  # keep running; the stop is seen when it is back
                self._next_check = now + max(self.check_every, UNAVAILABLE_CHECK_SECONDS)
        return True


class Heartbeat:
    """Tells the store, every ``interval`` seconds, that this process still runs its runs.

    A run whose heartbeat stops (the process was killed) is marked failed by the
    executor-loss check of a web process (see :func:`reap_lost_runs`). The thread starts
    with the first run; :meth:`close` ends it (a run added later starts a new one).
    """

    def __init__(self, store: ExecutorLiveness, *, interval: float = 1.0,
                 ttl: float = 5.0) -> None:
        self.store = store
        self.interval = interval
        self.ttl = ttl
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ending = threading.Event()  # the running thread's: set by close

    def add(self, run_id: str) -> None:
        """Beat for ``run_id`` now, then every ``interval`` until :meth:`remove`; starts
        the thread if none runs. A store that is away is skipped, not raised.
        Thread-safe."""
        self._beat(run_id)
        self._follow([run_id])

    def add_many(self, run_ids: list[str]) -> None:
        """:meth:`add` for each of ``run_ids`` (a batch of runs about to start), their
        first beats in one request to the store: the batch's threads then take no
        lock of the heartbeat's as they begin. Thread-safe."""
        if not run_ids:
            return
        with contextlib.suppress(StoreUnavailableError):
            self.store.beat_many(run_ids, self.ttl)
        self._follow(run_ids)

    def _follow(self, run_ids: list[str]) -> None:
        """Beat for ``run_ids`` every ``interval`` from now on, the thread started if none
        runs."""
        with self._lock:
            self._runs.update(run_ids)
            if self._thread is None:
                self._ending = threading.Event()
                self._thread = threading.Thread(target=self._loop, args=(self._ending,),
                                                daemon=True, name="flask-realtime-heartbeat")
                self._thread.start()

    def remove(self, run_id: str) -> None:
        """Stop beating for ``run_id`` (its key then expires after ``ttl``); unknown ids are
        ignored. Thread-safe."""
        with self._lock:
            self._runs.discard(run_id)

    def _beat(self, run_id: str) -> None:
        with contextlib.suppress(StoreUnavailableError):
            self.store.beat(run_id, self.ttl)

    def close(self, wait: float = 5.0) -> None:
        """Stop beating and end the thread (waiting up to ``wait`` seconds for it)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._ending.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def _loop(self, ending: threading.Event) -> None:
        while not ending.wait(self.interval):
            with self._lock:
                runs = list(self._runs)
            for run_id in runs:
                self._beat(run_id)


class Deadlines:
    """One thread that calls each callback once its deadline has passed.

    ``at(key, delay, callback)`` calls ``callback()`` ``delay`` seconds from now, on the
    scheduler's own thread (started at the first deadline); a key already waiting keeps
    its first deadline, so a Stop sent 3,000 times arms one deadline, not 3,000 timers
    (docs/reliability.md, 13.5). Callbacks must be quick: slow work is handed on.
    :meth:`close` ends the thread; the deadlines still waiting are dropped.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._heap: list[tuple[float, str, Callable[[], None]]] = []
        self._waiting: set[str] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def at(self, key: str, delay: float, callback: Callable[[], None]) -> bool:
        """Arm ``key``'s deadline; False if it was armed already (nothing changes)."""
        with self._changed:
            if key in self._waiting or self._closed:
                return False
            self._waiting.add(key)
            heapq.heappush(self._heap, (time.monotonic() + delay, key, callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._changed.notify()
        return True

    def close(self, wait: float = 5.0) -> None:
        """End the thread, dropping the deadlines still waiting; :meth:`at` arms no more."""
        with self._changed:
            self._closed = True
            self._heap.clear()
            self._waiting.clear()
            thread, self._thread = self._thread, None
            self._changed.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def _loop(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (
                        not self._heap or self._heap[0][0] > time.monotonic()):
                    self._changed.wait(self._heap[0][0] - time.monotonic() if self._heap
                                       else None)
                if self._closed:
                    return
                _, key, callback = heapq.heappop(self._heap)
                self._waiting.discard(key)
            try:
                callback()
            except Exception:  # one failing deadline must not end the others'
                log.exception("the deadline of %s failed", key)


def reap_lost_runs(service: RunService, suspects: set[str]) -> list[str]:
    """Fail the runs whose executor stopped beating (killed process): output is kept,
    a marker line says what happened, and the run is never started again.

    A run is failed only when its heartbeat is missing at two calls in a row
    (``suspects`` carries them over), so an executor that could not beat while the
    store was away gets a chance to beat again first.
    """
    missing = {run.id for run in service.store.list_runs(
        states=(RunState.RUNNING, RunState.STOPPING), limit=10_000)
        if not service.store.executor_alive(run.id)}
    return fail_confirmed(
        service, missing, suspects, error="executor lost",
        line="The process running this job was lost (killed or crashed): the run failed; "
             "the output above is what it printed.")


def fail_confirmed(service: RunService, missing: set[str], suspects: set[str], *,
                   error: str, line: str) -> list[str]:
    """Fail the runs of ``missing`` that were already ``suspects`` (missing at the
    previous check too), with ``line`` as their last output; then the rest of
    ``missing`` are the suspects for the next check. Returns the runs failed."""
    failed: list[str] = []
    for run_id in missing & suspects:
        service.store.append_output(run_id, [(SYSTEM, line, "\n")], int(time.time() * 1000))
        if service.transition(run_id, RunState.FAILED, error=error) is not None:
            failed.append(run_id)
    suspects.clear()
    suspects.update(missing - set(failed))
    return failed


class UploadGoneError(Exception):
    """A run's uploaded file is not in the store (deleted, or the store was emptied):
    the run fails with this sentence, before its job is called."""


def prepare_uploads(store: Any, run_id: str, spec: JobSpec, params: Mapping[str, Any],
                    folder: Path | None) -> dict[str, Any]:
    """``params`` with each file parameter's upload (an :class:`IncomingFile`, or a
    record's :class:`UploadRef` read from the store) written to ``folder`` and given
    as an :class:`~.files.Upload`. Raises :class:`UploadGoneError`."""
    prepared = dict(params)
    for name in spec.file_params:
        value = params.get(name)
        if value is None:
            continue
        assert folder is not None, "a job with file parameters gets a folder"
        if isinstance(value, IncomingFile):
            data: bytes | None = value.data
        else:
            data = store.get_blob(run_id, UPLOAD_PREFIX + name)
        if data is None:
            raise UploadGoneError(f"The file uploaded for {name!r} is not stored any more, "
                                  "so the job was not started: start it again with the file.")
        filename = value.filename if isinstance(value, IncomingFile | UploadRef) else "upload"
        prepared[name] = write_upload(folder, name, data, filename)
    return prepared


def keep_pictures(value: Any, artifacts: Artifacts) -> tuple[Any, list[str]]:
    """A job's return value with the pictures in it kept as artifacts: a
    :class:`~.files.Picture` or a matplotlib figure, or a list or tuple of nothing
    else, becomes artifacts (``picture.png``, ``picture-2.png``, ...) and the result
    None. Returns (result, sentences for pictures that could not be kept)."""
    items = list(value) if isinstance(value, list | tuple) and value else [value]
    if not all(isinstance(item, Picture) or is_figure(item) for item in items):
        return value, []
    problems: list[str] = []
    for number, item in enumerate(items, 1):
        try:
            picture = item if isinstance(item, Picture) else Picture(item)
            name = picture.name
            if name in ("picture.png", "picture.jpg") and len(items) > 1:
                stem, dot, suffix = name.rpartition(".")
                name = f"{stem}-{number}{dot}{suffix}" if number > 1 else name
            artifacts.save(name, picture)
        except Exception as exc:  # a figure's own savefig may raise anything
            why = str(exc) if isinstance(exc, ArtifactError | ValueError |
                                         StoreUnavailableError) else (
                f"{type(exc).__name__}: {exc}")
            problems.append(f"A picture the job returned was not kept: {why}")
    return None, problems


def run_job(service: RunService, pump: CapturePump, run: Run, spec: JobSpec,
            params: Mapping[str, Any], context: RunContext, running: StopSignal,
            stop_grace: float, *, output_bytes: int | None = None) -> None:
    """Execute one run in the calling thread, from ``running`` to its final state.
    ``output_bytes``: the run's output limit; past it the rest is dropped, ``running()``
    turns False and the run fails with :func:`output_limit_error`.

    The job gets its uploads as files of a temp folder of the run's own, and its
    ``context.artifacts`` (docs/jobs.md, "Files in", "Artifacts"); when it returns,
    the files it left under ``artifacts.path`` and the pictures it returned are kept,
    listed on the run's record, and the temp folder is deleted."""
    capture = pump.open(run.id)
    if output_bytes:
        pump.limit_output(capture, output_bytes, lambda: running.expire(
            output_limit_error(output_bytes),
            f"The job wrote more than its output limit of {output_bytes} bytes: the rest "
            "is dropped, and it was asked to stop (running() is now False)."))
    running.when_stopped(lambda: capture.system(running.stop_line or (
        SHUTDOWN_STOP_LINE if running.reason is not None else "Stop requested.")))
    running.grace = stop_grace
    capture.stdin = RunStdin(service.store, run.id, capture, running,
                             on_wait=lambda prompt, secret: service.waiting_for_input(
                                 run.id, prompt, secret))
    previous = pump.attach(capture)
    error: str | None = None
    stopped = False
    value: Any = None
    folder: Path | None = None
    budget = service.limits.artifact_bytes
    artifacts = Artifacts(service.store, run.id, budget=budget)
    try:
        if spec.file_params or spec.context_arg:  # a job that may read or write files
            folder = Path(tempfile.mkdtemp(prefix="flask-realtime-run-"))
            artifacts = Artifacts(service.store, run.id, budget=budget, workdir=folder)
        values = prepare_uploads(service.store, run.id, spec, params, folder)
        call = spec.bind(running, values, dataclasses.replace(context, artifacts=artifacts))
        if running.before_job is not None:
            running.before_job()
        value = asyncio.run(_supervise(call(), running, stop_grace)) if spec.is_async else call()
    except asyncio.CancelledError:
        stopped = True
    except JobFailure as exc:  # a failure the job states itself: no traceback
        error = str(exc)[:2000]
        capture.system(f"Failed: {error}.")
    except UploadGoneError as exc:
        capture.system(str(exc))
        error = str(exc)
    except BaseException as exc:  # the server survives whatever a job raises
        traceback.print_exc()  # into the run's stderr: this thread is captured
        error = f"{type(exc).__name__}: {exc}"[:2000]
    if running.before_end is not None:
        running.before_end()
    if running.reason is not None and error is None:  # cut short by a shutdown
        error, value = running.reason, None
    value, problems = keep_pictures(value, artifacts)
    try:
        problems += artifacts.collect()
    except Exception as exc:  # the store away, a folder the job made unreadable, ...
        problems.append(f"The files under artifacts.path were not kept: {exc}")
    for line in problems:
        capture.system(line)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    result, has_result, problem = checked_result(value)
    if problem:
        capture.system(problem)
    pump.detach(previous)
    pump.close(capture)  # every line is stored before the run is seen to end
    # A stop asked elsewhere is in the store, and finish() reads it there.
    stopped = stopped or running.event.is_set()
    finish_run(service, run.id, error=error, stopped=stopped, result=result,
               has_result=has_result, artifacts=artifacts.listing())


def output_limit_error(limit: int) -> str:
    """The error of a run that wrote more than ``limit`` bytes."""
    return f"The job wrote more than its output limit of {limit} bytes."


def finish_run(service: RunService, run_id: str, *, error: str | None, stopped: bool,
               result: Any, has_result: bool,
               artifacts: list[dict[str, Any]] | None = None) -> None:
    """:meth:`RunService.finish`, retried for :data:`FINISH_WAIT_SECONDS` while the
    store is unavailable: the end of a run must not be lost."""
    deadline = time.monotonic() + FINISH_WAIT_SECONDS
    while True:
        try:
            service.finish(run_id, error=error, stopped=stopped, result=result,
                           has_result=has_result, artifacts=artifacts)
            return
        except StoreUnavailableError as exc:
            if isinstance(exc, StoreClosedError) or time.monotonic() > deadline:
                # Nothing left to tell: the next start (SQLite) or the executor-loss
                # check (Redis) ends the run as interrupted, its output kept.
                log.warning("run %s ended, but its end could not be stored: %s", run_id, exc)
                return
            time.sleep(0.5)


async def _supervise(job: Awaitable[Any], running: Callable[[], bool], stop_grace: float) -> Any:
    """Await the job; once Stop is older than the grace period, cancel it."""
    task = asyncio.ensure_future(job)
    loop = asyncio.get_running_loop()
    deadline: float | None = None
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.05)
        if done:
            return task.result()
        if not running():
            if deadline is None:
                deadline = loop.time() + stop_grace
            elif loop.time() >= deadline and not task.cancelling():
                task.cancel()


class BatchStart:
    """The runs of one batch (a scheduler round, ``ThreadRunner.submit_many``) end only
    once every one of them has begun its job (or waited :data:`BATCH_END_WAIT_SECONDS`):
    the interpreter's lock goes from thread to thread in no set order, and the ends of
    the first runs (each a dozen requests to the store, events, the notifier's plan)
    kept the last ones' jobs from beginning for seconds (docs/performance.md,
    "Schedules"). Thread-safe."""

    def __init__(self, count: int, done: threading.Event | None = None) -> None:
        self._left = count
        self._changed = threading.Condition()
        #: Set once every run of the batch has begun (at once for an empty batch).
        self.done = done if done is not None else threading.Event()
        if count <= 0:
            self.done.set()

    def began(self) -> None:
        """One run of the batch has begun its job (or will not run one)."""
        with self._changed:
            self._left -= 1
            if self._left <= 0:
                self._changed.notify_all()
                self.done.set()

    def wait(self) -> None:
        """Until every run of the batch has begun (at most BATCH_END_WAIT_SECONDS)."""
        with self._changed:
            self._changed.wait_for(lambda: self._left <= 0, BATCH_END_WAIT_SECONDS)


class ThreadRunner:
    """Executes each run on a daemon thread of this process, with :func:`run_job`.

    While a run executes, its heartbeat is kept (``heartbeat``) and its :class:`StopSignal`
    is held, so :meth:`stop` reaches the job at once. Stop is cooperative: an ``async``
    job's task is cancelled ``stop_grace`` seconds after it, a sync job that ignores
    ``running()`` stays ``stopping`` until it returns (a thread cannot be killed).
    Thread-safe."""

    def __init__(self, service: RunService, pump: CapturePump, *, stop_grace: float = 2.0) -> None:
        self.service = service
        self.pump = pump
        self.stop_grace = stop_grace
        self.heartbeat = Heartbeat(service.store)
        self._signals: dict[str, StopSignal] = {}
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)  # notified as each run's thread ends
        self._shutting_down = False

    def submit(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
               context: RunContext) -> None:
        """Start executing ``run`` on a new thread and return at once. A run stopped while
        still queued is not executed."""
        with self._lock:
            self._signals[run.id] = StopSignal(self.service.store, run.id)
        self._thread(run, spec, params, context).start()

    def submit_many(self, starts: Sequence[tuple[Run, JobSpec, Mapping[str, Any],
                                                 RunContext]],
                    began: threading.Event | None = None) -> list[Exception | None]:
        """:meth:`submit` for each ``(run, spec, params, context)`` (``BatchRunner``,
        core/service.py), each result (None, or the error starting its thread raised)
        in its place. The batch's runs are moved queued -> running, one store request
        per :data:`MOVE_CHUNK` (:meth:`RunService.begin_runs`, ``started_at`` stamped
        then), their first heartbeats are one request (and they are added to the
        heartbeat at once), the moves are announced (here, one after the other), and
        each run's thread is started, already running: once every thread of the batch
        is started, each executes its job, without a first move or an announcement of
        its own. ``began`` (when given) is set once every run of the batch has begun
        its job or will not run one (:class:`BatchStart`): the caller's own work after
        the launch can wait for it rather than compete with the runs' starts. A run
        no longer queued (stopped meanwhile), or a chunk whose move failed (the store
        away), or the whole batch when the process is shutting down, is left to its
        thread's own first move, as :meth:`submit` does (a stopped run is then not
        executed)."""
        with self._lock:
            for run, *_rest in starts:
                self._signals[run.id] = StopSignal(self.service.store, run.id)
        runs = [run for run, *_rest in starts]
        begun: list[Run | None] = [None] * len(starts)
        if not self._shutting_down:
            for i in range(0, len(runs), MOVE_CHUNK):
                try:
                    begun[i:i + MOVE_CHUNK] = self.service.begin_runs(runs[i:i + MOVE_CHUNK])
                except StoreUnavailableError:
                    log.warning("%d runs: the batched first move failed (store "
                                "unavailable); each run's thread tries its own",
                                len(runs[i:i + MOVE_CHUNK]))
            self.heartbeat.add_many([moved.id for moved in begun if moved is not None])
            # Announced here, one after the other, before any thread starts: from the
            # runs' own threads, 1,000 at once, each announcement (a read of the output's
            # end, a publish) waited for the CPU behind all the others, twice.
            for moved in begun:
                with self._lock:
                    signal = self._signals.get(moved.id) if moved is not None else None
                if moved is not None and signal is not None and not signal.event.is_set():
                    self.service.announce(moved)  # unless a stop here came first
        errors: list[Exception | None] = []
        gate = threading.Event()  # every thread started before any runs its job
        batch = BatchStart(len(starts), began)  # and every job begun before any run ends
        try:
            for (run, spec, params, context), moved in zip(starts, begun, strict=True):
                try:
                    self._thread(run, spec, params, context, moved, gate, batch).start()
                    errors.append(None)
                except Exception as exc:  # no thread to be had: the run cannot execute here
                    batch.began()
                    self.heartbeat.remove(run.id)
                    with self._ended:
                        self._signals.pop(run.id, None)
                    if moved is not None:
                        with contextlib.suppress(StoreUnavailableError):
                            self.service.transition(run.id, RunState.FAILED,
                                                    error=f"Could not be started: {exc}")
                    errors.append(exc)
        finally:
            gate.set()
        return errors

    def _thread(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
                context: RunContext, begun: Run | None = None,
                gate: threading.Event | None = None,
                batch: BatchStart | None = None) -> threading.Thread:
        """The (not yet started) thread that executes ``run`` (:meth:`_execute`)."""
        return threading.Thread(
            target=self._execute, args=(run, spec, params, context, begun, gate, batch),
            name=f"flask-realtime-run-{run.id}", daemon=True)

    def stop(self, run_id: str) -> None:
        """Signal Stop to the run if it executes in this process (nothing otherwise: a stop
        in another process is seen through the store). Never blocks."""
        with self._lock:
            signal = self._signals.get(run_id)
        if signal is not None:
            signal.stop()

    def shutdown(self, grace: float) -> list[str]:
        """End this process's runs for a shutdown (docs/deployment.md, "Graceful
        shutdown"): each has ``grace`` seconds to end as it would; then those still
        going are asked to stop (``running()`` turns False) and end ``failed`` with
        :data:`SHUTDOWN_ERROR`; ``stop_grace`` seconds later, those whose job still
        has not returned are failed here with a line saying so (their output so far
        is kept). A run submitted after this call is failed without starting.
        Returns the runs failed here, the last kind."""
        with self._ended:
            self._shutting_down = True
            self._wait_for_runs(time.monotonic() + grace)
            going = list(self._signals.values())
        for signal in going:
            signal.shut_down(SHUTDOWN_ERROR)
        with self._ended:
            self._wait_for_runs(time.monotonic() + self.stop_grace)
            left = list(self._signals)
        failed: list[str] = []
        for run_id in left:
            try:
                self.service.store.append_output(run_id, [(
                    SYSTEM, f"The job did not return within {self.stop_grace:g} s of the "
                            "shutdown: the run failed; the output above is what it printed.",
                    "\n")], int(time.time() * 1000))
                if self.service.transition(run_id, RunState.FAILED,
                                           error=SHUTDOWN_ERROR) is not None:
                    failed.append(run_id)
            except StoreUnavailableError:
                log.warning("run %s: could not be failed at shutdown (store unavailable)",
                            run_id)
        return failed

    def _wait_for_runs(self, deadline: float) -> None:
        """Wait (holding ``_ended``) until no run is left or ``deadline`` has passed."""
        while self._signals and (left := deadline - time.monotonic()) > 0:
            self._ended.wait(left)

    def close(self) -> None:
        """End the heartbeat's thread. Runs still executing are not waited for (their
        threads end with the process); in a store shared with other processes they
        are then seen as lost."""
        self.heartbeat.close()

    def _run(self, run: Run, spec: JobSpec, params: Mapping[str, Any], context: RunContext,
             signal: StopSignal) -> None:
        """Execute the run, now ``running``, in this thread: :func:`run_job`."""
        run_job(self.service, self.pump, run, spec, params, context, signal, self.stop_grace)

    def _execute(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
                 context: RunContext, begun: Run | None = None,
                 gate: threading.Event | None = None,
                 batch: BatchStart | None = None) -> None:
        """The run's thread: its first move (queued -> running), unless ``begun`` is the
        record :meth:`submit_many` moved (and announced, unless a stop in this process
        came first: its own change was announced), then the job. With a ``gate`` (a
        batch's), nothing until every thread of the batch has been started: the
        batch's starter does not share the CPU with the runs it has started; with a
        ``batch``, the run ends once every job of the batch has begun
        (:class:`BatchStart`)."""
        if gate is not None:
            gate.wait()
        with self._lock:
            signal = self._signals[run.id]
        if begun is None:  # a batch's moved runs were added by submit_many
            self.heartbeat.add(run.id)
        counted = batch is None

        def began() -> None:  # once, on this thread: right before the job, or at the end
            nonlocal counted
            if not counted and batch is not None:
                counted = True
                batch.began()

        try:
            if begun is not None:
                pass  # moved, and announced, by submit_many
            elif self._shutting_down:  # submitted as the process began to shut down
                self.service.transition(run.id, RunState.FAILED, error=SHUTDOWN_ERROR)
                return
            elif self.service.transition(run.id, RunState.RUNNING, current=run) is None:
                return  # stopped while queued
            if batch is not None:
                waited = batch

                def before_end() -> None:  # a job that failed before its code counts too
                    began()
                    waited.wait()

                signal.before_job = began
                signal.before_end = before_end
            self._run(run, spec, params, context, signal)
        finally:
            began()
            self.heartbeat.remove(run.id)
            with self._ended:
                self._signals.pop(run.id, None)
                self._ended.notify_all()
