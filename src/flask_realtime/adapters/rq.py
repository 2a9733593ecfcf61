"""The RQ runner: runs execute on RQ workers (``flask-realtime worker``), on any machine.

The web process enqueues only the run id (JSON serializer, never pickle); the worker's
work-horse reads the run record from the store, validates its parameters again, and
executes it with :func:`~..core.runner.run_job`, so capture, ``running()``, results and
states behave exactly as with the thread runner. Output goes to the run's stream in
Redis, which every web process tails.

Stop is staged (docs/scale-out.md, "Stop"): the stop request is stored, the job's
``running()`` sees it within 0.1 s; if the run has not ended ``stop_grace`` seconds
later, the web process that took the Stop sends RQ's stop-job command, the worker
kills the work-horse's process group, and the run ends ``stopped`` with its output
kept and a line saying it was forced. The deadline is kept in Redis too (:data:`STOP_DEADLINES`),
so when that web process dies during the grace period another one forces the stop
(:meth:`RQRunner.force_overdue_stops`, from every web process's reaper): a job that
ignores ``running()`` never stays ``stopping`` for good. A work-horse or worker killed
any other way stops its heartbeat, and the executor-loss check fails the run; RQ
never runs it again.

Redis errors of the queue and of the deadlines become
:class:`~..core.ports.StoreUnavailableError`, as the Redis store's do, so callers handle
one error whichever part of Redis was away.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from rq import Queue, Worker, get_current_job
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from redis import Redis, RedisError

from ..core.capture import CapturePump
from ..core.isolation import run_job_in_process, timeout_timer
from ..core.jobs import JobError, JobLimits, JobSpec, RunContext
from ..core.output import SYSTEM
from ..core.ports import StoreUnavailableError
from ..core.runner import Deadlines, Heartbeat, StopSignal, fail_confirmed, run_job
from ..core.runs import Run, RunState
from ..core.service import RunService
from ..logs import bind, current_request_id
from ..store.redis import UNAVAILABLE, P

log = logging.getLogger(__name__)

QUEUE_NAME = "flask-realtime"
#: A job waiting longer than this in the queue is dropped by RQ, and the run fails
#: (``QUEUE_TTL_SECONDS`` in the configuration).
QUEUE_TTL_SECONDS = 24 * 3600
#: RQ job states in which a job will never execute: a run still queued then is failed.
_NEVER_RUNS = {JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value,
               JobStatus.FINISHED.value}


#: Runs whose Stop was asked, scored by the Redis time (s) their grace period ends.
STOP_DEADLINES = P + "stop-deadlines"
#: A process that claimed a forced stop has this long before another may try again
#: (it waits up to 30 s for the work-horse to go).
FORCE_LEASE_SECONDS = 40.0
#: Forced stops carried out at the same time by one web process; more wait their turn.
FORCE_WORKERS = 4

#: KEYS: deadlines. ARGV: run id, now, lease. 1 if the stop was due and is now ours:
#: its deadline moves past the lease, so exactly one process forces it at a time.
_CLAIM = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
return 1
"""


