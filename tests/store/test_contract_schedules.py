"""The schedule half of core's contract (``ScheduleStore``, core/ports.py), on every
store: records saved by compare-and-set on their version, found by their wake time,
limited per user, and fire claims taken once."""

from __future__ import annotations

import threading
from pathlib import Path

from flask_realtime.core.ports import ScheduleStore
from flask_realtime.core.schedules import Schedule
from flask_realtime.store.sqlite import SQLiteStore
from tests.conftest import wait_for


def a_schedule(schedule_id: str = "s1", user: str = "alice", next_fire: float = 100.0,
               **fields: object) -> Schedule:
    return Schedule(id=schedule_id, user=user, name=f"nightly {schedule_id}", job="hello",
                    params={"n": 3}, cron="30 2 * * *", timezone="Europe/Berlin",
                    next_fire=next_fire, created_at=f"2026-01-01T00:00:0{schedule_id[-1]}Z",
                    **fields)  # type: ignore[arg-type]


def test_a_schedule_reads_back_as_stored(store: ScheduleStore) -> None:
    schedule = a_schedule()
    assert store.create_schedule(schedule)
    assert store.get_schedule("s1") == schedule
    assert store.get_schedule("nope") is None


def test_each_user_lists_their_own_oldest_first(store: ScheduleStore) -> None:
    for schedule_id, user in (("s2", "alice"), ("s1", "alice"), ("s3", "bob")):
        store.create_schedule(a_schedule(schedule_id, user))
    assert [s.id for s in store.list_schedules("alice")] == ["s1", "s2"]
    assert [s.id for s in store.list_schedules("bob")] == ["s3"]
    assert store.list_schedules("carol") == []


def test_a_create_past_the_users_limit_stores_nothing(store: ScheduleStore) -> None:
    assert store.create_schedule(a_schedule("s1"), per_user=2)
    assert store.create_schedule(a_schedule("s2"), per_user=2)
    assert not store.create_schedule(a_schedule("s3"), per_user=2)
    assert store.create_schedule(a_schedule("s4", "bob"), per_user=2)
    assert store.get_schedule("s3") is None


def test_replace_is_compare_and_set_on_the_version(store: ScheduleStore) -> None:
    schedule = a_schedule()
    store.create_schedule(schedule)
    renamed = schedule.saved(name="renamed")
    assert store.replace_schedule(renamed, expected_version=0)
    assert not store.replace_schedule(schedule.saved(name="stale"), expected_version=0)
    assert store.get_schedule("s1") == renamed
    assert not store.replace_schedule(a_schedule("ghost").saved(), expected_version=0)


def test_only_one_of_many_concurrent_saves_wins(store: ScheduleStore) -> None:
    schedule = a_schedule()
    store.create_schedule(schedule)
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def save(n: int) -> None:
        barrier.wait()
        if store.replace_schedule(schedule.saved(name=f"by {n}"), expected_version=0):
            wins.append(f"by {n}")

    threads = [threading.Thread(target=save, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    found = store.get_schedule("s1")
    assert found is not None and found.name == wins[0]


def test_due_schedules_are_those_whose_wake_time_came_soonest_first(
        store: ScheduleStore) -> None:
    store.create_schedule(a_schedule("s1", next_fire=300.0))
    store.create_schedule(a_schedule("s2", next_fire=100.0))
    store.create_schedule(a_schedule("s3", next_fire=200.0, enabled=False))
    store.create_schedule(a_schedule("s4", next_fire=500.0, queued_due=150.0))
    assert [s.id for s in store.due_schedules(250.0)] == ["s2", "s4"]
    assert store.next_wake() == 100.0
    moved = store.get_schedule("s2")
    assert moved is not None
    store.replace_schedule(moved.saved(next_fire=1000.0), moved.version)
    paused = store.get_schedule("s4")
    assert paused is not None
    store.replace_schedule(paused.saved(enabled=False), paused.version)
    assert [s.id for s in store.due_schedules(400.0)] == ["s1"]
    assert [s.id for s in store.due_schedules(10_000.0, limit=1)] == ["s1"]


def test_a_deleted_schedule_is_gone_everywhere(store: ScheduleStore) -> None:
    store.create_schedule(a_schedule("s1"))
    assert store.delete_schedule("s1")
    assert not store.delete_schedule("s1")
    assert (store.get_schedule("s1"), store.list_schedules("alice"),
            store.due_schedules(10_000.0), store.next_wake()) == (None, [], [], None)


def test_a_fire_is_claimed_once_until_its_claim_expires(store: ScheduleStore) -> None:
    barrier = threading.Barrier(8)
    won: list[int] = []

    def claim(n: int) -> None:
        barrier.wait()
        if store.claim_fire("s1:1800000000", ttl=60):
            won.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert store.claim_fire("s1:1800000060", ttl=60)  # the next due time is its own
    assert store.claim_fire("short", ttl=0.05)
    assert not store.claim_fire("short", ttl=60)
    wait_for(lambda: store.claim_fire("short", ttl=60), timeout=5)  # once it expired
    assert not store.claim_fire("short", ttl=60)


def test_claims_and_saves_in_batches_keep_each_ones_answer(store: ScheduleStore) -> None:
    store.claim_fire("s1:60", ttl=60)
    assert store.claim_fires(["s1:60", "s2:60", "s2:60"], ttl=60) == [False, True, False]
    assert store.claim_fires([], ttl=60) == []
    for schedule_id in ("s1", "s2"):
        store.create_schedule(a_schedule(schedule_id))
    one, two = a_schedule("s1"), a_schedule("s2")
    assert store.replace_schedules([(one.saved(name="a"), 0), (two.saved(name="b"), 5)]) == [
        True, False]
    assert [s.name for s in store.list_schedules("alice")] == ["a", "nightly s2"]
    assert store.replace_schedules([]) == []


def test_sqlite_keeps_schedules_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "flask-realtime.sqlite3"
    first = SQLiteStore(path)
    first.create_schedule(a_schedule("s1"))
    first.close()
    again = SQLiteStore(path)
    try:
        assert again.get_schedule("s1") == a_schedule("s1")
        assert [s.id for s in again.due_schedules(1000.0)] == ["s1"]
    finally:
        again.close()
