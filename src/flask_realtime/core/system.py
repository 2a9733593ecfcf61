"""One process's core, assembled in one place, with every background loop it starts.

:class:`System` holds the parts every process that runs jobs needs (the store, the job
registry, the run service, the capture pump, the runner, and the executor-loss reaper)
and owns their threads: :meth:`System.start` starts the reaper, the other loops start
when first needed, and :meth:`System.close` ends every one of them and closes the store.

:func:`build` assembles a System from a configuration, a plain mapping (keys it lacks
take :data:`flask_realtime.config.DEFAULTS`). Core names no store, queue nor job module
(tests/test_imports.py), so what must be picked by name is given to it: the store, and
the runner when it is not the thread runner. ``flask_realtime.assembly.build`` makes
those choices from the configuration, without Flask, for the web app, ``flask-realtime
exec`` and ``flask-realtime worker`` alike (docs/architecture.md, "Assembly").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar, cast

from ..config import DEFAULTS
from .capture import CapturePump, LineSink
from .commands import load_commands
from .isolation import IsolatingRunner
from .jobs import JobLimits, JobRegistry
from .jobs import registry as default_registry
from .ports import RunStore, ScheduleStore, StoreUnavailableError
from .runner import ThreadRunner, reap_lost_runs
from .runs import Run
from .scheduler import NotifyOwner, Scheduler, log_owner_notice
from .service import Limits, Runner, RunService

log = logging.getLogger(__name__)

#: How often a process sharing its store looks for runs whose executor died (the
#: heartbeat's TTL is 5 s).
REAP_INTERVAL_SECONDS = 2.0
#: How long :meth:`System.close` waits for each background thread to end.
CLOSE_WAIT_SECONDS = 5.0

#: What a start is refused with once :meth:`System.shutdown` has begun.
SHUTTING_DOWN = ("This server is shutting down and takes no new runs: start the job again "
                 "in a moment (another server, or this one once it is back, takes it).")

#: Given a user id, the services that user's runs may use (``RunContext.services``).
ServiceProvider = Callable[[str], Mapping[str, Any]]
#: Makes the runner of a System from its service, its pump and the configuration.
RunnerFactory = Callable[[RunService, CapturePump, Mapping[str, Any]], Runner]
#: The store's own type, kept for those who need more of it than core's ports (the web
#: tier's logins).
StoreT = TypeVar("StoreT", bound=RunStore, covariant=True)
S = TypeVar("S", bound=RunStore)


class OwnerNotifier(Protocol):
    """What tells users how their runs went (``flask_realtime.notify.Notifier``, set as
    :attr:`System.notifier` by the web app and ``flask-realtime worker``;
    docs/notifications.md). Both calls return at once."""

    def run_finished(self, run: Run) -> None:
        """Tell ``run``'s owner that it ended, as its ``notify`` (or their default) asks."""

    def tell(self, user: str, subject: str, text: str, *, key: str | None = None) -> None:
        """Send ``user`` a notice that is not about one run (a schedule paused itself)."""


class Reaper:
    """A thread that, every ``interval`` seconds, fails the runs whose executor (a web
    process or a worker) stopped beating, then calls each of ``checks`` (the RQ
    runner's: overdue forced stops, runs dropped from the queue).

    A store that is away skips a round quietly; any other error is logged and the
    next round comes all the same. :meth:`close` ends the thread within one round's
    work, whatever the interval.
    """

    def __init__(self, service: RunService, checks: list[Callable[[], object]], *,
                 interval: float = REAP_INTERVAL_SECONDS) -> None:
        self.service = service
        self.checks = checks
        self.interval = interval
        self._suspects: set[str] = set()  # runs missing their heartbeat at the last round
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; starting twice, or after :meth:`close`, does nothing."""
        if self._thread is None and not self._closing.is_set():
            self._thread = threading.Thread(target=self._loop, name="flask-realtime-reaper",
                                            daemon=True)
            self._thread.start()

    def check(self) -> None:
        """One round, in the calling thread."""
        try:
            for run_id in reap_lost_runs(self.service, self._suspects):
                log.warning("run %s failed: its executor was lost", run_id)
            for check in self.checks:
                check()
        except StoreUnavailableError:
            pass  # the next round tries again
        except Exception:
            log.exception("executor-loss check failed")

    def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """End the thread (waiting up to ``wait`` seconds for a round in progress)."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(wait)

    def _loop(self) -> None:
        while not self._closing.wait(self.interval):
            self.check()


