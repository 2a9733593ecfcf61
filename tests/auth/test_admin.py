"""Admins (docs/access.md, "Admins"): user3 is in ADMIN_USERS; user1 and user2 are not.

An admin lists every user's runs (filtered by user, job and state), reads and watches
any run's output live over Socket.IO, and stops any run, over HTTP and Socket.IO. An
admin never acts as another user: starts are theirs, another user's run cannot be
re-run or shared by them, and no answer carries a token. Everyone else gets 403 and a
sentence from every admin route and event, also with a role forged into their session:
the role comes from ADMIN_USERS and the verified identity alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_realtime.web.access import NOT_ADMIN
from flask_realtime.web.sessions import StoreSessionInterface, _store_key
from tests.auth.conftest import Browser
from tests.conftest import Watcher, wait_for
from tests.jobs_for_tests import gate_open

ADMIN_GETS = ["/api/admin/runs", "/api/admin/runs/{run}", "/api/admin/runs/{run}/lines",
              "/api/admin/runs/{run}/log", "/api/admin/audit",
              "/api/admin/audit?format=csv", "/admin", "/admin/audit"]


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "ADMIN_USERS": "User3@example.com"}


@pytest.fixture(autouse=True)
def open_gate_afterwards() -> Any:
    gate_open.clear()
    yield
    gate_open.set()


@pytest.fixture
def people(browser: Callable[[], Browser]) -> tuple[Browser, Browser, Browser]:
    """(user1, user2, the admin user3), each logged in."""
    logged = []
    for name in ("user1", "user2", "user3"):
        b = browser()
        b.login(name)
        logged.append(b)
    return logged[0], logged[1], logged[2]


def _gate_run(b: Browser) -> str:
    run_id: str = b.post("/api/runs", {"job": "gate"}).json()["id"]
    wait_for(lambda: b.http.get(f"/api/runs/{run_id}").json()["state"] == "running")
    return run_id


def test_the_admin_lists_every_users_runs_with_filters(
        people: tuple[Browser, Browser, Browser]) -> None:
    user1, user2, admin = people
    gate = _gate_run(user1)
    done = user2.post("/api/runs", {"job": "countdown", "params": {"n": 0}}).json()["id"]
    wait_for(lambda: user2.http.get(f"/api/runs/{done}").json()["state"] == "succeeded")

    def listed(query: str = "") -> list[str]:
        response = admin.http.get(f"/api/admin/runs{query}")
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["runs"]]

    assert listed() == [done, gate]
    assert listed("?user=USER1@example.com") == [gate]
    assert listed("?job=countdown") == [done]
    assert listed("?state=running") == [gate]
    assert listed("?state=running&user=user2@example.com") == []
    bad = admin.http.get("/api/admin/runs?state=asleep")
    assert bad.status_code == 400 and "state must be one of" in bad.json()["error"]
    # The admin's own list stays their own: the console is not the admin view.
    assert admin.http.get("/api/runs").json()["runs"] == []


def test_the_admin_reads_and_stops_another_users_run_over_http(
        people: tuple[Browser, Browser, Browser]) -> None:
    user1, _user2, admin = people
    run_id = _gate_run(user1)
    record = admin.http.get(f"/api/admin/runs/{run_id}").json()
    assert record["user"] == "user1@example.com" and record["state"] == "running"
    lines = admin.http.get(f"/api/admin/runs/{run_id}/lines").json()
    assert [line["text"] for line in lines["lines"]] == ["waiting at the gate"]
    log = admin.http.get(f"/api/admin/runs/{run_id}/log")
    assert log.text == "waiting at the gate\n" and "attachment" in log.headers[
        "Content-Disposition"]
    assert admin.post(f"/api/admin/runs/{run_id}/stop", csrf=False).status_code == 403
    assert admin.post(f"/api/admin/runs/{run_id}/stop").json() == {"ok": True}
    wait_for(lambda: user1.http.get(f"/api/runs/{run_id}").json()["state"] == "stopped")
    assert admin.http.get("/api/admin/runs/nope").status_code == 404


def test_the_admin_watches_and_stops_another_users_run_over_socketio(
        people: tuple[Browser, Browser, Browser],
        open_socket: Callable[..., Watcher]) -> None:
    user1, _user2, admin = people
    owner, watcher = open_socket(user1.cookie), open_socket(admin.cookie)
    admin_states: list[dict[str, Any]] = []
    watcher.client.on("admin_state", admin_states.append)
    watcher.client.on("admin_states", admin_states.extend)  # several changes at once
    owner_admin_states: list[dict[str, Any]] = []
    owner.client.on("admin_state", owner_admin_states.append)
    owner.client.on("admin_states", owner_admin_states.extend)  # several changes at once
    run_id = owner.call("start", {"job": "gate"})["run_id"]
    wait_for(lambda: owner.texts(run_id) == ["waiting at the gate"])
    answer = watcher.call("admin_watch", {"run_id": run_id, "after": 0})
    assert answer["ok"] and answer["run"]["user"] == "user1@example.com"
    wait_for(lambda: watcher.texts(run_id) == ["waiting at the gate"])
    # Read-only: the owner's own events stay the owner's, for an admin too.
    assert "There is no run" in watcher.call("stop", {"run_id": run_id})["error"]
    assert watcher.call("admin_stop", {"run_id": run_id}) == {"ok": True}
    wait_for(lambda: owner.state_of(run_id) == "stopped")
    wait_for(lambda: any(s["id"] == run_id and s["state"] == "stopped" for s in admin_states))
    assert owner_admin_states == []  # a non-admin's sockets hear no one else's runs
    assert watcher.states == [] or all(s["user"] == "user3@example.com" for s in watcher.states)


def test_everyone_else_gets_403_from_every_admin_route_and_event(
        people: tuple[Browser, Browser, Browser],
        open_socket: Callable[..., Watcher]) -> None:
    user1, user2, _admin = people
    run_id = _gate_run(user1)
    for b in (user1, user2):
        for path in ADMIN_GETS:
            response = b.http.get(path.format(run=run_id))
            assert response.status_code == 403, path
            assert NOT_ADMIN in response.text, path
        stop = b.post(f"/api/admin/runs/{run_id}/stop")
        assert stop.status_code == 403 and stop.json()["error"] == NOT_ADMIN
        socket = open_socket(b.cookie)
        for event in ("admin_watch", "admin_stop"):
            assert socket.call(event, {"run_id": run_id, "after": 0}) == {
                "error": NOT_ADMIN, "status": 403}
        assert socket.lines == {}
    assert user1.http.get(f"/api/runs/{run_id}").json()["state"] == "running"
    assert "admin-link" not in user1.http.get("/").text


def test_nobody_logged_in_gets_401_from_the_admin_api(
        browser: Callable[[], Browser]) -> None:
    anonymous = browser()
    assert anonymous.http.get("/api/admin/runs").status_code == 401
    assert anonymous.http.get("/admin").status_code == 401


def _forge(app: Flask, b: Browser, **data: Any) -> None:
    """Write ``data`` into ``b``'s server-side session, as someone with the store would."""
    interface = app.session_interface
    assert isinstance(interface, StoreSessionInterface)
    sid = interface._signer(app).unsign(b.cookie or "").decode()
    store = app.extensions["flask_realtime"].store
    session = store.load_session(_store_key(sid))
    assert session is not None and session["user"] == "user1@example.com"
    store.save_session(_store_key(sid), {**session, **data}, ttl=3600)


