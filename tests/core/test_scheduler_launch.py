"""A scheduler round makes every run record of its due fires (claims, saves, creates)
before it launches any run (issue 19): the round's first runs, living, do not compete
with the making of its last records. Checked with a runner that records what the store
holds when each batch is handed to it, whatever the timing."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from flask_realtime.core.jobs import JobRegistry, JobSpec, RunContext, Running, job
from flask_realtime.core.runs import Run, RunState
from flask_realtime.core.scheduler import CHUNK, Scheduler
from flask_realtime.core.system import System, build
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for

jobs = JobRegistry()


@job(registry=jobs)
def tick(running: Running) -> None:
    print("tick")


T0 = 1_800_000_000.0


@dataclass
class RecordingRunner:
    """A batch runner that executes nothing: for each batch handed to it, the run
    records the store holds (and how many of them are scheduled) at that moment."""

    store: MemoryStore
    batches: list[tuple[int, int]] = field(default_factory=list)  # (records, batch size)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: True: keep each batch's ``began`` unset (its jobs have not begun), in ``held``.
    hold: bool = False
    held: list[threading.Event] = field(default_factory=list)
    #: Whether Python's cyclic garbage collector was on, at each batch.
    collecting: list[bool] = field(default_factory=list)

    def submit(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
               context: RunContext) -> None:
        self.submit_many([(run, spec, params, context)])

    def submit_many(self, starts: Sequence[tuple[Run, JobSpec, Mapping[str, Any],
                                                 RunContext]],
                    began: threading.Event | None = None) -> list[Exception | None]:
        self.collecting.append(gc.isenabled())
        if began is not None and self.hold:
            self.held.append(began)
        elif began is not None:
            began.set()  # nothing to wait for: nothing executes
        with self.lock:
            records = [r for r in self.store.list_runs(limit=10_000) if r.schedule_id]
            self.batches.append((len(records), len(starts)))
        return [None] * len(starts)

    def stop(self, run_id: str) -> None:
        pass


@dataclass
class MainThreadClock:
    """The test's time for the test's thread; for the scheduler's own loop, a time when
    nothing is due, so that only the test's rounds fire."""

    now: float = T0

    def __call__(self) -> float:
        return self.now if threading.current_thread() is threading.main_thread() else T0


@pytest.fixture(params=["inline", "pool of 1", "pool of 4"])
def rounds(request: pytest.FixtureRequest) -> Iterator[tuple[System[MemoryStore], Scheduler,
                                                              RecordingRunner, MainThreadClock]]:
    workers = {"inline": 1, "pool of 1": 1, "pool of 4": 4}[request.param]
    store = MemoryStore()
    system = build({"SCHEDULE_MIN_INTERVAL_SECONDS": 1, "RUNS_PER_USER": 5,
                    "RUNS_TOTAL": 10_000, "SCHEDULE_WORKERS": workers},
                   store=store, registry=jobs, schedules=True)
    scheduler = system.scheduler
    assert scheduler is not None
    clock = MainThreadClock()
    scheduler.clock = clock
    runner = RecordingRunner(store)
    system.service.runner = runner
    if request.param != "inline":
        scheduler.start()  # its fire pool (the loop sees nothing due: MainThreadClock)
    yield system, scheduler, runner, clock
    system.close()


def test_every_record_of_a_round_is_made_before_its_first_run_is_launched(
        rounds: tuple[System[MemoryStore], Scheduler, RecordingRunner, MainThreadClock],
) -> None:
    system, scheduler, runner, clock = rounds
    count = 2 * CHUNK + 5  # three chunks
    for n in range(count):
        scheduler.create(f"user-{n}", {"name": f"s{n}", "job": "tick", "interval": 60,
                                       "overlap": "allow"})
    clock.now = T0 + 60
    assert scheduler.tick() == count
    # every run launched once, the round's together, once all its records were made
    assert runner.batches == [(count, count)]
    runs = system.store.list_runs(limit=10_000)
    assert len(runs) == count and all(r.state is RunState.QUEUED for r in runs)
    for schedule in (s for n in range(count) for s in system.store.list_schedules(f"user-{n}")):
        assert schedule.last_run_id in {r.id for r in runs}


