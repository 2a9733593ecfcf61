"""Exactly once across processes (core/scheduler.py): two web processes on one real Redis
fire each due time of a schedule once, and when the one that fired the last tick is
killed (SIGKILL), the next tick still fires, once, on the other."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import WebProcess

INTERVAL = 1
FAST = {"FLASK_REALTIME_SCHEDULE_MIN_INTERVAL_SECONDS": "1",
        "FLASK_REALTIME_SCHEDULE_TICK_SECONDS": "0.2"}


def fires(process: WebProcess, schedule_id: str) -> list[tuple[int, str]]:
    """The (due time, run id) of every fire the process's log says it made."""
    pattern = rf"schedule {re.escape(schedule_id)} fired (\d+): run (\S+)"
    return [(int(due), run) for due, run in re.findall(pattern, process.output())]


def scheduled_runs(url: str, schedule_id: str) -> list[str]:
    runs = httpx.get(f"{url}/api/runs", params={"limit": 1000}, timeout=5).json()["runs"]
    return [r["id"] for r in runs if r["schedule_id"] == schedule_id]


def test_each_tick_fires_once_and_survives_the_firing_process_being_killed(
        web: Callable[..., WebProcess], client: Callable[[str], Watcher]) -> None:
    a, b = web(**FAST), web(**FAST)
    made = client(a.url).call("schedule_create", {"schedule": {
        "name": "every second", "job": "numbers", "params": {"n": 1}, "interval": INTERVAL,
        "overlap": "allow"}})
    schedule_id = made["schedule"]["id"]

    def all_fires() -> list[tuple[int, str, WebProcess]]:
        return sorted((due, run, p) for p in (a, b) for due, run in fires(p, schedule_id))

    wait_for(lambda: len(all_fires()) >= 4, timeout=30)
    before = all_fires()
    dues = [due for due, _run, _p in before]
    assert len(set(dues)) == len(dues), before  # no due time fired twice
    assert dues == list(range(dues[0], dues[0] + INTERVAL * len(dues), INTERVAL))  # none lost
    assert sorted(scheduled_runs(b.url, schedule_id)) == sorted(r for _d, r, _p in before)

    last_due, _run, firer = all_fires()[-1]
    firer.kill()  # SIGKILL, right after its fire
    survivor = b if firer is a else a
    wait_for(lambda: len([f for f in fires(survivor, schedule_id) if f[0] > last_due]) >= 2,
             timeout=30)
    everything = all_fires()  # the killed process's log is still there to read
    dues = [due for due, _run, _p in everything]
    assert len(set(dues)) == len(dues), everything
    assert dues == list(range(dues[0], dues[0] + INTERVAL * len(dues), INTERVAL))
    assert {p for due, _run, p in everything if due > last_due} == {survivor}
    fired = {run for _due, run, _p in everything}
    wait_for(lambda: fired <= set(scheduled_runs(survivor.url, schedule_id)))
    runs = scheduled_runs(survivor.url, schedule_id)
    assert len(runs) == len(set(runs)) and set(runs) <= fired | {
        run for due, run in fires(survivor, schedule_id)}  # one run per fire, no other
