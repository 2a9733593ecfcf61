"""The scheduler (core/scheduler.py) with a fixed clock: each round (``tick``) fires what
is due as the schedule's policies say, and what made no run is kept on the schedule."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from flask_realtime.core.jobs import JobRegistry, RunContext, Running, job
from flask_realtime.core.runs import Run
from flask_realtime.core.scheduler import Scheduler
from flask_realtime.core.schedules import Schedule, ScheduleNotFoundError
from flask_realtime.core.service import LimitReachedError
from flask_realtime.core.system import System, build
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for

jobs = JobRegistry()
release = threading.Event()


@job(registry=jobs)
def quick(running: Running, word: str = "hi") -> None:
    print(word)


@job(registry=jobs)
def held(running: Running) -> None:
    while running() and not release.wait(0.01):
        pass


@job(registry=jobs)
def with_login(running: Running, context: RunContext) -> str:
    return str(context.services.get("token"))


T0 = 1_800_000_000.0  # a whole minute: 2027-01-15 08:00 UTC


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sched:
    system: System[MemoryStore]
    scheduler: Scheduler
    clock: Clock
    told: list[tuple[str, str, str]] = field(default_factory=list)

    def make(self, user: str = "alice", **fields: Any) -> Schedule:
        body = {"name": "every minute", "job": "quick", "interval": 60, **fields}
        return self.scheduler.create(user, body)

    def at(self, seconds: float) -> int:
        """Move the clock to T0 + seconds and run one round, once the quick runs made so
        far have ended (so that overlap and limits see only the held ones)."""
        wait_for(lambda: all(r.state.finished for r in self.system.store.list_runs()
                             if r.job == "quick"))
        self.clock.now = T0 + seconds
        return self.scheduler.tick()

    def runs(self, user: str = "alice") -> list[Run]:
        return list(reversed(self.system.store.list_runs(user)))

    def get(self, schedule: Schedule) -> Schedule:
        found = self.system.store.get_schedule(schedule.id)
        assert found is not None
        return found

    def all_finished(self) -> None:
        wait_for(lambda: all(r.state.finished for r in self.system.store.list_runs()))


@pytest.fixture
def sched() -> Iterator[Sched]:
    release.clear()
    system = build({"STOP_GRACE_SECONDS": 0.3, "SCHEDULE_MIN_INTERVAL_SECONDS": 1,
                    "RUNS_PER_USER": 2}, store=MemoryStore(), registry=jobs, schedules=True)
    assert system.scheduler is not None
    clock = Clock()
    system.scheduler.clock = clock
    made = Sched(system, system.scheduler, clock)
    system.scheduler.notify_owner = lambda user, s, sentence: made.told.append(
        (user, s.id, sentence))
    yield made
    release.set()
    system.close()


def test_each_due_time_makes_one_run_marked_with_its_schedule(sched: Sched) -> None:
    schedule = sched.make(params={"word": "tick"})
    assert sched.at(59) == 0
    assert sched.at(60) == 1
    assert sched.at(61) == 0  # already fired: next due at 120
    sched.at(120)
    runs = sched.runs()
    assert [(r.job, r.params, r.schedule_id, r.schedule_name) for r in runs] == [
        ("quick", {"word": "tick"}, schedule.id, "every minute")] * 2
    after = sched.get(schedule)
    assert (after.last_due, after.next_fire, after.last_run_id) == (
        T0 + 120, T0 + 180, runs[-1].id)


def test_overlap_skip_leaves_a_fire_out_while_the_previous_run_goes(sched: Sched) -> None:
    schedule = sched.make(job="held")
    sched.at(60)
    sched.at(120)
    assert len(sched.runs()) == 1
    assert "skipped: the previous run is still going (overlap: skip)" in (
        sched.get(schedule).last_error or "")
    release.set()
    sched.all_finished()
    sched.at(180)
    assert len(sched.runs()) == 2
    assert sched.get(schedule).last_error is None


def test_overlap_allow_starts_a_second_run(sched: Sched) -> None:
    sched.make(job="held", overlap="allow")
    sched.at(60)
    sched.at(120)
    assert len(sched.runs()) == 2


def test_overlap_queue_keeps_one_fire_for_when_the_run_ends(sched: Sched) -> None:
    schedule = sched.make(job="held", overlap="queue")
    sched.at(60)
    sched.at(120)  # queued
    sched.at(180)  # one is queued already: skipped
    assert len(sched.runs()) == 1
    assert sched.get(schedule).queued_due == T0 + 120
    sched.at(181)
    assert len(sched.runs()) == 1  # the first run still goes
    release.set()
    sched.all_finished()
    sched.at(182)
    assert len(sched.runs()) == 2
    assert sched.get(schedule).queued_due is None


def test_a_fire_missed_while_no_server_ran_is_skipped(sched: Sched) -> None:
    schedule = sched.make(interval=3600)
    sched.at(3 * 3600 + 120)  # no server from before the first fire: the last one 120 s ago
    assert sched.runs() == []
    after = sched.get(schedule)
    assert "was missed (no server was running then) and skipped" in (after.last_error or "")
    assert after.next_fire == T0 + 4 * 3600
    sched.at(4 * 3600 + 1)  # on time again
    assert len(sched.runs()) == 1


def test_missed_run_makes_one_run_within_the_grace(sched: Sched) -> None:
    schedule = sched.make(interval=3600, missed="run", grace_seconds=1800)
    sched.at(3 * 3600 + 600)  # three fires missed, the latest by 600 s
    assert len(sched.runs()) == 1
    assert sched.get(schedule).last_due == T0 + 3 * 3600
    sched.at(6 * 3600 + 2000)  # missed again, by more than the grace: skipped
    assert len(sched.runs()) == 1


def test_a_start_refused_at_the_run_limit_is_kept_on_the_schedule(sched: Sched) -> None:
    sched.system.service.start("alice", "held", {})
    sched.system.service.start("alice", "held", {})  # RUNS_PER_USER is 2
    schedule = sched.make()
    sched.at(60)
    assert len(sched.runs()) == 2
    assert sched.get(schedule).last_error == (
        "Not started: You already have 2 runs going: stop one or wait for one to finish, "
        "then start again.")


def test_a_job_that_needs_a_login_the_owner_lost_pauses_its_schedule(sched: Sched) -> None:
    logged_in = {"alice": False}
    sched.scheduler.login_checks.append(
        lambda user, spec: None if logged_in[user] or spec.context_arg is None
        else "your Webex login has expired or you logged out, and this job needs it.")
    schedule = sched.make(job="with_login")
    sched.at(60)
    assert sched.runs() == []
    paused = sched.get(schedule)
    assert not paused.enabled and paused.wake_at is None
    assert paused.paused_reason is not None
    assert "was not started, because your Webex login has expired" in paused.paused_reason
    assert sched.told == [("alice", schedule.id, paused.paused_reason)]
    sched.at(120)
    assert sched.runs() == []
    logged_in["alice"] = True
    resumed = sched.scheduler.resume("alice", schedule.id)
    assert resumed.enabled and resumed.paused_reason is None
    assert resumed.next_fire == T0 + 180  # from now on: the paused fires are not made up
    sched.at(180)
    assert len(sched.runs()) == 1


def test_a_schedules_notify_setting_goes_with_its_runs(sched: Sched) -> None:
    """docs/notifications.md: ``always`` is a run's ``finish``, ``failure`` its own, and
    ``none`` leaves the run to the owner's default (None on the record)."""
    owners = {"always": "alice", "failure": "bob", "none": "carol"}  # 2 runs each at most
    made = {kind: sched.make(user, name=kind, notify=kind) for kind, user in owners.items()}
    sched.at(60)
    by_schedule = {r.schedule_name: r.notify for user in owners.values()
                   for r in sched.runs(user)}
    assert by_schedule == {"always": "finish", "failure": "failure", "none": None}
    assert sched.scheduler.run_now("bob", made["failure"].id).notify == "failure"