def test_a_role_forged_into_the_session_grants_nothing(
        app: Flask, people: tuple[Browser, Browser, Browser],
        open_socket: Callable[..., Watcher]) -> None:
    user1, user2, _admin = people
    run_id = _gate_run(user2)
    _forge(app, user1, role="admin", roles=["admin"], admin=True, is_admin=True)
    assert user1.http.get("/api/runs").status_code == 200  # the session still works
    for path in ADMIN_GETS:
        assert user1.http.get(path.format(run=run_id)).status_code == 403, path
    assert user1.post(f"/api/admin/runs/{run_id}/stop").status_code == 403
    socket = open_socket(user1.cookie)
    assert socket.call("admin_stop", {"run_id": run_id})["status"] == 403
    assert user2.http.get(f"/api/runs/{run_id}").json()["state"] == "running"


def test_an_admin_never_acts_as_another_user(
        app: Flask, people: tuple[Browser, Browser, Browser],
        open_socket: Callable[..., Watcher]) -> None:
    user1, _user2, admin = people
    run_id = _gate_run(user1)
    # A start is the admin's own, whatever the body says.
    started = admin.post("/api/runs", {"job": "countdown", "params": {"n": 0},
                                       "user": "user1@example.com"})
    assert started.status_code == 201 and started.json()["user"] == "user3@example.com"
    socket = open_socket(admin.cookie)
    own = socket.call("start", {"job": "countdown", "params": {"n": 0},
                                "user": "user1@example.com"})["run_id"]
    assert admin.http.get(f"/api/runs/{own}").json()["user"] == "user3@example.com"
    # Another user's run is not the admin's to re-run, share or read as theirs.
    for path in (f"/api/runs/{run_id}/rerun", f"/api/runs/{run_id}/shares"):
        assert admin.post(path).status_code == 404
    assert admin.http.get(f"/api/runs/{run_id}").status_code == 404
    # No answer of the admin views carries a token of the run's owner.
    vault = app.extensions["flask_realtime_auth"].vault
    tokens = vault.load("user1@example.com")
    answers = json.dumps([admin.http.get(p.format(run=run_id)).text for p in ADMIN_GETS])
    assert tokens.access_token not in answers and tokens.refresh_token not in answers
