"""The scheduler: what users do with schedules, and the thread that fires them.

:class:`Scheduler` is both the façade the web tier calls (create, edit, pause,
resume, delete, run now, preview: owner-only, as runs are) and the loop that starts
runs when schedules are due. Every web process runs one (``core/system.py`` starts it
with the System and :meth:`Scheduler.close` ends it).

**Exactly once.** With several processes on one store, each one looks at the due
schedules. A fire of schedule ``S`` due at ``T`` starts a run only in the process
that (1) claims the key ``S:T`` first (``ScheduleStore.claim_fire``: ``SET NX`` with
expiry on Redis), and (2) then saves the schedule's next due time by compare-and-set
on the version it read. The run's start request id is ``schedule S:T`` besides, so
even a store that lost the claim creates one run for it. Due times come from the
schedule (its cron expression, or its anchor plus a whole number of intervals),
never from comparing the clocks of two machines: a process whose clock is a little
behind only fires a little later, and a claim is a key that exists or not. A process
killed between its claim and its save leaves the fire to the claim's expiry
(:data:`CLAIM_TTL_SECONDS`): the fire is late then, never doubled. One killed after
its save and before the run's start loses that one fire (at most once, by design).

**Policies** (core/schedules.py): overlap ``skip``/``allow``/``queue``; missed fires
``skip`` or ``run`` (once, within the schedule's grace); the run service's per-user
limits, whose refusal is kept on the schedule as ``last_error``. A schedule whose job
needs its owner's login (it takes a ``RunContext``) and whose owner has none that
works (logged out, or expired) pauses itself: ``paused_reason`` says why, the page
shows it as a banner, and :attr:`Scheduler.notify_owner` is called once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .gcpause import CollectorPause
from .jobs import JobError, JobSpec, ParamError
from .ports import ScheduleStore, StoreUnavailableError
from .runs import Run, new_run_id, now_iso
from .schedules import (
    Schedule,
    ScheduleError,
    ScheduleLimitError,
    ScheduleNotFoundError,
    latest_due,
    parse_schedule,
    preview,
)
from .service import LimitReachedError, MadeRuns, RunService, StartRequest

log = logging.getLogger(__name__)

#: How long a claim on one fire lives: longer than any process takes from its claim
#: to its save, so a slow process never claims a fire another one already made.
CLAIM_TTL_SECONDS = 120.0
#: The longest the loop sleeps: a schedule made or changed by another process is seen
#: within this (one made here wakes the loop at once).
TICK_SECONDS = 1.0
#: A fire later than this (the server was down) is *missed*: ``missed: skip`` drops it.
LATE_SECONDS = 60.0
CLOSE_WAIT_SECONDS = 5.0
#: Due schedules handled together: one request claims their fires, one saves them.
CHUNK = 64
#: The longest a round's own work after its launch (logging its fires, announcing its
#: saved schedules) waits for the round's jobs to have begun.
BEGUN_WAIT_SECONDS = 10.0

#: ``(user, job)`` -> a sentence when the user's login cannot start that job now (None:
#: it can). The web tier adds one that checks the Webex login (web/auth.py).
LoginCheck = Callable[[str, JobSpec], "str | None"]
#: ``(user, schedule, sentence)``: tell the owner something went wrong with their
#: schedule (paused for an expired login). The notifications wire their channels here.
NotifyOwner = Callable[[str, Schedule, str], None]
#: A schedule's ``notify`` as its runs' (core/runs.py ``Notify``, docs/notifications.md):
#: ``none`` leaves it to the owner's default, read when each run starts.
RUN_NOTIFY: dict[str, str | None] = {"none": None, "always": "finish", "failure": "failure"}
#: ``(schedule, deleted)``: called after every save (and delete) made in this process.
ScheduleListener = Callable[[Schedule, bool], None]


def when(epoch: float, timezone: str) -> str:
    """``epoch`` as the schedule's owner reads it: ``2026-03-29 03:00 Europe/Berlin``."""
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S ") \
        + timezone


