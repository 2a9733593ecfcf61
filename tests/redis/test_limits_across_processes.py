"""RUNS_PER_USER holds across web processes: the check and the create are one step."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import WebProcess

LIMIT_SENTENCE = ("You already have 5 runs going: stop one or wait for one to finish, "
                  "then start again.")


def active_runs(url: str) -> list[dict[str, Any]]:
    runs = httpx.get(f"{url}/api/runs", timeout=5).json()["runs"]
    return [r for r in runs if r["state"] in ("queued", "running", "stopping")]


def start_all_at_once(clients: list[Watcher]) -> list[dict[str, Any]]:
    barrier = threading.Barrier(len(clients))
    acks: list[dict[str, Any]] = []

    def start(watcher: Watcher) -> None:
        barrier.wait()
        acks.append(watcher.call("start", {"job": "gate"}))

    threads = [threading.Thread(target=start, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acks


def test_sixteen_concurrent_starts_over_two_processes_make_at_most_five_runs(
        web: Callable[..., WebProcess], client: Callable[[str], Watcher]) -> None:
    a, b = web(), web()  # RUNS_PER_USER is 5, and every client here is the same user
    clients = [client(a.url if i % 2 else b.url) for i in range(16)]
    for _ in range(4):  # the race is for the last place: each process saw 4 and made one
        assert "run_id" in clients[0].call("start", {"job": "gate"})
    for _ in range(3):  # a fresh race each round
        acks = start_all_at_once(clients)
        made = [ack["run_id"] for ack in acks if "run_id" in ack]
        assert len(made) == 1, acks
        assert {ack.get("error") for ack in acks if "run_id" not in ack} == {LIMIT_SENTENCE}
        assert len(active_runs(b.url)) == 5
        assert clients[0].call("stop", {"run_id": made[0]}) == {"ok": True}
        wait_for(lambda: len(active_runs(a.url)) == 4, timeout=10)