def rq_job_id(run_id: str) -> str:
    """The RQ job id of a run: one job per run, so RQ's own records can be looked up."""
    return f"flask-realtime-{run_id}"


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Redis errors become :class:`StoreUnavailableError`, as in the Redis store."""
    try:
        yield
    except RedisError as exc:
        raise StoreUnavailableError(UNAVAILABLE) from exc


class RQRunner:
    """Runner for the web tier: enqueue runs, and force stops that are not honoured."""

    def __init__(self, service: RunService, redis_url: str, *, stop_grace: float = 2.0,
                 queue_ttl: float = QUEUE_TTL_SECONDS) -> None:
        self.service = service
        self.stop_grace = stop_grace
        self.queue_ttl = queue_ttl
        self._dropped_suspects: set[str] = set()
        # Timeouts: with Redis away, Stop and the reaper must fail fast, never hang.
        self.connection = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.queue = Queue(QUEUE_NAME, connection=self.connection, serializer=JSONSerializer)
        self._claim = self.connection.register_script(_CLAIM)
        # One thread keeps every stop's deadline, a few force them: a burst of Stops
        # costs no thread each (docs/reliability.md, 13.5).
        self._deadlines = Deadlines("flask-realtime-stop-deadlines")
        self._forcing = ThreadPoolExecutor(max_workers=FORCE_WORKERS,
                                           thread_name_prefix="flask-realtime-force")
        self._forcing_now: set[str] = set()  # run ids being forced, or waiting to be
        self._forcing_lock = threading.Lock()
        self._closing = threading.Event()  # set by close: forced stops give up their wait

    def submit(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
               context: RunContext) -> None:
        """Enqueue the run's id for a worker (:func:`execute`); warn in the run's output
        when no worker is listening. Raises :class:`StoreUnavailableError` when Redis
        cannot be reached."""
        with _translated():
            self.queue.enqueue("flask_realtime.adapters.rq.execute", run.id,
                               job_id=rq_job_id(run.id), job_timeout=-1,
                               ttl=max(1, round(self.queue_ttl)), result_ttl=3600,
                               failure_ttl=7 * 24 * 3600,
                               # The worker's log lines for the run carry it (logs.py).
                               meta={"request_id": current_request_id()})
        try:
            workers = Worker.count(queue=self.queue)
        except RedisError:
            return  # only a hint: the run is queued all the same
        if not workers:
            self.service.store.append_output(run.id, [(
                SYSTEM, f"No worker is taking runs from the queue {QUEUE_NAME!r} right now: "
                        "this run waits until one starts (flask-realtime worker).", "\n")],
                int(time.time() * 1000))

    def fail_dropped_runs(self) -> list[str]:
        """Fail queued runs that no worker will ever take: RQ dropped their job (it
        waited longer than the queue's TTL) or ended it without running it (a worker
        died as it took it). Checked at two calls in a row, so a run between being
        stored and being enqueued is never taken for one. Raises
        :class:`StoreUnavailableError` when Redis cannot be reached."""
        queued = [run.id for run in self.service.store.list_runs(
            states=(RunState.QUEUED,), limit=10_000)]
        if not queued:
            self._dropped_suspects.clear()
            return []
        with _translated(), self.connection.pipeline(transaction=False) as pipe:
            for run_id in queued:
                pipe.hget(Job.key_for(rq_job_id(run_id)), "status")
            statuses = pipe.execute()
        gone = {run_id for run_id, status in zip(queued, statuses, strict=True)
                if status is None or status.decode() in _NEVER_RUNS}
        return fail_confirmed(
            self.service, gone, self._dropped_suspects, error="dropped from the queue",
            line=f"This run was dropped from the queue and will not run: no worker took it "
                 f"within {self.queue_ttl:g} s (QUEUE_TTL_SECONDS), or the worker that took "
                 "it ended before starting it. Start it again.")

    def reap(self) -> None:
        """The web process's periodic checks for RQ runs, called by the System's
        reaper (core/system.py). Raises :class:`StoreUnavailableError` when Redis
        cannot be reached."""
        with _translated():
            self.force_overdue_stops()
            for run_id in self.fail_dropped_runs():
                log.warning("run %s failed: it was dropped from the queue", run_id)

    def close(self, wait: float = 5.0) -> None:
        """End the deadline thread and the forced-stop pool, then drop the connection.

        A stop whose grace has not ended is left to Redis's deadline (another web
        process forces it); a forced stop still waiting for its work-horse gives up
        the wait without marking the run, and its lease lets another process finish it.
        """
        self._closing.set()
        self._deadlines.close(wait)
        self._forcing.shutdown(wait=True, cancel_futures=True)
        self.connection.close()

    def stop(self, run_id: str) -> None:
        """Arm the forced stop: here on the deadline thread, and in Redis for any other
        web process. A repeated Stop keeps the first deadline, in both places."""
        try:
            self.connection.zadd(STOP_DEADLINES, {run_id: self._now() + self.stop_grace},
                                 nx=True)
        except RedisError:
            log.warning("run %s: the stop deadline could not be kept in Redis; only this "
                        "process will force the stop", run_id)
        self._deadlines.at(run_id, self.stop_grace + 0.05, lambda: self._force_soon(run_id))

    def force_overdue_stops(self) -> list[str]:
        """Force the stops whose grace period ended, whichever process took them.

        Cheap when there are none (one ``ZRANGEBYSCORE``); the due ones are forced on
        a pool of ``FORCE_WORKERS`` threads, since forcing waits for the work-horse to go.
        Raises :class:`StoreUnavailableError` when Redis cannot be reached.
        """
        with _translated():
            found = self.connection.zrangebyscore(STOP_DEADLINES, "-inf", self._now())
        due = [r.decode() for r in cast(list[bytes], found)]
        for run_id in due:
            self._force_soon(run_id)
        return due

    def _force_soon(self, run_id: str) -> None:
        """Force ``run_id``'s stop on the pool, unless it is there already."""
        with self._forcing_lock:
            if run_id in self._forcing_now:
                return
            self._forcing_now.add(run_id)
        self._forcing.submit(self._force_on_pool, run_id)

    def _force_on_pool(self, run_id: str) -> None:
        try:
            self._force_if_due(run_id)
        except Exception:  # the pool would keep it in a future nobody reads
            log.exception("forcing the stop of run %s failed", run_id)
        finally:
            with self._forcing_lock:
                self._forcing_now.discard(run_id)

    def _now(self) -> float:
        """Redis's clock: the same for every web process, whatever the hosts' clocks say."""
        seconds, micros = self.connection.time()
        return float(seconds) + micros / 1e6

    def _force_if_due(self, run_id: str) -> None:
        try:
            if not self._claim(keys=[STOP_DEADLINES],
                               args=[run_id, self._now(), FORCE_LEASE_SECONDS]):
                return  # not due, already forced, or another process is at it
            if self._force_stop(run_id):
                self.connection.zrem(STOP_DEADLINES, run_id)
        except (RedisError, StoreUnavailableError):
            log.warning("could not force the stop of run %s now (Redis unavailable): "
                        "another try follows when the lease ends", run_id)

    def _force_stop(self, run_id: str) -> bool:
        """Kill the run's work-horse and mark the run stopped; False if :meth:`close`
        came first (the stop is left to another process)."""
        run = self.service.store.get_run(run_id)
        if run is None or run.state.finished:
            return True
        try:
            send_stop_job_command(self.connection, rq_job_id(run_id),
                                  serializer=JSONSerializer)
        except (InvalidJobOperation, NoSuchJobError):
            return True  # not executing (any more): it ends by itself
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the work-horse is gone
            if self._closing.is_set():
                return False
            try:
                status = Job.fetch(rq_job_id(run_id), connection=self.connection,
                                   serializer=JSONSerializer).get_status()
            except NoSuchJobError:
                break
            if status in (JobStatus.STOPPED, JobStatus.FAILED, JobStatus.FINISHED,
                          JobStatus.CANCELED):
                break
            time.sleep(0.1)
        self.service.store.append_output(run_id, [(
            SYSTEM, f"The job did not return within {self.stop_grace:g} s of Stop: its "
                    "process was ended.", "\n")], int(time.time() * 1000))
        self.service.transition(run_id, RunState.STOPPED)
        return True