class System(Generic[StoreT]):
    """The core of one process: what :func:`build` made, and the loops it runs.

    ``store``, ``registry``, ``service``, ``pump`` and ``runner`` are the parts;
    ``reaper`` is None when no other process shares the store (nobody else's
    executor can die holding its runs). ``service_providers`` give each run the
    services of its user (the web tier adds the Webex access of a login; a worker
    the same, from the store): :meth:`services_for` merges them.

    ``scheduler`` (``core/scheduler.py``, when built with ``schedules=True``: the web
    processes) fires schedules in a thread of its own, started by :meth:`start`.

    :meth:`close` ends, in order, the scheduler, the reaper, the runner's threads (its
    heartbeat; with RQ the stop deadlines and forced stops), the pump's thread, what was
    added to ``closers`` (the notifier's queue, docs/notifications.md), and the store.
    Runs still executing in this process are not waited for: Python cannot end a
    thread, and a run's thread is a daemon that ends with the process.
    """

    def __init__(self, store: StoreT, registry: JobRegistry, service: RunService,
                 pump: CapturePump, runner: Runner, reaper: Reaper | None,
                 scheduler: Scheduler | None = None) -> None:
        self.store = store
        self.registry = registry
        self.service = service
        self.pump = pump
        self.runner = runner
        self.reaper = reaper
        self.scheduler = scheduler
        self.service_providers: list[ServiceProvider] = []
        #: Called by :meth:`close` after the pump and before the store closes, in the
        #: order added: the loops others attached to this System (the notifier's).
        self.closers: list[Callable[[], object]] = []
        #: Tells users how their runs went; None where nothing does (``exec``, core tests).
        self.notifier: OwnerNotifier | None = None
        self._closed = False
        if scheduler is not None:
            scheduler.services_for = self.services_for

    def services_for(self, user: str) -> dict[str, Any]:
        """``RunContext.services`` for a run of ``user``: every provider's, merged."""
        services: dict[str, Any] = {}
        for provide in self.service_providers:
            services.update(provide(user))
        return services

    def start(self) -> System[StoreT]:
        """Start the background checks (the reaper) and the scheduler; returns the
        System."""
        if self.reaper is not None:
            self.reaper.start()
        if self.scheduler is not None:
            self.scheduler.start()
        return self

    def shutdown(self, grace: float, sentence: str = SHUTTING_DOWN) -> None:
        """A graceful end (SIGTERM; docs/deployment.md, "Graceful shutdown"): starts are
        refused with ``sentence`` from now on, the runner's runs get ``grace`` seconds
        to end and the rest end ``failed`` (a runner with a ``shutdown(grace)``
        method: the thread runner; RQ's runs belong to their workers), then
        :meth:`close`. The scheduler stops first: the fires due from then on are
        another process's (or this one's after its restart, as ``missed`` says)."""
        self.service.closing = sentence
        if self.scheduler is not None:  # first: a fire saved now could not start its run
            self.scheduler.close()
        shutdown_runner = getattr(self.runner, "shutdown", None)
        if callable(shutdown_runner) and not self._closed:
            shutdown_runner(grace)
        self.close()

    def close(self) -> None:
        """End every background loop the System started, then close the store.
        Closing twice does nothing more."""
        if self._closed:
            return
        self._closed = True
        if self.scheduler is not None:
            self.scheduler.close()
        if self.reaper is not None:
            self.reaper.close()
        close_runner = getattr(self.runner, "close", None)
        if callable(close_runner):
            close_runner()
        self.pump.shutdown()
        for close in self.closers:
            try:
                close()
            except Exception:
                log.exception("closing %r failed", close)
        self.store.close()

    def __enter__(self) -> System[StoreT]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def thread_runner(service: RunService, pump: CapturePump,
                  config: Mapping[str, Any]) -> ThreadRunner:
    """The default :data:`RunnerFactory`: runs in threads of this process."""
    return ThreadRunner(service, pump, stop_grace=float(config["STOP_GRACE_SECONDS"]))


def isolating_runner(service: RunService, pump: CapturePump,
                     config: Mapping[str, Any]) -> IsolatingRunner:
    """The :data:`RunnerFactory` of a server: runs in threads of this process, or each
    in a process of its own (the job's ``isolation``, else ``ISOLATION``), with the
    ``JOB_*`` limits as defaults (docs/jobs.md, "Isolation and limits")."""
    return IsolatingRunner(
        service, pump, stop_grace=float(config["STOP_GRACE_SECONDS"]),
        default=str(config["ISOLATION"]), defaults=job_limits(config))