def log_owner_notice(user: str, schedule: Schedule, sentence: str) -> None:
    """The default :data:`NotifyOwner`: a line in the server's log. The schedule itself
    keeps the sentence too (``paused_reason``, the page's banner)."""
    log.warning("schedule %s of %s: %s", schedule.id, user, sentence)


class Scheduler:
    """Schedules for their owners, and the loop that fires them (see the module).

    ``services_for(user)`` gives a scheduled run its owner's services, as a start from
    the page gets them; ``login_checks`` say when the owner's login cannot serve a
    job; ``notify_owner`` is called when a schedule pauses itself. ``clock`` is the
    time in epoch seconds (tests give a fixed one and call :meth:`tick`).
    """

    def __init__(
        self, store: ScheduleStore, service: RunService, *,
        services_for: Callable[[str], Mapping[str, Any]] = lambda user: {},
        notify_owner: NotifyOwner = log_owner_notice, per_user: int = 50,
        min_interval: int = 60, tick: float = TICK_SECONDS, late: float = LATE_SECONDS,
        workers: int = 4, clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.service = service
        self.services_for = services_for
        self.notify_owner = notify_owner
        self.login_checks: list[LoginCheck] = []
        self.per_user = per_user
        self.min_interval = min_interval
        self.tick_seconds = tick
        self.late = late
        self.workers = max(workers, 1)
        self.clock = clock
        self._listeners: list[ScheduleListener] = []
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        service.subscribe(self._run_changed)

    def subscribe(self, listener: ScheduleListener) -> None:
        """Call ``listener(schedule, deleted)`` after every save made in this process
        (``deleted`` True, with its last record, after a delete)."""
        self._listeners.append(listener)

    def _run_changed(self, run: Run) -> None:
        if run.schedule_id is not None and run.state.finished:
            self._wake.set()  # a fire queued behind this run may start now

    # -- what users do ---------------------------------------------------------------
    def list_schedules(self, user: str) -> list[Schedule]:
        """``user``'s schedules, oldest first."""
        return self.store.list_schedules(user)

    def get(self, user: str, schedule_id: Any) -> Schedule:
        """``user``'s schedule; :class:`ScheduleNotFoundError` for none or another's."""
        found = (self.store.get_schedule(schedule_id)
                 if isinstance(schedule_id, str) and 0 < len(schedule_id) <= 100 else None)
        if found is None or found.user != user:
            raise ScheduleNotFoundError(schedule_id)
        return found

    def _parsed(self, user: str, data: Any, existing: Schedule | None = None) -> Schedule:
        draft = parse_schedule(data, user=user, now=self.clock(),
                               min_interval=self.min_interval, existing=existing)
        # JobError: no such job, or one the user may not run (told apart from none by
        # nothing, not even its parameters' names in the errors of validate below).
        spec = self.service.check_job(
            user, draft.job, known=existing is not None and existing.job == draft.job)
        spec.validate(draft.params)  # ParamError: every problem, as a start says them
        return draft

    def preview(self, user: str, data: Any) -> tuple[Schedule, list[float]]:
        """The schedule ``data`` describes (not saved) and its next five due times;
        the errors of :meth:`create`."""
        draft = self._parsed(user, data)
        return draft, preview(draft, self.clock())

    def create(self, user: str, data: Any) -> Schedule:
        """Make a schedule of ``user`` from ``data``; raises :class:`ScheduleError`,
        the job's errors (:class:`JobError`, :class:`ParamError`) or
        :class:`ScheduleLimitError`."""
        schedule = self._parsed(user, data)
        if not self.store.create_schedule(schedule, per_user=self.per_user):
            raise ScheduleLimitError(
                f"You already have {self.per_user} schedules: delete one before making "
                "another.")
        self._announce(schedule)
        return schedule

    def update(self, user: str, schedule_id: Any, data: Any) -> Schedule:
        """Change the keys ``data`` gives of one of ``user``'s schedules (as
        :meth:`create` checks them); a new timing starts from now."""
        for _ in range(10):
            current = self.get(user, schedule_id)
            edited = self._parsed(user, data, current).saved()
            if self.store.replace_schedule(edited, current.version):
                self._announce(edited)
                return edited
        raise ScheduleError("This schedule keeps changing: try again in a moment.")

    def pause(self, user: str, schedule_id: Any) -> Schedule:
        """Stop firing (a queued fire is dropped); pausing twice changes nothing. Not
        checked as an edit is: a schedule whose job is no longer offered can be paused."""
        for _ in range(10):
            current = self.get(user, schedule_id)
            if not current.enabled and current.queued_due is None:
                return current
            paused = current.saved(enabled=False, queued_due=None)
            if self.store.replace_schedule(paused, current.version):
                self._announce(paused)
                return paused
        raise ScheduleError("This schedule keeps changing: try again in a moment.")

    def resume(self, user: str, schedule_id: Any) -> Schedule:
        """Fire again from the next due time after now (fires missed while paused are
        not made up); clears ``paused_reason``."""
        return self.update(user, schedule_id, {"enabled": True})

    def delete(self, user: str, schedule_id: Any) -> Schedule:
        """Forget one of ``user``'s schedules (its runs stay); returns its last record."""
        schedule = self.get(user, schedule_id)
        self.store.delete_schedule(schedule.id)
        self._announce(schedule, deleted=True)
        return schedule

    def run_now(self, user: str, schedule_id: Any) -> Run:
        """Start the schedule's job now, as its next fire would, without changing its
        due times; the run service's errors (limits) are raised to the caller."""
        schedule = self.get(user, schedule_id)
        run = self.service.start(user, schedule.job, schedule.params,
                                 services=self.services_for(user),
                                 schedule=(schedule.id, schedule.name),
                                 notify=RUN_NOTIFY[schedule.notify])
        self._change(schedule.id, last_run_id=run.id, last_error=None)
        return run

    # -- the loop ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread; starting twice, or after :meth:`close`, does nothing."""
        if self._thread is None and not self._closing.is_set():
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="flask-realtime-fire")
            self._thread = threading.Thread(target=self._loop, name="flask-realtime-scheduler",
                                            daemon=True)
            self._thread.start()

    def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """End the thread (waiting up to ``wait`` seconds for a round in progress)."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                self.tick()
                wake = self.store.next_wake()
            except StoreUnavailableError:
                wake = None  # the next round tries again
            except Exception:
                log.exception("the scheduler's round failed")
                wake = None
            # A wake time already past is a fire another process claimed (it saves in a
            # moment) or a queued one waiting for its run: looked at again next tick.
            pause = self.tick_seconds
            if wake is not None and wake > (now := self.clock()):
                pause = min(pause, wake - now)
            self._wake.wait(pause)
            self._wake.clear()

    def tick(self, now: float | None = None) -> int:
        """One round, in the calling thread (its fires on the pool once started): every
        due schedule fires or is skipped as its policies say. Returns how many
        schedules were due.

        The due schedules are taken in an order of this process's own (shuffled), in
        chunks of :data:`CHUNK`: each chunk's claims are one request to the store, and
        so are its saves and its runs' creates, and several processes split the work
        instead of all claiming the same schedules first. Every chunk's runs are made
        before any of the round's runs is launched (:meth:`_launch`): the round's
        first runs, living, do not compete for the CPU with the making of its last
        records (issue 19, docs/performance.md "Schedules"). From the round's start
        until every job of it has begun (or :data:`BEGUN_WAIT_SECONDS`), Python's
        cyclic garbage collector is paused (:class:`~.gcpause.CollectorPause`): its
        collections, hundreds in a round of 1,000 fires, held the interpreter's lock
        for a good part of the round's start."""
        at = self.clock() if now is None else now
        due = self.store.due_schedules(at, limit=10_000)
        if not due:
            return 0
        pause = CollectorPause()
        pause.begin()
        try:
            random.shuffle(due)
            chunks = [due[i:i + CHUNK] for i in range(0, len(due), CHUNK)]
            if self._pool is None or len(chunks) < 2:
                made = [self._make_safely(chunk, at) for chunk in chunks]
            else:
                made = list(self._pool.map(lambda chunk: self._make_safely(chunk, at),
                                           chunks))
            self._launch_safely(made, pause.end)
        finally:
            pause.end()
        return len(due)

    def _make_safely(self, chunk: list[Schedule], now: float) -> _Round:
        """:meth:`_make`; what it made before a failure is still launched."""
        pending = _Round()
        try:
            self._make(chunk, now, pending)
        except StoreUnavailableError:
            pass  # the schedules are still due: the next round tries again
        except Exception:
            log.exception("a round of %d schedules failed", len(chunk))
        return pending

    def _launch_safely(self, rounds: list[_Round], begun: Callable[[], None]) -> None:
        try:
            self._launch(rounds, begun)
        except Exception:
            log.exception("the runs of a round of %d fires failed to launch", sum(
                len(starts) for pending in rounds for starts, _made in pending.batches))

    def _make(self, chunk: list[Schedule], now: float, pending: _Round) -> None:
        """Claim the chunk's due fires at once, decide each (:meth:`_plan`), save the
        decisions at once (compare-and-set each), then make their runs at once
        (:meth:`_create`), into ``pending``: launched by :meth:`_launch`."""
        current = [self._fire_queued(s, pending) if s.queued_due is not None else s
                   for s in chunk]
        fires = []
        for schedule in current:
            if schedule.enabled and schedule.next_fire is not None \
                    and schedule.next_fire <= now:
                due, following = latest_due(schedule, now)
                fires.append((schedule, due, following, f"{schedule.id}:{_epoch_key(due)}"))
        if not fires:
            return
        won = self.store.claim_fires([key for *_rest, key in fires], CLAIM_TTL_SECONDS)
        logins: dict[tuple[str, str], str | None] = {}  # one check per user and job
        plans = [self._plan(schedule, due, following, key, now, logins)
                 for (schedule, due, following, key), mine in zip(fires, won, strict=True)
                 if mine]  # the others are another process's to fire
        records = [plan.schedule.saved(**plan.changes) for plan in plans]
        saved = self.store.replace_schedules(
            [(record, plan.schedule.version) for record, plan in zip(records, plans, strict=True)])
        starts: list[_Start] = []
        for plan, made, done in zip(plans, records, saved, strict=True):
            record: Schedule | None = made
            if done:  # announced once the runs are launched: they wait for no one
                pending.announce[made.id] = made
            else:  # its owner changed it meanwhile: the fire applies if it still awaits it
                record = self._save_fire(plan.schedule, **plan.changes)
            if record is None:
                continue
            if plan.notice is not None:
                self._tell_owner(record, plan.notice)
            if plan.run_id is not None:
                starts.append(_Start(record, plan.key, plan.run_id, plan.schedule.last_run_id))
        self._create(starts, pending)

    def _plan(self, schedule: Schedule, due: float, following: float | None, key: str,
              now: float, logins: dict[tuple[str, str], str | None]) -> _Plan:
        """What the fire of ``schedule`` due at ``due`` (claimed by this process) does:
        the changes to save, and whether it starts a run (its id chosen now, so that one
        save records it) or tells the owner something. ``logins`` keeps the round's
        login checks by ``(user, job)``: a user's login is checked once a round."""
        advance: dict[str, Any] = {"next_fire": following, "last_due": due}
        at = _When(due, schedule.timezone)  # in words only when a sentence needs it
        allowed = schedule.grace_seconds if schedule.missed == "run" else self.late
        if now - due > allowed:
            return _Plan(schedule, key, {**advance, **_error(
                f"The fire due at {at} was missed (no server was running then) and "
                f"skipped, as missed: {schedule.missed} says.")})
        try:
            spec = self.service.registry.get(schedule.job)
        except JobError as exc:
            return _Plan(schedule, key, {**advance, **_error(f"Not started: {exc}")})
        checked = (schedule.user, spec.name)
        if checked not in logins:
            logins[checked] = self._login_problem(schedule.user, spec)
        problem = logins[checked]
        if problem is not None:
            sentence = (f"Paused: the run due at {at} was not started, because {problem} "
                        "Log in again, then resume the schedule.")
            return _Plan(schedule, key, {**advance, "enabled": False, "queued_due": None,
                                         "paused_reason": sentence, **_error(sentence)},
                         notice=sentence)
        if schedule.overlap != "allow" and schedule.last_run_id:
            previous = self.service.store.get_run(schedule.last_run_id)
            if previous is not None and not previous.state.finished:
                if schedule.overlap == "queue" and schedule.queued_due is None:
                    return _Plan(schedule, key, {**advance, "queued_due": due})
                return _Plan(schedule, key, {**advance, **_error(
                    f"The fire due at {at} was skipped: the previous run is still going "
                    f"(overlap: {schedule.overlap}).")})
        run_id = new_run_id()
        return _Plan(schedule, key, {**advance, "last_run_id": run_id, "last_error": None,
                                     "last_error_at": None}, run_id=run_id)

    def _fire_queued(self, schedule: Schedule, pending: _Round) -> Schedule:
        """A fire waiting for the previous run (overlap ``queue``): its run is made (into
        ``pending``, launched with the round's) once that run has ended. Returns the
        schedule as it is now."""
        assert schedule.queued_due is not None
        previous = self.service.store.get_run(schedule.last_run_id) \
            if schedule.last_run_id else None
        if previous is not None and not previous.state.finished:
            return schedule
        key = f"{schedule.id}:{_epoch_key(schedule.queued_due)}:queued"
        if not self.store.claim_fire(key, CLAIM_TTL_SECONDS):
            return schedule
        run_id = new_run_id()
        saved = self._save_fire(schedule, queued_due=None, last_run_id=run_id,
                                last_error=None, last_error_at=None)
        if saved is None:
            return schedule
        self._create([_Start(saved, key, run_id, schedule.last_run_id)], pending)
        return self.store.get_schedule(saved.id) or saved

    def _create(self, starts: list[_Start], pending: _Round) -> None:
        """Make the runs the schedules' saved fires name, with one request to the store
        for all of them (``RunService.create_many``: each counted against the per-user
        and total limits, each with the request id ``schedule S:T``), into
        ``pending``: none is handed to the runner yet (:meth:`_launch`). A start
        refused (a limit, a job or parameters no longer accepted) is kept as
        ``last_error`` now, and ``last_run_id`` goes back to the run before; its saved
        fire is announced first, so that the page's last news is the refusal. Each
        owner's services are read once for the batch."""
        if not starts:
            return
        services: dict[str, Mapping[str, Any]] = {}
        for start in starts:
            if start.schedule.user not in services:
                services[start.schedule.user] = self.services_for(start.schedule.user)
        made = self.service.create_many([StartRequest(
            s.user, s.job, s.params, run_id=start.run_id,
            request_id=f"schedule {start.key}", services=services[s.user],
            schedule=(s.id, s.name), notify=RUN_NOTIFY[s.notify])
            for start in starts for s in [start.schedule]])
        pending.batches.append((starts, made))
        for start, result in zip(starts, made.results, strict=True):
            if isinstance(result, LimitReachedError | JobError | ParamError):
                schedule = start.schedule
                if (record := pending.announce.pop(schedule.id, None)) is not None:
                    self._announce(record)  # before the refusal's change is over it
                self._change(schedule.id, last_run_id=start.previous_run_id,
                             **_error(f"Not started: {result}"))

    def _launch(self, rounds: list[_Round], begun: Callable[[], None]) -> None:
        """Hand every run the chunks made to the runner at once
        (``RunService.launch_all``: the thread runner moves them running, a request a
        chunk, and starts their threads together), then, once every job of the round
        has begun (at most :data:`BEGUN_WAIT_SECONDS`), call ``begun``, log the fires
        and announce the saved schedules: the page's news of a save waits, the runs
        do not. (Announced at once, 1,000 ``schedule`` events took the CPU from 1,000
        jobs beginning: docs/performance.md, "Schedules".)"""
        batches = [batch for pending in rounds for batch in pending.batches]
        began = threading.Event()
        try:
            launched = self.service.launch_all([made for _starts, made in batches],
                                               began=began)
            began.wait(BEGUN_WAIT_SECONDS)
            begun()
            for (starts, _made), results in zip(batches, launched, strict=True):
                for start, result in zip(starts, results, strict=True):
                    if isinstance(result, LimitReachedError | JobError | ParamError):
                        continue  # kept on the schedule when the run was refused
                    if isinstance(result, Exception):
                        log.error("schedule %s: run %s did not start: %s", start.schedule.id,
                                  start.run_id, result)
                    else:
                        log.info("schedule %s fired %s: run %s", start.schedule.id,
                                 start.key.split(":", 1)[1], result.id)
        finally:
            for pending in rounds:
                for record in pending.announce.values():
                    self._announce(record)

    def _login_problem(self, user: str, spec: JobSpec) -> str | None:
        for check in self.login_checks:
            problem = check(user, spec)
            if problem:
                return problem
        return None

    def _tell_owner(self, schedule: Schedule, sentence: str) -> None:
        try:
            self.notify_owner(schedule.user, schedule, sentence)
        except Exception:
            log.exception("schedule %s: telling its owner failed", schedule.id)

    def _save_fire(self, read: Schedule, **changes: Any) -> Schedule | None:
        """Save a fire's changes over ``read`` by compare-and-set. When the record moved
        meanwhile (its owner edited it), the fire still applies only if the record still
        awaits the same due time and is enabled; else None (nothing to start)."""
        current = read
        for _ in range(10):
            saved = current.saved(**changes)
            if self.store.replace_schedule(saved, current.version):
                self._announce(saved)
                return saved
            fresh = self.store.get_schedule(read.id)
            if fresh is None or not fresh.enabled or fresh.next_fire != read.next_fire \
                    or fresh.queued_due != read.queued_due:
                return None
            current = fresh
        return None

    def _change(self, schedule_id: str, **changes: Any) -> Schedule | None:
        """Save ``changes`` over the stored schedule, whatever else changed meanwhile."""
        for _ in range(10):
            current = self.store.get_schedule(schedule_id)
            if current is None:
                return None
            saved = current.saved(**changes)
            if self.store.replace_schedule(saved, current.version):
                self._announce(saved)
                return saved
        log.error("schedule %s: could not be saved: the record keeps changing", schedule_id)
        return None

    def _announce(self, schedule: Schedule, deleted: bool = False) -> None:
        self._wake.set()
        for listener in self._listeners:
            try:
                listener(schedule, deleted)
            except Exception:
                log.exception("schedule listener failed for schedule %s", schedule.id)


