"""The request log of ``flask-realtime run`` (Werkzeug's): no secrets, nothing else changed.

Engine.IO's ``sid`` (on ``/socket.io/``) and the login callback's ``code`` and ``state``
(on ``/redirect``) are redacted; the same names elsewhere are logged as they are.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.conftest import LiveServer, wait_for

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture
def request_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="werkzeug")
    return caplog


def logged(caplog: pytest.LogCaptureFixture, path: str) -> str:
    """The request line Werkzeug logged for ``path`` (waited for)."""
    def line() -> str:
        found = [r.getMessage() for r in caplog.records
                 if r.name == "werkzeug" and f" {path.split('?')[0]}" in r.getMessage()]
        return found[-1] if found else ""
    return str(wait_for(line))


def test_polling_sids_are_redacted(live_server: LiveServer,
                                   request_log: pytest.LogCaptureFixture) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        sid = json.loads(http.get(HANDSHAKE).text[1:])["sid"]
        assert http.post(f"{HANDSHAKE}&sid={sid}", content="40").status_code == 200
        assert http.get(f"{HANDSHAKE}&sid={sid}").status_code == 200
    wait_for(lambda: sum("sid=" in r.getMessage() for r in request_log.records) >= 2)
    text = "\n".join(r.getMessage() for r in request_log.records if r.name == "werkzeug")
    assert sid not in text
    assert f"POST {HANDSHAKE}&sid=[redacted] HTTP/1.1" in text


def test_the_callback_code_and_state_are_redacted(live_server: LiveServer,
                                                  request_log: pytest.LogCaptureFixture) -> None:
    httpx.get(f"{live_server.url}/redirect?code=SECRET-CODE&state=SECRET-STATE", timeout=10)
    line = logged(request_log, "/redirect")
    assert "SECRET" not in line
    assert "/redirect?code=[redacted]&state=[redacted] " in line


def test_other_query_parameters_are_logged_as_they_are(
        live_server: LiveServer, request_log: pytest.LogCaptureFixture) -> None:
    httpx.get(f"{live_server.url}/api/runs?state=failed&code=7&sid=3", timeout=10)
    assert "/api/runs?state=failed&code=7&sid=3 " in logged(request_log, "/api/runs")
