"""Engine.IO's HTTP side against a hostile page or client (docs/reliability.md, section 7).

A sid handed out by a polling handshake is bound to the login session that opened it:
no JSONP (a same-site page could read the sid from a script tag), no request on a sid
without that session's cookie, no handshake from a script tag. And malformed transport
input closes that connection with a warning, never an ERROR line or a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websocket

from flask_realtime.web import socketio_internals
from flask_realtime.web.transport import LogBudget
from tests.auth import conftest as auth
from tests.conftest import LiveServer, wait_for
from tests.hardening.conftest import ServerProblems

# Demo mode, logged-in users (tests/auth/conftest.py).
simulator_options, simulator, app_config, app = (
    auth.simulator_options, auth.simulator, auth.app_config, auth.app)
browser, user, Browser = auth.browser, auth.user, auth.Browser
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
SCRIPT_TAG = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors",
              "Sec-Fetch-Dest": "script"}
PAGE_XHR = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Dest": "empty"}


def handshake(http: httpx.Client, headers: dict[str, str] | None = None) -> str:
    response = http.get(HANDSHAKE, headers=headers)
    assert response.status_code == 200 and response.text.startswith("0{"), response.text
    return str(json.loads(response.text[1:])["sid"])


def engineio_sockets(server: LiveServer) -> dict[str, Any]:
    return socketio_internals.engineio_sockets(server.app.extensions["socketio"].server.eio)


@pytest.fixture
def stranger(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client with no cookie at all: the attacker's own machine."""
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        yield client


def test_jsonp_polling_is_refused(user: Browser, live_server: LiveServer) -> None:
    response = user.http.get(HANDSHAKE + "&j=0")
    assert response.status_code == 400
    assert "sid" not in response.text and "___eio" not in response.text
    assert engineio_sockets(live_server) == {}


def test_a_polling_sid_is_worth_nothing_without_the_session_that_opened_it(
        user: Browser, browser: Callable[[], Browser], stranger: httpx.Client,
        live_server: LiveServer) -> None:
    sid = handshake(user.http)
    other = browser()
    other.login("user2")
    for client in (stranger, other.http):
        posted = client.post(f"{HANDSHAKE}&sid={sid}", content="40",
                             headers={"Content-Type": "text/plain"})
        assert posted.status_code in (400, 403), posted.text
        assert client.get(f"{HANDSHAKE}&sid={sid}").status_code in (400, 403)
    assert live_server.app.extensions["flask_realtime"].sockets == {}
    # Its own session still uses it.
    assert user.http.post(f"{HANDSHAKE}&sid={sid}", content="40").text == "OK"
    assert user.http.get(f"{HANDSHAKE}&sid={sid}").text.startswith("40")
    assert len(live_server.app.extensions["flask_realtime"].sockets) == 1


def test_upgrading_a_polling_sid_needs_the_session_that_opened_it(
        user: Browser, live_server: LiveServer) -> None:
    sid = handshake(user.http)
    url = live_server.url.replace("http", "ws", 1) + \
        f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, timeout=5, origin=live_server.url)
    ws = websocket.create_connection(url, timeout=5, origin=live_server.url,
                                     header=[f"Cookie: session={user.cookie}"])
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
    finally:
        ws.close(timeout=0.2)


def test_a_script_tag_cannot_open_a_polling_session(user: Browser,
                                                    live_server: LiveServer) -> None:
    response = user.http.get(HANDSHAKE, headers=SCRIPT_TAG)
    assert response.status_code == 403, response.text
    assert engineio_sockets(live_server) == {}
    handshake(user.http, PAGE_XHR)  # the page's own polling still opens


def warnings_of_ours(problems: ServerProblems) -> list[str]:
    return [r.getMessage() for r in problems.all
            if r.levelno == logging.WARNING and r.name.startswith("flask_realtime")]


def test_polling_payloads_engineio_cannot_decode_log_a_few_warnings_and_no_error(
        stranger: httpx.Client, live_server: LiveServer,
        server_problems: ServerProblems) -> None:
    """20 POSTs with too many packets, each on its own sid, from nobody logged in."""
    too_many = "\x1e".join(["2"] * 17)  # python-engineio decodes at most 16 a payload
    sids = []
    for _ in range(20):
        sids.append(handshake(stranger))
        response = stranger.post(f"{HANDSHAKE}&sid={sids[-1]}", content=too_many)
        assert response.status_code == 400
    assert stranger.get(f"{HANDSHAKE}&sid={sids[0]}").status_code == 400  # closed
    assert server_problems.summary() == [], server_problems.text()
    assert 1 <= len(warnings_of_ours(server_problems)) <= 5, warnings_of_ours(server_problems)


def test_empty_websocket_frames_log_a_warning_and_no_error(
        live_server: LiveServer, server_problems: ServerProblems) -> None:
    url = live_server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    for _ in range(5):
        ws = websocket.create_connection(url, timeout=5, origin=live_server.url)
        assert ws.recv().startswith("0{")
        ws.send("")
        assert ws.recv() in ("", None)  # closed by the server (pings come 25 s later)
        ws.close(timeout=0.2)
    # Closed; python-engineio's monitor drops closed sockets from its table later.
    wait_for(lambda: all(s.closed for s in list(engineio_sockets(live_server).values())))
    assert server_problems.summary() == [], server_problems.text()
    assert warnings_of_ours(server_problems) == [
        "closed an Engine.IO connection from 127.0.0.1 that sent an empty websocket frame"] * 5


def test_a_warning_flood_becomes_a_few_lines_and_a_count() -> None:
    now = [0.0]
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("tests.hardening.budget")
    logger.addHandler(Collect())
    budget = LogBudget(logger, limit=3, period=60.0, clock=lambda: now[0])
    for n in range(100):
        budget.warning("bad input %d", n)
    now[0] = 60.0
    budget.warning("bad input %d", 100)
    assert records == ["bad input 0", "bad input 1", "bad input 2",
                       "bad input 100 (97 more like it in the minute before were not logged)"]
