"""CSRF on state-changing requests, and what the session cookie is (and is not)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from flask_realtime.web.app import create_app
from tests.conftest import wait_for


@pytest.fixture
def app(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """Without a login: CSRF and the cookie do not depend on one."""
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    return create_app({"TESTING": True, "SECRET_KEY": "test-secret-key", "LOGIN_REQUIRED": False,
                       "JOBS": "tests.jobs_for_tests", "WEBEX_ENV_FILE": ""})


def page_token(client: Any) -> str:
    html = client.get("/").get_data(as_text=True)
    match = re.search(r'data-csrf-token="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def test_post_without_csrf_token_is_403(app: Flask) -> None:
    client = app.test_client()
    page_token(client)
    response = client.post("/api/runs", json={"job": "countdown", "params": {"n": 0}})
    assert response.status_code == 403 and "CSRF" in response.json["error"]
    response = client.post("/api/runs", json={"job": "countdown"},
                           headers={"X-CSRF-Token": "forged"})
    assert response.status_code == 403


def test_post_with_the_page_token_is_accepted(app: Flask) -> None:
    client = app.test_client()
    token = page_token(client)
    response = client.post("/api/runs", json={"job": "countdown", "params": {"n": 0}},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 201
    run_id = response.json["id"]
    assert response.headers["Location"] == f"/api/runs/{run_id}"
    wait_for(lambda: client.get(f"/api/runs/{run_id}").json["state"] == "succeeded")


def test_another_sessions_token_does_not_work(app: Flask) -> None:
    mine, theirs = app.test_client(), app.test_client()
    page_token(mine)
    response = mine.post("/api/runs", json={"job": "countdown"},
                         headers={"X-CSRF-Token": page_token(theirs)})
    assert response.status_code == 403


def test_cookie_is_httponly_samesite_lax_and_not_secure_over_http(app: Flask) -> None:
    response = app.test_client().get("/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_cookie_is_secure_over_https(app: Flask) -> None:
    response = app.test_client().get("/", base_url="https://localhost")
    assert "; Secure" in response.headers["Set-Cookie"]


def test_cookie_holds_only_a_signed_random_id(app: Flask) -> None:
    client = app.test_client()
    token = page_token(client)
    value = client.get_cookie("session").value
    assert token not in value and len(value) < 120
    sid, _, signature = value.rpartition(".")
    assert sid and signature
    client.set_cookie("session", f"{sid}.{'A' * len(signature)}")  # tampered signature
    assert page_token(client) != token  # a fresh session, not the old one
