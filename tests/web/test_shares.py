"""Read-only share links (docs/ui.md, "Sharing a run"): the owner makes and revokes them;
any logged-in user with the link reads the run, its log and its live output, and can
change nothing. Two demo users against the Webex simulator (tests/auth/conftest.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_realtime.web.realtime import get_realtime
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
from tests.jobs_for_tests import gate_open


@pytest.fixture
def users(browser: Callable[[], Browser]) -> tuple[Browser, Browser]:  # noqa: F811
    alice, bob = browser(), browser()
    alice.login("user1")
    bob.login("user2")
    return alice, bob


@pytest.fixture(autouse=True)
def open_gate_afterwards() -> Any:
    gate_open.clear()
    yield
    gate_open.set()


def _finished_run(owner: Browser) -> str:
    run_id: str = owner.post("/api/runs", {"job": "countdown",
                                          "params": {"n": 2, "delay": 0}}).json()["id"]
    wait_for(lambda: owner.http.get(f"/api/runs/{run_id}").json()["state"] == "succeeded")
    return run_id


def _token(share: dict[str, Any]) -> str:
    return str(share["url"]).split("#share=", 1)[1]


def test_the_owner_creates_a_link_that_expires_in_seven_days_by_default(
        users: tuple[Browser, Browser]) -> None:
    alice, _ = users
    run_id = _finished_run(alice)
    answer = alice.post(f"/api/runs/{run_id}/shares")
    assert answer.status_code == 201
    share = answer.json()
    assert "#share=" in share["url"] and share["id"] and share["expires_at"]
    listed = alice.http.get(f"/api/runs/{run_id}/shares").json()["shares"]
    assert listed == [{"id": share["id"], "expires_at": share["expires_at"]}]
    assert _token(share) not in str(listed)


def test_another_user_cannot_create_list_or_revoke(users: tuple[Browser, Browser]) -> None:
    alice, bob = users
    run_id = _finished_run(alice)
    share = alice.post(f"/api/runs/{run_id}/shares").json()
    assert bob.post(f"/api/runs/{run_id}/shares").status_code == 404
    assert bob.http.get(f"/api/runs/{run_id}/shares").status_code == 404
    revoke = bob.http.delete(f"/api/runs/{run_id}/shares/{share['id']}",
                             headers={"X-CSRF-Token": bob.csrf()})
    assert revoke.status_code == 404
    assert len(alice.http.get(f"/api/runs/{run_id}/shares").json()["shares"]) == 1


def test_creating_without_the_csrf_token_is_refused(users: tuple[Browser, Browser]) -> None:
    alice, _ = users
    run_id = _finished_run(alice)
    assert alice.post(f"/api/runs/{run_id}/shares", csrf=False).status_code == 403


def test_a_logged_in_viewer_reads_the_run_and_its_log(users: tuple[Browser, Browser]) -> None:
    alice, bob = users
    run_id = _finished_run(alice)
    token = _token(alice.post(f"/api/runs/{run_id}/shares").json())
    run = bob.http.get(f"/api/shared/{token}").json()
    assert run["id"] == run_id and run["shared_by"] == run["user"]
    log = bob.http.get(f"/api/shared/{token}/log", params={"download": "0"})
    assert log.status_code == 200 and log.text == alice.http.get(
        f"/api/runs/{run_id}/log").text
    assert bob.http.get(f"/api/shared/{token}/lines").json()["end_seq"] > 0


def test_the_viewer_watches_live_but_cannot_stop(
        users: tuple[Browser, Browser], open_socket: Callable[..., Watcher]) -> None:  # noqa: F811
    alice, bob = users
    run_id = alice.post("/api/runs", {"job": "gate"}).json()["id"]
    token = _token(alice.post(f"/api/runs/{run_id}/shares").json())
    viewer = open_socket(bob.cookie)
    answer = viewer.call("watch_shared", {"token": token, "after": 0})
    assert answer["ok"] and answer["run"]["id"] == run_id
    wait_for(lambda: viewer.texts(run_id) == ["waiting at the gate"])
    assert "There is no run" in viewer.call("stop", {"run_id": run_id})["error"]
    assert bob.post(f"/api/runs/{run_id}/stop").status_code == 404
    assert alice.http.get(f"/api/runs/{run_id}").json()["state"] == "running"


def test_a_revoked_link_opens_nothing(
        users: tuple[Browser, Browser], open_socket: Callable[..., Watcher]) -> None:  # noqa: F811
    alice, bob = users
    run_id = _finished_run(alice)
    share = alice.post(f"/api/runs/{run_id}/shares").json()
    revoke = alice.http.delete(f"/api/runs/{run_id}/shares/{share['id']}",
                               headers={"X-CSRF-Token": alice.csrf()})
    assert revoke.status_code == 200
    for path in ("", "/log", "/lines"):
        gone = bob.http.get(f"/api/shared/{_token(share)}{path}")
        assert gone.status_code == 404 and "expired or was revoked" in gone.json()["error"]
    answer = open_socket(bob.cookie).call("watch_shared", {"token": _token(share)})
    assert "expired or was revoked" in answer["error"]
    assert alice.http.get(f"/api/runs/{run_id}/shares").json()["shares"] == []


def test_an_expired_link_opens_nothing(users: tuple[Browser, Browser]) -> None:
    alice, bob = users
    run_id = _finished_run(alice)
    token = _token(alice.post(f"/api/runs/{run_id}/shares", {"expires_in": 1}).json())
    assert bob.http.get(f"/api/shared/{token}").status_code == 200
    wait_for(lambda: bob.http.get(f"/api/shared/{token}").status_code == 404, timeout=5)


def test_a_bad_expiry_is_refused_with_a_sentence(users: tuple[Browser, Browser]) -> None:
    alice, _ = users
    run_id = _finished_run(alice)
    for bad in (0, 31 * 86_400, "soon", True):
        answer = alice.post(f"/api/runs/{run_id}/shares", {"expires_in": bad})
        assert answer.status_code == 400 and "expires_in" in answer.text


def test_the_store_holds_only_the_tokens_hash(users: tuple[Browser, Browser],
                                               app: Flask) -> None:  # noqa: F811
    alice, _ = users
    run_id = _finished_run(alice)
    token = _token(alice.post(f"/api/runs/{run_id}/shares").json())
    with app.app_context():
        store = get_realtime().store
        assert store.get_share(hashlib.sha256(token.encode()).hexdigest()) is not None
        assert token not in str(store.list_shares(run_id))
        files = [p for p in Path(store.path).parent.iterdir()  # type: ignore[attr-defined]
                 if p.name.startswith(Path(store.path).name)]  # type: ignore[attr-defined]
    assert files and not any(token.encode() in f.read_bytes() for f in files)


def test_revoking_ends_a_live_shared_watch(
        users: tuple[Browser, Browser], open_socket: Callable[..., Watcher]) -> None:  # noqa: F811
    alice, bob = users
    owner, viewer = open_socket(alice.cookie), open_socket(bob.cookie)
    run_id = owner.call("start", {"job": "countdown", "params": {"n": 2000, "delay": 0.01}}
                        )["run_id"]
    share = alice.post(f"/api/runs/{run_id}/shares").json()
    assert viewer.call("watch_shared", {"token": _token(share), "after": 0})["ok"]
    wait_for(lambda: len(viewer.texts(run_id)) > 5)
    alice.http.delete(f"/api/runs/{run_id}/shares/{share['id']}",
                      headers={"X-CSRF-Token": alice.csrf()})
    at_revoke = len(viewer.texts(run_id))
    wait_for(lambda: len(owner.texts(run_id)) > at_revoke + 100)  # the run goes on
    assert len(viewer.texts(run_id)) < len(owner.texts(run_id)) - 50
    owner.call("stop", {"run_id": run_id})