def test_a_queued_fire_of_the_round_waits_for_the_rounds_records_too(
        rounds: tuple[System[MemoryStore], Scheduler, RecordingRunner, MainThreadClock],
) -> None:
    """A fire waiting for its previous run (overlap ``queue``) is made at once when that
    run has ended, and launched with the round's other runs, not before their records."""
    system, scheduler, runner, clock = rounds
    store = system.store
    queued = scheduler.create("q", {"name": "queued", "job": "tick", "interval": 60,
                                    "overlap": "queue"})
    clock.now = T0 + 60
    scheduler.tick()  # its first run, left queued by the recording runner
    clock.now = T0 + 120
    scheduler.tick()  # its run still going: the fire waits
    waiting = store.get_schedule(queued.id)
    assert waiting is not None and waiting.queued_due is not None
    first = store.get_run(waiting.last_run_id or "")
    assert first is not None
    assert store.replace_run(first.moved_to(RunState.RUNNING), RunState.QUEUED)
    assert store.replace_run(store.get_run(first.id).moved_to(  # type: ignore[union-attr]
        RunState.SUCCEEDED), RunState.RUNNING)
    others = 2 * CHUNK
    for n in range(others):
        scheduler.create(f"user-{n}", {"name": f"s{n}", "job": "tick", "interval": 60,
                                       "overlap": "allow"})
    runner.batches.clear()
    clock.now = T0 + 180
    scheduler.tick()
    made = [r for r in store.list_runs(limit=10_000) if r.schedule_id]
    # the first, the queued fire's and others; the queued schedule's fire due now waits
    # behind the queued fire's run (still queued here): not made
    assert len(made) == 1 + 1 + others
    assert runner.batches == [(len(made), 1 + others)]


def test_a_rounds_schedule_events_wait_until_its_jobs_have_begun(
        rounds: tuple[System[MemoryStore], Scheduler, RecordingRunner, MainThreadClock],
) -> None:
    """The round's own work after its launch (a log line per fire, a ``schedule`` event
    per saved schedule: 1,000 of each for 1,000 fires) waits until the runner says every
    job of the round has begun (``launch_all(began=...)``): done at once, it took the
    CPU from the jobs beginning (docs/performance.md, "Schedules")."""
    system, scheduler, runner, clock = rounds
    runner.hold = True
    made = [scheduler.create(f"user-{n}", {"name": f"s{n}", "job": "tick", "interval": 60,
                                           "overlap": "allow"}) for n in range(3)]
    announced: list[str] = []
    scheduler.subscribe(lambda schedule, _deleted: announced.append(schedule.id))
    clock.now = T0 + 60
    ticking = threading.Thread(target=scheduler.tick, args=(clock.now,))
    ticking.start()
    try:
        wait_for(lambda: runner.held, 10)  # the round launched; its jobs "not begun"
        ticking.join(0.5)  # what the round would do next, it does not do yet
        assert ticking.is_alive()
        assert announced == []
        assert not gc.isenabled()  # the collector waits for the jobs to begin too
    finally:
        for began in runner.held:
            began.set()
        ticking.join(10)
    assert not ticking.is_alive()
    assert gc.isenabled()
    assert sorted(announced) == sorted(s.id for s in made)
    assert all((r := system.store.get_schedule(s.id)) is not None and r.last_run_id
               for s in made)


def test_the_garbage_collector_is_paused_while_a_round_starts_and_on_again_after(
        rounds: tuple[System[MemoryStore], Scheduler, RecordingRunner, MainThreadClock],
) -> None:
    """A round of 1,000 fires made about 250 collections of the cyclic collector (two
    of them full), each holding the interpreter's lock while the round's jobs were
    beginning (docs/performance.md, "Schedules"): paused from the round's start until
    its jobs have begun, then on again as before."""
    _system, scheduler, runner, clock = rounds
    for n in range(2 * CHUNK + 1):
        scheduler.create(f"user-{n}", {"name": f"s{n}", "job": "tick", "interval": 60,
                                       "overlap": "allow"})
    assert gc.isenabled()
    clock.now = T0 + 60
    scheduler.tick()
    assert runner.collecting == [False]
    assert gc.isenabled()
    gc.disable()  # off before the round (someone else's choice): left off after it
    try:
        clock.now = T0 + 120
        scheduler.tick()
        assert runner.collecting == [False, False]
        assert not gc.isenabled()
    finally:
        gc.enable()