def test_scheduled_runs_get_the_owners_services(sched: Sched) -> None:
    sched.system.service_providers.append(lambda user: {"token": f"token of {user}"})
    sched.make(job="with_login")
    sched.at(60)
    sched.all_finished()
    assert sched.runs()[0].result == "token of alice"


def test_a_paused_schedule_does_not_fire_and_an_ended_one_stops(sched: Sched) -> None:
    paused = sched.make(enabled=False)
    ending = sched.make(name="twice", end_at="2027-01-15T08:02:00Z")
    for minute in range(1, 6):
        sched.at(60 * minute)
    assert [r.schedule_id for r in sched.runs()] == [ending.id, ending.id]
    assert sched.get(ending).next_fire is None and sched.get(ending).wake_at is None
    assert sched.get(paused).last_run_id is None


def test_run_now_starts_at_once_and_keeps_the_due_times(sched: Sched) -> None:
    schedule = sched.make()
    run = sched.scheduler.run_now("alice", schedule.id)
    assert run.schedule_id == schedule.id
    assert sched.get(schedule).next_fire == schedule.next_fire
    assert sched.get(schedule).last_run_id == run.id
    sched.all_finished()
    sched.system.service.start("alice", "held", {})
    sched.system.service.start("alice", "held", {})
    with pytest.raises(LimitReachedError):
        sched.scheduler.run_now("alice", schedule.id)