@dataclass(frozen=True)
class _When:
    """A due time that becomes words (:func:`when`) only when it is formatted."""

    epoch: float
    timezone: str

    def __str__(self) -> str:
        return when(self.epoch, self.timezone)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


@dataclass
class _Round:
    """What one chunk of a round made (:meth:`Scheduler._make`), to launch once every
    chunk's runs are made (:meth:`Scheduler._launch`)."""

    #: Each batch of starts, with the runs ``RunService.create_many`` made for it.
    batches: list[tuple[list[_Start], MadeRuns]] = field(default_factory=list)
    #: The schedules saved, by id, to announce after the launch.
    announce: dict[str, Schedule] = field(default_factory=dict)


@dataclass(frozen=True)
class _Start:
    """A run one saved fire names, to start (see :meth:`Scheduler._start_many`)."""

    schedule: Schedule
    key: str
    run_id: str
    previous_run_id: str | None


@dataclass(frozen=True)
class _Plan:
    """What one claimed fire does (see :meth:`Scheduler._plan`)."""

    schedule: Schedule
    key: str
    changes: dict[str, Any]
    run_id: str | None = None
    notice: str | None = None


def _epoch_key(epoch: float) -> str:
    """A due time in a claim key: whole seconds when it is one, else milliseconds."""
    return str(int(epoch)) if float(epoch).is_integer() else f"{epoch:.3f}"


def _error(sentence: str) -> dict[str, Any]:
    return {"last_error": sentence, "last_error_at": now_iso()}

