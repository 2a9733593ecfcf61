"""The login page says only what the app means, and pending logins do not pile up.

Issue 13, items 12 and 13 (docs/reliability.md, section 7): ``/redirect``'s
``error_description`` (and an unknown ``error``) is text an attacker picks, so the page
shows a fixed sentence per OAuth error code instead; and each ``GET /login`` adds an
OAuth state to the session, so only the newest few are kept.
"""

from __future__ import annotations

import json

import httpx
from flask import Flask

from tests.auth.conftest import COOKIE
from tests.conftest import LiveServer

SPOOF = "Your account is locked: call +1 555 0100 and give your password"


def stored_session(app: Flask, cookie: str) -> str:
    """The session data the store keeps for this cookie, as the JSON it is saved as."""
    with app.test_request_context(headers={"Cookie": f"{COOKIE}={cookie}"}):
        from flask import request

        data = app.session_interface.open_session(app, request)
        assert data is not None and not data.new, "the cookie names no stored session"
        return json.dumps(dict(data))


def start_logins(http: httpx.Client, count: int) -> list[str]:
    """``count`` times ``GET /login`` in one session: the authorize URLs, oldest first."""
    locations = []
    for _ in range(count):
        response = http.get("/login")
        assert response.status_code == 302
        locations.append(response.headers["Location"])
    return locations


def finish_login(http: httpx.Client, authorize_url: str) -> httpx.Response:
    """Let the simulator approve one authorize URL and follow it back to ``/redirect``."""
    approved = httpx.get(authorize_url)
    assert approved.status_code == 302, approved.text
    return http.get(approved.headers["Location"])


def test_error_description_is_not_shown(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        page = http.get("/redirect", params={"error": "access_denied",
                                             "error_description": SPOOF})
    assert page.status_code == 400
    assert "You did not allow the login at Webex" in page.text
    assert "call +1 555" not in page.text and "locked" not in page.text


def test_an_unknown_error_code_is_not_shown(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        page = http.get("/redirect", params={"error": "Call_support_at_555_0100"})
    assert page.status_code == 400
    assert "The login did not complete" in page.text
    assert "555" not in page.text and "support" not in page.text


def test_each_known_error_code_has_its_own_sentence(live_server: LiveServer) -> None:
    codes = ["access_denied", "invalid_request", "unauthorized_client",
             "unsupported_response_type", "invalid_scope", "server_error",
             "temporarily_unavailable"]
    with httpx.Client(base_url=live_server.url) as http:
        texts = [http.get("/redirect", params={"error": code}).text for code in codes]
    sentences = {text.split('id="login-error"', 1)[1].split("</p>", 1)[0] for text in texts}
    assert len(sentences) == len(codes)


def test_many_logins_keep_the_session_small(app: Flask, live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        start_logins(http, 300)
        size = len(stored_session(app, http.cookies[COOKIE]))
    assert size < 4096, f"the session holds {size} bytes after 300 logins were started"


def test_the_newest_login_completes_and_one_from_long_ago_is_refused(
        live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        locations = start_logins(http, 300)
        oldest = finish_login(http, locations[0])
        assert oldest.status_code == 400 and "Start again" in oldest.text
        newest = finish_login(http, locations[-1])
        assert newest.status_code == 302 and http.get("/api/runs").status_code == 200

