"""The stack behind https (scripts/stack with a certificate): nginx terminates TLS.

A self-signed certificate for 127.0.0.1, made by the fixture and given to every client
as its CA, so each connection here is verified, host name included: the login through
the simulator (demo mode), the session cookie it sets, a run streamed over ``wss://``,
HSTS, and plain http that only redirects.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import socketio

from tests.conftest import Watcher, wait_for
from tests.stack.conftest import log_tails

pytestmark = pytest.mark.stack

COOKIE = "session"


def verified(stack: dict[str, Any]) -> ssl.SSLContext:
    """What a client that trusts only this stack's certificate checks with."""
    return ssl.create_default_context(cafile=stack["tls"]["cert"])


@pytest.fixture(scope="module")
def login(tls_stack: dict[str, Any]) -> Iterator[tuple[httpx.Client, list[httpx.Response]]]:
    """An https client logged in as the simulator's user1, and the responses of its
    login (the redirects the browser follows: /login, the simulator, /redirect)."""
    client = httpx.Client(base_url=tls_stack["url"], verify=verified(tls_stack),
                          follow_redirects=True, timeout=15)
    page = client.get("/login", params={"login_hint": "user1"})
    assert page.status_code == 200 and str(page.url) == f"{tls_stack['url']}/", page.url
    yield client, [*page.history, page]
    client.close()


def test_plain_http_redirects_to_the_same_path_on_https(tls_stack: dict[str, Any]) -> None:
    response = httpx.get(f"{tls_stack['http_url']}/api/runs?limit=5", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == f"{tls_stack['url']}/api/runs?limit=5"
    assert "strict-transport-security" not in response.headers  # meaningless over http


@pytest.mark.parametrize("path", ["/", "/healthz", "/static/app.js", "/no-such-page"])
def test_https_responses_carry_hsts(tls_stack: dict[str, Any], path: str) -> None:
    response = httpx.get(f"{tls_stack['url']}{path}", verify=verified(tls_stack))
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_the_session_cookie_is_secure_and_http_only(
        login: tuple[httpx.Client, list[httpx.Response]]) -> None:
    """The app sees https (nginx's X-Forwarded-Proto, trusted with PROXY_COUNT=1), so
    the cookie it sets at login is never sent over plain http nor readable by scripts."""
    _, responses = login
    assert [r.url.path for r in responses] == ["/login", "/v1/authorize", "/redirect", "/"]
    callback = responses[2]
    assert callback.url.scheme == "https"
    cookies = [c for c in callback.headers.get_list("set-cookie")
               if c.startswith(f"{COOKIE}=")]
    assert cookies, callback.headers
    attributes = {a.strip().split("=")[0].lower() for a in cookies[-1].split(";")[1:]}
    assert {"secure", "httponly"} <= attributes, cookies[-1]
    # The login went to the simulator with the https redirect URI (what it registered).
    assert "redirect_uri=https%3A%2F%2F127.0.0.1" in str(responses[1].url)


def test_a_run_streams_over_wss(tls_stack: dict[str, Any],
                                login: tuple[httpx.Client, list[httpx.Response]]) -> None:
    client, _ = login
    csrf = re.search(r'data-csrf-token="([^"]+)"', client.get("/").text)
    assert csrf
    started = client.post("/api/runs", json={"job": "countdown",
                                             "params": {"n": 20, "delay": 0.02}},
                          headers={"X-CSRF-Token": csrf.group(1)})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]

    jar = requests.Session()
    jar.verify = tls_stack["tls"]["cert"]  # engine.io's websocket verifies with it too
    sio = socketio.Client(reconnection=False, http_session=jar,
                          websocket_extra_options={"origin": tls_stack["url"]})
    watcher = Watcher(sio)
    sio.on("output", watcher.on_output)
    try:
        try:
            sio.connect(tls_stack["url"], transports=["websocket"], wait_timeout=15,
                        headers={"Cookie": f"{COOKIE}={client.cookies[COOKIE]}"})
        except socketio.exceptions.ConnectionError as exc:  # once in CI: say what the
            pytest.fail(f"{exc}\n{log_tails(tls_stack)}")  # stack's processes logged
        assert sio.transport() == "websocket"
        assert sio.eio.ws is not None and sio.eio.ws.sock.version().startswith("TLS")
        assert watcher.call("watch", {"run_id": run_id, "after": 0})["ok"]
        expected = [str(i) for i in range(20, 0, -1)] + ["Liftoff!"]
        wait_for(lambda: watcher.texts(run_id) == expected, timeout=30)
        assert not watcher.errors
    finally:
        watcher.close()
