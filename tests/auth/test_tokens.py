"""Tokens through the real flow, with two-second access tokens: renewal (also inside a
running job), failing closed, and nothing readable in the store (docs/reliability.md,
requirement 10)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import socketio
from cryptography.fernet import Fernet, MultiFernet
from flask import Flask

from flask_realtime.web.auth import Auth
from tests.auth import jobs_for_auth
from tests.auth.conftest import Browser, store_dump
from tests.conftest import Watcher, wait_for

USER = "user1@example.com"


@pytest.fixture
def simulator_options() -> dict[str, Any]:
    return {"access_token_lifetime": 2}


@pytest.fixture
def auth(app: Flask) -> Auth:
    return app.extensions["flask_realtime_auth"]  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def resume_afterwards() -> Any:
    jobs_for_auth.resume.clear()
    yield
    jobs_for_auth.resume.set()


def finished(b: Browser, run_id: str) -> dict[str, Any]:
    return wait_for(lambda: (r := b.http.get(f"/api/runs/{run_id}").json())["state"] in (
        "succeeded", "failed", "stopped") and r)  # type: ignore[no-any-return]


def log_of(b: Browser, run_id: str) -> str:
    return b.http.get(f"/api/runs/{run_id}/log").text


def test_vault_renews_an_expiring_token(user: Browser, auth: Auth) -> None:
    first = auth.vault.load(USER)
    assert first is not None
    wait_for(lambda: time.time() > first.expires_at - 0.9)  # inside the 1 s margin
    renewed = auth.vault.access_token(USER)
    assert renewed != first.access_token
    assert auth.vault.access_token(USER) == renewed  # fresh now: not renewed again


def test_a_running_job_keeps_working_across_token_expiry(user: Browser, auth: Auth) -> None:
    run_id = user.post("/api/runs", {"job": "token_across_expiry"}).json()["id"]
    wait_for(lambda: "first token works" in log_of(user, run_id))
    current = auth.vault.load(USER)
    assert current is not None
    wait_for(lambda: time.time() > current.expires_at + 0.2)  # the job's token has expired
    jobs_for_auth.resume.set()
    run = finished(user, run_id)
    assert run["state"] == "succeeded", run.get("error")
    assert run["result"] == {"renewed": True}
    assert f"second token works for {USER}" in log_of(user, run_id)


def test_a_refused_refresh_fails_the_run_and_asks_for_a_login(user: Browser,
                                                               auth: Auth) -> None:
    tokens = auth.vault.load(USER)
    assert tokens is not None
    auth.vault.save(replace(tokens, refresh_token="revoked", expires_at=time.time()))
    run_id = user.post("/api/runs", {"job": "webex_me"}).json()["id"]
    store = auth.realtime.store
    run = wait_for(lambda: (r := store.get_run(run_id)) and r.state.finished and r)
    assert run.state == "failed" and "log in again" in run.error
    assert user.http.get("/api/runs").status_code == 401  # logged out: the tokens are gone
    assert 'id="login-button"' in user.http.get("/").text


def test_store_holds_no_plaintext_token(user: Browser, auth: Auth, app: Flask) -> None:
    first = auth.vault.load(USER)
    assert first is not None
    run_id = user.post("/api/runs", {"job": "token_across_expiry"}).json()["id"]
    wait_for(lambda: "first token works" in log_of(user, run_id))
    wait_for(lambda: time.time() > first.expires_at + 0.2)
    jobs_for_auth.resume.set()
    assert finished(user, run_id)["state"] == "succeeded"
    second = auth.vault.load(USER)
    assert second is not None and second.access_token != first.access_token
    dump = store_dump(app.extensions["flask_realtime"].store)
    assert USER in dump and run_id in dump  # the dump does see the store's contents
    for secret in (first.access_token, second.access_token, first.refresh_token,
                   second.refresh_token, str(user.cookie).rpartition(".")[0]):
        assert secret and secret not in dump


def test_wrong_encryption_key_fails_closed(user: Browser, auth: Auth,
                                           open_socket: Callable[..., Watcher]) -> None:
    assert user.http.get("/api/runs").status_code == 200
    auth.vault.fernet = MultiFernet([Fernet(Fernet.generate_key())])  # as after a key change
    assert user.http.get("/api/runs").status_code == 401
    assert 'id="login-button"' in user.http.get("/").text
    with pytest.raises(socketio.exceptions.ConnectionError):
        open_socket(user.cookie)
    user.login("user1")  # a new login stores tokens under the new key
    run = finished(user, user.post("/api/runs", {"job": "webex_me"}).json()["id"])
    assert run["state"] == "succeeded" and run["result"] == USER