def job_limits(config: Mapping[str, Any]) -> JobLimits:
    """The server's default :class:`~.jobs.JobLimits` from the ``JOB_*`` settings."""
    return JobLimits(timeout=float(config["JOB_TIMEOUT_SECONDS"]),
                     memory_mb=int(config["JOB_MEMORY_MB"]),
                     cpu_seconds=int(config["JOB_CPU_SECONDS"]),
                     output_bytes=int(config["JOB_OUTPUT_BYTES"]))


def build(config: Mapping[str, Any], *, store: S | Callable[[], S],
          registry: JobRegistry | None = None, sink: LineSink | None = None,
          runner: RunnerFactory = thread_runner, shared: bool = False,
          schedules: bool = False, notify_owner: NotifyOwner | None = None) -> System[S]:
    """Assemble a :class:`System` on ``store`` from ``config`` (a plain mapping; missing
    keys take their defaults). Nothing runs yet: call :meth:`System.start`.

    ``registry`` is the process-wide one unless given; the ``JOBS`` modules of the
    configuration are loaded into it first (:class:`~.jobs.JobModuleError` if one
    cannot be), then the command jobs of the ``COMMANDS`` file (a
    :class:`~flask_realtime.config.ConfigError` naming file, line and key for bad
    input). ``store`` is the store, or a function that opens it, called only once
    the jobs are loaded: a job module that fails never opens (nor locks) a database.
    The pump stores output through ``sink``, the store's ``append_output`` unless
    given (``flask-realtime exec`` prints instead), and without ``sink`` a round's
    lines of several runs with one ``append_outputs``. ``runner`` makes the runner; one
    with a ``reap()`` method has it called by the reaper, one with a ``close()``
    method is closed by :meth:`System.close`. ``shared``: other processes use the
    store too, so a reaper watches for their executors dying. ``schedules``: this
    process fires schedules (a :class:`~.scheduler.Scheduler`; the store must implement
    ``ScheduleStore``, as every store in ``store/`` does), telling owners of trouble
    through ``notify_owner`` (default: the log, :func:`~.scheduler.log_owner_notice`).
    """
    settings = {**DEFAULTS, **config}
    # not `or`: an empty registry is falsy (it has a length) and would become the global one
    jobs = registry if registry is not None else default_registry
    jobs.load_modules(settings["JOBS"])
    if settings["COMMANDS"]:  # the command jobs of a jobs file (docs/jobs.md)
        load_commands(settings["COMMANDS"], jobs)
    opened: S = store() if callable(store) else store  # a store is not callable
    try:
        system = _assemble(settings, opened, jobs, sink, runner, shared)
        if schedules:
            system.scheduler = Scheduler(
                cast(ScheduleStore, opened), system.service, services_for=system.services_for,
                notify_owner=notify_owner or log_owner_notice,
                per_user=int(settings["SCHEDULES_PER_USER"]),
                min_interval=int(settings["SCHEDULE_MIN_INTERVAL_SECONDS"]),
                tick=float(settings["SCHEDULE_TICK_SECONDS"]),
                late=float(settings["SCHEDULE_LATE_SECONDS"]),
                workers=int(settings["SCHEDULE_WORKERS"]))
        return system
    except BaseException:
        opened.close()
        raise


def _assemble(settings: Mapping[str, Any], store: S, jobs: JobRegistry,
              sink: LineSink | None, runner: RunnerFactory, shared: bool) -> System[S]:
    service = RunService(store, jobs, limits=Limits(
        per_user=settings["RUNS_PER_USER"], total=settings["RUNS_TOTAL"],
        history=settings["HISTORY_RUNS"], upload_bytes=settings["MAX_UPLOAD_BYTES"],
        artifact_bytes=settings["ARTIFACT_BUDGET_BYTES"]))
    service.input_max_bytes = settings["INPUT_MAX_BYTES"]
    service.input_max_queued = settings["INPUT_MAX_QUEUED_BYTES"]
    pump = CapturePump(
        sink or store.append_output, batches=None if sink else store.append_outputs,
        interval=settings["BATCH_INTERVAL_SECONDS"],
        partial_delay=settings["PARTIAL_FLUSH_SECONDS"],
        max_line_chars=settings["MAX_LINE_CHARS"], give_way=settings["FLOOD_GIVE_WAY_SECONDS"])
    service.runner = runner(service, pump, settings)
    reap = getattr(service.runner, "reap", None)
    reaper = Reaper(service, [reap] if callable(reap) else []) if shared else None
    return System(store, jobs, service, pump, service.runner, reaper)