def rq_runner(service: RunService, pump: CapturePump, config: Mapping[str, Any]) -> RQRunner:
    """The RQ :data:`~..core.system.RunnerFactory`: the System's runner enqueues, and
    its reaper forces overdue stops and fails dropped runs."""
    return RQRunner(service, str(config["REDIS_URL"]),
                    stop_grace=float(config["STOP_GRACE_SECONDS"]),
                    queue_ttl=float(config["QUEUE_TTL_SECONDS"]))


@dataclass
class WorkerContext:
    """What a work-horse needs: the parts of the worker's System (core/system.py), and
    how long a stopped async job has before it is cancelled."""

    service: RunService
    pump: CapturePump
    services_for: Callable[[str], Mapping[str, Any]]
    stop_grace: float = 2.0
    #: SIGTERM: how long the current run has to end (SHUTDOWN_GRACE_SECONDS).
    shutdown_grace: float = 8.0
    #: Where a job runs unless it says (ISOLATION): "thread" (in the work-horse) or
    #: "process" (a process of its own, as in a web process: core/isolation.py).
    isolation: str = "thread"
    #: The runs' limits unless the job sets its own (the JOB_* settings).
    limits: JobLimits = field(default_factory=JobLimits)
    #: Called in the worker with the run id once the work-horse has exited (the
    #: notifier delivers what the horse planned, docs/notifications.md).
    after_run: Callable[[str], object] | None = None


