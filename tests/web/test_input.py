"""Typing into a run over HTTP (``POST /api/runs/<id>/input``) and Socket.IO (``input``):
the owner only, CSRF-checked, size-limited, with the wait and its prompt in the run's
``state`` events. Two demo users against the Webex simulator (tests/auth/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.auth.conftest import (  # noqa: F401 (fixtures)
    Browser,
    app,
    app_config,
    browser,
    open_socket,
    simulator,
    simulator_options,
)
from tests.conftest import Watcher, wait_for


@pytest.fixture
def users(browser: Callable[[], Browser]) -> tuple[Browser, Browser]:  # noqa: F811
    alice, bob = browser(), browser()
    alice.login("user1")
    bob.login("user2")
    return alice, bob


def waiting_greet(owner: Browser) -> dict[str, Any]:
    """A run of the built-in ``greet`` job, once it waits for the name."""
    run_id = owner.post("/api/runs", {"job": "greet"}).json()["id"]
    return dict(wait_for(lambda: (r := owner.http.get(f"/api/runs/{run_id}").json())
                         ["waiting_input"] and r))


def finished(owner: Browser, run_id: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (r := owner.http.get(f"/api/runs/{run_id}").json())
                         ["state"] in ("succeeded", "failed", "stopped") and r))


def test_the_owner_types_a_line_and_the_job_reads_it(users: tuple[Browser, Browser]) -> None:
    alice, _bob = users
    run = waiting_greet(alice)
    assert run["waiting_input"] == {"prompt": "Your name: ", "secret": False}
    answer = alice.post(f"/api/runs/{run['id']}/input", {"text": "Ada\n"})
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    done = finished(alice, run["id"])
    assert done["state"] == "succeeded" and done["result"] == "Ada"
    lines = alice.http.get(f"/api/runs/{run['id']}/lines").json()["lines"]
    assert {"stream": "stdin", "text": "Ada"} in lines
    assert {"stream": "stdout", "text": "Hello, Ada!"} in lines


def test_end_of_file_over_http(users: tuple[Browser, Browser]) -> None:
    alice, _bob = users
    run = waiting_greet(alice)
    assert alice.post(f"/api/runs/{run['id']}/input", {"eof": True}).status_code == 200
    assert finished(alice, run["id"])["result"] is None
    again = alice.post(f"/api/runs/{run['id']}/input", {"text": "late\n"})
    assert again.status_code == 400 and "ended" in again.json()["error"]


def test_another_user_cannot_type_into_a_run(users: tuple[Browser, Browser],
                                             open_socket: Callable[..., Watcher]) -> None:  # noqa: F811
    alice, bob = users
    run = waiting_greet(alice)
    refused = bob.post(f"/api/runs/{run['id']}/input", {"text": "mallory\n"})
    assert refused.status_code == 404 and "There is no run" in refused.json()["error"]
    socket = open_socket(bob.cookie)
    assert "There is no run" in socket.call("input", {"run_id": run["id"],
                                                      "text": "mallory\n"})["error"]
    alice.post(f"/api/runs/{run['id']}/input", {"text": "Ada\n"})
    assert finished(alice, run["id"])["result"] == "Ada"


def test_input_without_the_csrf_token_is_403(users: tuple[Browser, Browser]) -> None:
    alice, _bob = users
    run = waiting_greet(alice)
    response = alice.post(f"/api/runs/{run['id']}/input", {"text": "x\n"}, csrf=False)
    assert response.status_code == 403
    alice.post(f"/api/runs/{run['id']}/input", {"eof": True})


def test_input_past_the_size_limit_is_refused_with_a_sentence(
        users: tuple[Browser, Browser]) -> None:
    alice, _bob = users
    run = waiting_greet(alice)
    response = alice.post(f"/api/runs/{run['id']}/input", {"text": "x" * (16 * 1024 + 1)})
    assert response.status_code == 413 and "INPUT_MAX_BYTES" in response.json()["error"]
    huge = alice.post(f"/api/runs/{run['id']}/input", {"text": "x" * (10 * 1024 * 1024)})
    assert huge.status_code == 413
    for bad in ({}, {"text": 3}, {"eof": "yes"}, {"text": "a", "eof": True}):
        assert alice.post(f"/api/runs/{run['id']}/input", bad).status_code == 400, bad
    alice.post(f"/api/runs/{run['id']}/input", {"eof": True})


def test_the_socket_event_types_and_the_state_events_show_the_wait(
        users: tuple[Browser, Browser], open_socket: Callable[..., Watcher]) -> None:  # noqa: F811
    alice, _bob = users
    socket = open_socket(alice.cookie)
    run_id = socket.call("start", {"job": "greet"})["run_id"]
    wait_for(lambda: any(s["id"] == run_id and s.get("waiting_input") for s in socket.states))
    assert socket.call("input", {"run_id": run_id, "text": "Grace\n"}) == {"ok": True}
    wait_for(lambda: "Hello, Grace!" in socket.texts(run_id))
    wait_for(lambda: socket.state_of(run_id) == "succeeded")
    last = [s for s in socket.states if s["id"] == run_id][-1]
    assert last["waiting_input"] is None
    assert "text to type" in socket.call("input", {"run_id": run_id})["error"]