def test_a_schedule_whose_job_is_gone_can_still_be_paused_and_deleted(sched: Sched) -> None:
    schedule = sched.make()
    sched.system.store.replace_schedule(sched.get(schedule).saved(job="retired"),
                                        schedule.version)
    sched.at(60)
    assert (sched.get(schedule).last_error or "").startswith(
        "Not started: There is no job named 'retired'.")
    assert not sched.scheduler.pause("alice", schedule.id).enabled
    assert not sched.scheduler.pause("alice", schedule.id).enabled  # twice: no change
    sched.scheduler.delete("alice", schedule.id)
    assert sched.scheduler.list_schedules("alice") == []


def test_another_users_schedule_is_as_good_as_none(sched: Sched) -> None:
    schedule = sched.make()
    for act in (sched.scheduler.pause, sched.scheduler.resume, sched.scheduler.delete,
                sched.scheduler.run_now, sched.scheduler.get):
        with pytest.raises(ScheduleNotFoundError):
            act("mallory", schedule.id)
    with pytest.raises(ScheduleNotFoundError):
        sched.scheduler.update("mallory", schedule.id, {"name": "mine now"})
    assert sched.scheduler.list_schedules("mallory") == []
    assert sched.get(schedule).name == "every minute"


def test_two_schedulers_on_one_store_fire_each_due_time_once(sched: Sched) -> None:
    other = Scheduler(sched.system.store, sched.system.service, clock=sched.clock)
    sched.make(job="quick", overlap="allow")
    for minute in range(1, 4):
        sched.all_finished()
        sched.clock.now = T0 + 60 * minute
        both = [threading.Thread(target=s.tick) for s in (sched.scheduler, other)]
        for thread in both:
            thread.start()
        for thread in both:
            thread.join()
    assert len(sched.runs()) == 3


def test_the_loop_fires_on_its_own_and_close_ends_it() -> None:
    system = build({"SCHEDULE_MIN_INTERVAL_SECONDS": 1, "SCHEDULE_TICK_SECONDS": 0.05},
                   store=MemoryStore(), registry=jobs, schedules=True).start()
    assert system.scheduler is not None
    system.scheduler.create("alice", {"name": "fast", "job": "quick", "interval": 1})
    wait_for(lambda: len(system.store.list_runs("alice")) >= 2)
    thread = system.scheduler._thread  # this system's own (other tests' apps have theirs)
    assert thread is not None and thread.is_alive()
    system.close()
    assert not thread.is_alive()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_schedule_survives_a_restart_and_fires_after_it(
        kind: str, tmp_path: Any, request: pytest.FixtureRequest) -> None:
    from flask_realtime.store.redis import RedisStore
    from flask_realtime.store.sqlite import SQLiteStore

    def open_store() -> Any:
        if kind == "sqlite":
            return SQLiteStore(tmp_path / "flask-realtime.sqlite3")
        return RedisStore(request.getfixturevalue("redis_url"))

    def server() -> System[Any]:
        system = build({"SCHEDULE_MIN_INTERVAL_SECONDS": 1}, store=open_store(), registry=jobs,
                       schedules=True)
        assert system.scheduler is not None
        system.scheduler.clock = Clock()
        return system

    first = server()
    assert first.scheduler is not None
    made = first.scheduler.create("alice", {"name": "hourly", "job": "quick",
                                            "interval": 3600, "missed": "run"})
    first.close()
    again = server()  # a new process: nothing but the store is shared
    try:
        assert again.scheduler is not None
        assert again.scheduler.list_schedules("alice") == [made]
        again.scheduler.clock.now = T0 + 3600 + 30  # type: ignore[attr-defined]
        again.scheduler.tick()
        runs = again.store.list_runs("alice")
        assert [r.schedule_id for r in runs] == [made.id]
        wait_for(lambda: (r := again.store.get_run(runs[0].id)) and r.state.finished)
    finally:
        again.close()


def test_a_graceful_shutdown_stops_firing_before_runs_are_refused() -> None:
    system = build({"SCHEDULE_MIN_INTERVAL_SECONDS": 1}, store=MemoryStore(), registry=jobs,
                   schedules=True).start()
    scheduler = system.scheduler
    assert scheduler is not None
    firing_during_grace: list[bool] = []
    shutdown_runner = system.runner.shutdown  # type: ignore[attr-defined]

    def watched_shutdown(grace: float) -> None:
        thread = scheduler._thread  # this system's own (other tests' apps have theirs)
        firing_during_grace.append(thread is not None and thread.is_alive())
        shutdown_runner(grace)

    system.runner.shutdown = watched_shutdown  # type: ignore[attr-defined]
    system.shutdown(grace=0.1)
    assert firing_during_grace == [False]  # a fire saved then could not start its run


