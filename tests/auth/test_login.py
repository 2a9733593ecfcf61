"""The OAuth flow against the simulator: state, PKCE, session rotation, logout
(docs/reliability.md, requirement 9)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.auth.conftest import COOKIE, Browser
from tests.conftest import LiveServer


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def approve(http: httpx.Client) -> str:
    """Start a login and let the simulator approve it; the callback URL it sends back."""
    to_webex = http.get("/login")
    assert to_webex.status_code == 302
    back = http.get(to_webex.headers["Location"])
    assert back.status_code in (302, 303), back.text
    return str(back.headers["Location"])


def callback(http: httpx.Client, live_server: LiveServer, **params: str) -> httpx.Response:
    return http.get(f"{live_server.url}/redirect?{urlencode(params)}")


def logged_in(http: httpx.Client) -> bool:
    return http.get("/api/runs").status_code == 200


def test_full_login_through_the_simulator(browser: Callable[[], Browser]) -> None:
    b = browser()
    page = b.http.get("/")
    assert page.status_code == 200 and 'id="login-button"' in page.text
    assert b.http.get("/api/runs").status_code == 401
    b.login()
    page = b.http.get("/")
    assert 'data-user="' in page.text and 'id="login-button"' not in page.text
    assert b.http.get("/api/runs").json() == {"runs": []}


def test_authorize_url_carries_state_and_an_s256_challenge(
        live_server: LiveServer, simulator: Any) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        location = http.get("/login").headers["Location"]
    assert location.startswith(f"{simulator.base_url}/authorize?")
    params = query(location)
    assert params["response_type"] == "code" and params["client_id"] == "demo-client"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) >= 43
    assert len(params["state"]) >= 20
    assert params["redirect_uri"] == f"{live_server.url}/redirect"


def test_missing_state_is_refused(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        params = query(approve(http))
        response = callback(http, live_server, code=params["code"])
        assert response.status_code == 400 and "Start again" in response.text
        assert not logged_in(http)


def test_tampered_state_is_refused(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        params = query(approve(http))
        response = callback(http, live_server, code=params["code"], state=params["state"] + "x")
        assert response.status_code == 400 and not logged_in(http)


def test_replayed_state_is_refused(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        url = approve(http)
        assert http.get(url).status_code == 302 and logged_in(http)
        assert http.get(url).status_code == 400


def test_foreign_state_is_refused(live_server: LiveServer) -> None:
    """Login CSRF: an attacker's code and state, planted in the victim's browser."""
    with httpx.Client(base_url=live_server.url) as attacker, \
            httpx.Client(base_url=live_server.url) as victim:
        url = approve(attacker)
        victim.get("/login")  # the victim has a session with a state of its own
        assert victim.get(url).status_code == 400
        assert not logged_in(victim)


def test_wrong_pkce_verifier_is_refused_by_the_simulator(simulator: Any) -> None:
    def code_for(verifier: str) -> str:
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        response = httpx.get(f"{simulator.base_url}/authorize", params={
            "response_type": "code", "client_id": "demo-client", "state": "s",
            "redirect_uri": "http://127.0.0.1:1/redirect", "scope": "spark:all",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        return query(response.headers["Location"])["code"]

    def trade(code: str, verifier: str) -> httpx.Response:
        return httpx.post(f"{simulator.base_url}/access_token", data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": "demo-client", "client_secret": "demo-secret",
            "redirect_uri": "http://127.0.0.1:1/redirect"})

    verifier = secrets.token_urlsafe(48)
    refused = trade(code_for(verifier), secrets.token_urlsafe(48))
    assert refused.status_code == 400 and "access_token" not in refused.json()
    assert trade(code_for(verifier), verifier).status_code == 200


def test_session_id_changes_at_login(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        url = approve(http)
        before = http.cookies[COOKIE]
        assert http.get(url).status_code == 302
        after = http.cookies[COOKIE]
        assert after != before and logged_in(http)
    with httpx.Client(base_url=live_server.url, cookies={COOKIE: before}) as planted:
        assert not logged_in(planted)


def test_login_cookie_flags(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        response = http.get(approve(http))
    cookie = response.headers["Set-Cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "expires=" in cookie
    assert "secure" not in cookie  # plain http here; tests/auth/test_csrf_and_cookies: https


def test_logout_needs_the_csrf_token(browser: Callable[[], Browser]) -> None:
    b = browser()
    b.login()
    assert b.http.post("/logout").status_code == 403
    assert logged_in(b.http)


def test_logout_makes_the_old_cookie_worthless(browser: Callable[[], Browser],
                                               live_server: LiveServer) -> None:
    b = browser()
    b.login()
    old = b.cookie
    page = b.logout()
    assert str(page.url).endswith("/?logged_out=1") and "You are logged out" in page.text
    assert not logged_in(b.http)
    with httpx.Client(base_url=live_server.url, cookies={COOKIE: str(old)}) as replay:
        assert not logged_in(replay)


def test_logout_is_everywhere_and_a_new_login_does_not_revive_old_sessions(
        browser: Callable[[], Browser]) -> None:
    laptop, phone = browser(), browser()
    laptop.login("user1")
    phone.login("user1")
    laptop.logout()
    assert not logged_in(phone.http)
    laptop.login("user1")
    assert logged_in(laptop.http) and not logged_in(phone.http)


def test_a_second_device_does_not_log_out_the_first(browser: Callable[[], Browser]) -> None:
    laptop, phone = browser(), browser()
    laptop.login("user1")
    phone.login("user1")
    assert logged_in(laptop.http) and logged_in(phone.http)
