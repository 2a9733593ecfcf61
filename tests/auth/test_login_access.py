"""Who may log in (docs/access.md, "Who may log in"): ALLOWED_EMAIL_DOMAINS and
ALLOWED_WEBEX_ORGS, each alone and both together. A user they do not admit sees a
sentence after the Webex login (403), gets no session and no stored token, and the
refusal is in the audit trail. The simulator's users are userN@example.com, all in the
organisation whose id is base64 of ``ciscospark://us/ORGANIZATION/simulated``."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import socketio
from flask import Flask

from flask_realtime.web.access import org_key
from tests.auth.conftest import Browser

SIM_ORG = base64.urlsafe_b64encode(b"ciscospark://us/ORGANIZATION/simulated").decode(
    ).rstrip("=")


def _refused(b: Browser, user: str = "user1") -> str:
    response = b.http.get("/login", params={"login_hint": user})
    assert response.status_code == 403, response.text
    assert b.http.get("/api/runs").status_code == 401
    assert "data-csrf-token" not in b.http.get("/").text  # the login page, not the console
    return response.text


def _no_trace(app: Flask, user: str = "user1@example.com") -> None:
    store = app.extensions["flask_realtime"].store
    assert store.load_tokens(user) is None
    entries = store.read_audit()
    assert entries[0]["action"] == "login_refused" and entries[0]["actor"] == user


ADMITTED = [
    {"ALLOWED_EMAIL_DOMAINS": "example.com"},
    {"ALLOWED_EMAIL_DOMAINS": ["@Example.COM", "other.example"]},
    {"ALLOWED_WEBEX_ORGS": SIM_ORG},
    {"ALLOWED_WEBEX_ORGS": "SIMULATED"},  # the id inside, as Control Hub shows it
    {"ALLOWED_EMAIL_DOMAINS": "example.com", "ALLOWED_WEBEX_ORGS": SIM_ORG},
]
REFUSED = [
    ({"ALLOWED_EMAIL_DOMAINS": "other.example"}, "admits accounts at @other.example only"),
    ({"ALLOWED_WEBEX_ORGS": "another-org"}, "belongs to an organisation this server does "
                                            "not let in"),
    ({"ALLOWED_EMAIL_DOMAINS": "example.com", "ALLOWED_WEBEX_ORGS": "another-org"},
     "belongs to an organisation"),
    ({"ALLOWED_EMAIL_DOMAINS": "sub.example.com"}, "admits accounts at @sub.example.com"),
]
UNSET = {"ALLOWED_EMAIL_DOMAINS": [], "ALLOWED_WEBEX_ORGS": []}


def test_an_admitted_user_logs_in(app: Flask, browser: Callable[[], Browser]) -> None:
    for config in ADMITTED:
        app.config.update({**UNSET, **_checked(app, config)})
        b = browser()
        b.login("user2")
        assert b.http.get("/api/runs").status_code == 200, config


def test_anyone_else_sees_a_sentence_and_gets_no_session(
        app: Flask, browser: Callable[[], Browser], open_socket: Any) -> None:
    for config, sentence in REFUSED:
        app.config.update({**UNSET, **_checked(app, config)})
        b = browser()
        page = _refused(b)
        assert "Your Webex account (user1@example.com)" in page and sentence in page
        _no_trace(app)
        with pytest.raises(socketio.exceptions.ConnectionError):
            open_socket(b.cookie)


def test_narrower_lists_end_the_sessions_they_no_longer_admit(
        app: Flask, browser: Callable[[], Browser]) -> None:
    for config, _sentence in REFUSED[:2]:
        app.config.update(UNSET)
        b = browser()
        b.login("user1")
        assert b.http.get("/api/runs").status_code == 200
        app.config.update(_checked(app, config))  # as a restart with the new lists would
        assert b.http.get("/api/runs").status_code == 401, config
        assert "data-csrf-token" not in b.http.get("/").text


def test_org_ids_are_compared_by_the_id_inside_them() -> None:
    assert org_key(SIM_ORG) == "simulated" == org_key("simulated")
    assert org_key("not base64 !") == "not base64 !"


def _checked(app: Flask, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` read as the settings' checks read them (config.py), to update a
    running app."""
    from flask_realtime.config import _checked as check

    return {key: check(key, value, None, None) for key, value in config.items()}