@pytest.mark.parametrize(("night", "fired_at"), [
    ("2026-03-29", ["2026-03-29 03:00 CEST"]),  # spring forward: 02:30 does not exist
    ("2026-10-25", ["2026-10-25 02:30 CEST"]),  # fall back: 02:30 happens twice
])
def test_a_0230_daily_schedule_fires_once_through_a_dst_night(
        sched: Sched, night: str, fired_at: list[str]) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    start = datetime.fromisoformat(f"{night}T00:00").replace(tzinfo=berlin).timestamp()
    sched.clock.now = start - 3600
    schedule = sched.scheduler.create("alice", {
        "name": "nightly", "job": "quick", "cron": "30 2 * * *", "timezone": "Europe/Berlin"})
    fired: list[str] = []
    for minute in range(0, 6 * 60):  # a round every minute from 00:00 to 06:00 UTC+x
        sched.clock.now = start + 60 * minute
        seen = len(sched.runs())
        sched.scheduler.tick()
        if len(sched.runs()) > seen:
            fired.append(datetime.fromtimestamp(sched.clock.now, berlin).strftime(
                "%Y-%m-%d %H:%M %Z"))
        sched.all_finished()
    assert fired == fired_at
    assert sched.get(schedule).last_due is not None


def test_a_rounds_fires_start_with_one_create_each_checked_against_the_limits(
        sched: Sched, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fires of one round are created in one request to the store (issue 19: 1,000
    schedules due at once), and still each against RUNS_PER_USER: a refusal is kept on
    its schedule, whose last_run_id goes back to the run before. Each owner's services
    and login are looked up once a round."""
    store = sched.system.store
    calls: list[str] = []

    def counting(name: str) -> Any:
        original = getattr(store, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(*args, **kwargs)
        return counted

    for name in ("create_run", "create_runs"):
        monkeypatch.setattr(store, name, counting(name))
    looked_up: list[str] = []
    checked: list[str] = []

    def services(user: str) -> dict[str, Any]:
        looked_up.append(user)
        return {}

    def login(user: str, spec: Any) -> str | None:
        checked.append(user)
        return None

    sched.system.service_providers.append(services)
    sched.scheduler.login_checks.append(login)
    mine = [sched.make(name=f"held {i}", job="held", overlap="allow") for i in range(3)]
    bobs = sched.make("bob", job="held")
    assert sched.at(60) == 4
    assert calls == ["create_runs"]
    assert sorted(looked_up) == ["alice", "bob"] and sorted(checked) == ["alice", "bob"]
    assert len(sched.runs()) == 2 and len(sched.runs("bob")) == 1
    records = [sched.get(s) for s in mine]
    refused = [r for r in records if r.last_error is not None]
    assert len(refused) == 1 and refused[0].last_run_id is None
    assert refused[0].last_error == (
        "Not started: You already have 2 runs going: stop one or wait for one to finish, "
        "then start again.")
    started = {r.last_run_id for r in records if r.last_error is None}
    assert started == {r.id for r in sched.runs()}
    assert sched.get(bobs).last_run_id == sched.runs("bob")[0].id
    assert all(r.schedule_id for r in sched.runs() + sched.runs("bob"))


def test_a_fires_save_is_announced_after_its_run_started_and_before_a_refusal(
        sched: Sched) -> None:
    """The page hears of a fire's save once the round's runs are made (they wait for no
    announcement), and of a refused start last, so that its last news is the error."""
    store = sched.system.store
    heard: list[tuple[str, bool, str | None]] = []
    sched.scheduler.subscribe(lambda s, deleted: heard.append(
        (s.id, s.last_run_id is not None and store.get_run(s.last_run_id) is not None,
         s.last_error)))
    sched.system.service.start("alice", "held", {})
    sched.system.service.start("alice", "held", {})  # RUNS_PER_USER is 2: refused
    refused = sched.make(job="held")
    started = sched.make("bob", job="held")
    heard.clear()
    sched.at(60)
    news = {schedule_id: [(made, error) for i, made, error in heard if i == schedule_id]
            for schedule_id in (refused.id, started.id)}
    assert news[started.id] == [(True, None)]  # its run existed when it was announced
    last_error = news[refused.id][-1][1]
    assert last_error is not None and last_error.startswith("Not started: You already have")