#: The error of a run whose worker was shut down before it ended.
WORKER_SHUTDOWN_ERROR = "The worker was shut down."
#: The work-horse's current run's ``running()``: its SIGTERM handler asks it to stop.
_current_signal: StopSignal | None = None


#: The context of the job :class:`RunWorker` is performing (RQ calls :func:`execute`
#: by name, with the run id only).
_context: contextvars.ContextVar[WorkerContext | None] = contextvars.ContextVar(
    "flask_realtime_worker_context", default=None)


class RunWorker(Worker):
    """RQ's worker, performing each job with ``context``: ``flask-realtime worker``
    makes one from its System. The work-horse (a fork of the worker) inherits it.

    SIGTERM is RQ's warm shutdown (no new job; the current one may finish) with a
    deadline (docs/deployment.md, "Graceful shutdown"): after ``shutdown_grace``
    seconds the work-horse gets SIGTERM, which asks its job to stop (``running()``
    turns False; the run ends ``failed`` with :data:`WORKER_SHUTDOWN_ERROR`, its
    output kept); ``stop_grace`` seconds later a horse still there is killed and the
    run failed here. A second SIGTERM is RQ's cold shutdown: the horse is killed at
    once, and the run failed here too, never left ``running``.
    """

    def __init__(self, *args: Any, context: WorkerContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context

    def handle_warm_shutdown_request(self) -> None:
        """RQ's warm shutdown, and a thread that ends the current run at the deadline."""
        super().handle_warm_shutdown_request()
        job_id = self.get_current_job_id()
        if self.horse_pid and job_id:  # called in the signal handler: the wait is a thread's
            threading.Thread(target=self._end_current, args=(self.horse_pid, job_id),
                             name="flask-realtime-shutdown", daemon=True).start()

    def request_force_stop(self, signum: int, frame: Any) -> None:
        """RQ's cold shutdown (the horse killed), the current run failed with a line."""
        job_id = self.get_current_job_id() if self.horse_pid else None
        try:
            super().request_force_stop(signum, frame)
        except SystemExit:
            if job_id:
                self._fail_run(job_id, "The worker was shut down at once (a second SIGTERM) "
                                       "before the job ended: the run failed; the output "
                                       "above is what it printed.")
            raise

    def setup_work_horse_signals(self) -> None:
        """RQ's, and SIGTERM asks the horse's job to stop (:func:`_horse_shutdown`)."""
        super().setup_work_horse_signals()
        signal.signal(signal.SIGTERM, _horse_shutdown)

    def _end_current(self, horse: int, job_id: str) -> None:
        """The deadline of a warm shutdown: ask, then end, the horse still running."""
        if self._horse_gone(horse, self.context.shutdown_grace):
            return
        with contextlib.suppress(OSError):
            os.kill(horse, signal.SIGTERM)
        if self._horse_gone(horse, self.context.stop_grace + 1.0):
            return
        self.kill_horse()
        self._fail_run(job_id, f"The job did not return within {self.context.stop_grace:g} s "
                               "of the worker's shutdown: its process was ended and the run "
                               "failed; the output above is what it printed.")

    def _horse_gone(self, horse: int, within: float) -> bool:
        deadline = time.monotonic() + within
        while self.horse_pid == horse:  # RQ's main thread sets it to 0 once it has exited
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _fail_run(self, job_id: str, line: str) -> None:
        run_id = job_id.removeprefix(rq_job_id(""))
        service = self.context.service
        try:
            run = service.store.get_run(run_id)
            if run is None or run.state.finished:
                return
            service.store.append_output(run_id, [(SYSTEM, line, "\n")],
                                        int(time.time() * 1000))
            service.transition(run_id, RunState.FAILED, error=WORKER_SHUTDOWN_ERROR)
        except StoreUnavailableError:
            log.warning("run %s: could not be failed at the worker's shutdown (Redis "
                        "unavailable); the executor check fails it", run_id)

    def execute_job(self, job: Any, queue: Any) -> None:
        """RQ's: fork a work-horse for ``job`` and wait for it; then, in this process,
        ``context.after_run`` with the run's id."""
        try:
            super().execute_job(job, queue)
        finally:
            if self.context.after_run is not None:
                try:
                    self.context.after_run(str(job.id).removeprefix(rq_job_id("")))
                except Exception:
                    log.exception("after the run of job %s", job.id)

    def perform_job(self, *args: Any, **kwargs: Any) -> bool:
        """Perform the job as RQ does, with this worker's :class:`WorkerContext` set for
        :func:`execute` for the job's duration."""
        token = _context.set(self.context)
        try:
            return super().perform_job(*args, **kwargs)
        finally:
            _context.reset(token)


def _horse_shutdown(signum: int, frame: Any) -> None:
    """The work-horse's SIGTERM: its run's ``running()`` turns False at the next call
    (a flag only: a signal handler must take no lock), and the run ends failed."""
    if _current_signal is not None:
        _current_signal.reason = WORKER_SHUTDOWN_ERROR


def execute(run_id: str) -> None:
    """The RQ job function: run ``run_id`` in this work-horse; its log records name the
    run and the request that started it."""
    job = get_current_job()
    with bind(run_id=run_id, request_id=job.meta.get("request_id") if job else None):
        _execute(run_id)


def _execute(run_id: str) -> None:
    context = _context.get()
    if context is None:
        raise RuntimeError("flask_realtime.adapters.rq.execute runs in `flask-realtime "
                           "worker` (a RunWorker), which prepares the run service first.")
    service = context.service
    run = service.store.get_run(run_id)
    if run is None or run.state is not RunState.QUEUED:
        return  # stopped while queued, or already taken
    try:
        spec = service.registry.get(run.job)
        values = spec.validate(run.params)
    except JobError as exc:  # a worker set up unlike the web process that took the start
        why = str(exc).rstrip(".")
        service.store.append_output(run_id, [(
            SYSTEM, f"This worker cannot run the job: {why}. Workers need the same "
                    "FLASK_REALTIME_JOBS as the web processes (docs/scale-out.md).", "\n")],
            int(time.time() * 1000))
        service.transition(run_id, RunState.FAILED, error=f"worker: {exc}"[:2000])
        return
    services = dict(context.services_for(run.user))
    heartbeat = Heartbeat(service.store)
    heartbeat.add(run_id)
    try:
        moved = service.transition(run_id, RunState.RUNNING)
        if moved is None:
            return
        global _current_signal
        _current_signal = running = StopSignal(service.store, run_id, check_every=0.1)
        limits = spec.limits.over(context.limits)
        run_context = RunContext(run_id, run.user, services)
        if (spec.isolation or context.isolation) == "process":
            # The same path as a web process's: stop forced with stop_group after the
            # grace, crashes and limits; the child ends itself if this horse is killed.
            run_job_in_process(service, context.pump, moved, spec, values, run_context,
                               running, context.stop_grace, limits=limits)
        else:
            with timeout_timer(running, limits):
                run_job(service, context.pump, moved, spec, values, run_context, running,
                        context.stop_grace, output_bytes=limits.output_bytes or None)
    finally:
        _current_signal = None
        heartbeat.close()
