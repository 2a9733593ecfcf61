"""Two users, over HTTP and Socket.IO: nothing crosses (docs/reliability.md,
requirement 6), and one user's tabs all see the same runs live."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.auth.conftest import Browser
from tests.conftest import Watcher, wait_for
from tests.jobs_for_tests import gate_open


@pytest.fixture
def users(browser: Callable[[], Browser]) -> tuple[Browser, Browser]:
    alice, bob = browser(), browser()
    alice.login("user1")
    bob.login("user2")
    return alice, bob


@pytest.fixture(autouse=True)
def open_gate_afterwards() -> Any:
    gate_open.clear()
    yield
    gate_open.set()


def test_the_two_simulator_users_are_different_users(users: tuple[Browser, Browser]) -> None:
    alice, bob = users
    run_a = alice.post("/api/runs", {"job": "countdown", "params": {"n": 0}}).json()
    run_b = bob.post("/api/runs", {"job": "countdown", "params": {"n": 0}}).json()
    assert run_a["user"] != run_b["user"]


def test_http_refuses_another_users_run(users: tuple[Browser, Browser]) -> None:
    alice, bob = users
    run_id = alice.post("/api/runs", {"job": "countdown", "params": {"n": 3, "delay": 0}}
                        ).json()["id"]
    wait_for(lambda: alice.http.get(f"/api/runs/{run_id}").json()["state"] == "succeeded")
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/lines",
                 f"/api/runs/{run_id}/log"):
        response = bob.http.get(path)
        assert response.status_code == 404 and "There is no run" in response.json()["error"]
    stop = bob.post(f"/api/runs/{run_id}/stop")
    assert stop.status_code == 404 and "error" in stop.json()
    assert bob.http.get("/api/runs").json()["runs"] == []
    assert [r["id"] for r in alice.http.get("/api/runs").json()["runs"]] == [run_id]


def test_socket_refuses_another_users_run_and_sends_no_output(
        users: tuple[Browser, Browser], open_socket: Callable[..., Watcher]) -> None:
    alice, bob = users
    watcher_a = open_socket(alice.cookie)
    watcher_b = open_socket(bob.cookie)
    run_id = watcher_a.call("start", {"job": "gate"})["run_id"]
    wait_for(lambda: watcher_a.texts(run_id) == ["waiting at the gate"])
    for event, data in (("watch", {"run_id": run_id, "after": 0}), ("stop", {"run_id": run_id}),
                        ("unwatch", {"run_id": run_id})):
        answer = watcher_b.call(event, data)
        if event != "unwatch":  # unwatching what one never watched is a harmless no-op
            assert "There is no run" in answer["error"]
    assert alice.http.get(f"/api/runs/{run_id}").json()["state"] == "running"
    gate_open.set()
    wait_for(lambda: watcher_a.state_of(run_id) == "succeeded")
    # The run's last state event reached A; B, connected all along, heard nothing of it.
    assert watcher_b.lines == {} and watcher_b.state_of(run_id) is None


def test_socket_start_belongs_to_the_starting_user(
        users: tuple[Browser, Browser], open_socket: Callable[..., Watcher]) -> None:
    alice, bob = users
    run_id = open_socket(bob.cookie).call("start", {"job": "countdown", "params": {"n": 0}}
                                          )["run_id"]
    assert alice.http.get(f"/api/runs/{run_id}").status_code == 404
    assert bob.http.get(f"/api/runs/{run_id}").status_code == 200


def test_tabs_of_one_user_see_the_same_runs_live(
        browser: Callable[[], Browser], open_socket: Callable[..., Watcher]) -> None:
    laptop, phone = browser(), browser()
    laptop.login("user1")
    phone.login("user1")
    tabs = [open_socket(laptop.cookie), open_socket(laptop.cookie), open_socket(phone.cookie)]
    run_id = laptop.post("/api/runs", {"job": "gate"}).json()["id"]
    for tab in tabs:
        wait_for(lambda tab=tab: tab.state_of(run_id) == "running")
    assert phone.post(f"/api/runs/{run_id}/stop").status_code == 200  # another device stops it
    for tab in tabs:
        wait_for(lambda tab=tab: tab.state_of(run_id) == "stopped")
    watched = tabs[2].call("watch", {"run_id": run_id, "after": 0})
    assert watched["run"]["id"] == run_id
    wait_for(lambda: "waiting at the gate" in tabs[2].texts(run_id))
