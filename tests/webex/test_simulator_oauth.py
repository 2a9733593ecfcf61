"""The simulator's ``/v1/authorize`` sends codes only to registered redirect URIs.

Issue 13, item 14 (docs/reliability.md, section 7): any ``redirect_uri`` got a code for
any user, and CR/LF in it went into the ``Location`` header as it was. As Webex does,
an integration registers its redirect URIs; others get Webex's error, never a redirect.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from flask_realtime.webex.simulator import SimulatorConfig, SimulatorHandle, start_simulator
from flask_realtime.webex.simulator.http import Reply, Request

REGISTERED = "http://app.example:8000/redirect"


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(spaces=1, messages=0, redirect_uris=[REGISTERED])


def authorize(sim: SimulatorHandle, redirect_uri: str, **extra: str) -> httpx.Response:
    return httpx.get(f"{sim.base_url}/authorize", params={
        "client_id": "demo-client", "response_type": "code", "redirect_uri": redirect_uri,
        "state": "s1", **extra})


def raw_authorize(sim: SimulatorHandle, redirect_uri: str) -> bytes:
    """The simulator's whole answer, headers as written, for a hand-made request."""
    query = urlencode({"client_id": "demo-client", "response_type": "code",
                       "redirect_uri": redirect_uri, "state": "s1"})
    with socket.create_connection((sim.server.host, sim.server.port), timeout=10) as conn:
        conn.sendall(f"GET /v1/authorize?{query} HTTP/1.1\r\nHost: sim\r\n"
                     "Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def test_a_registered_redirect_uri_gets_a_code(sim: SimulatorHandle) -> None:
    response = authorize(sim, REGISTERED)
    assert response.headers["Location"].startswith(f"{REGISTERED}?")
    assert code_of(response)


@pytest.mark.parametrize("uri", [
    "http://attacker.example/steal",
    "http://app.example:8001/redirect",       # another port
    "http://app.example:8000/redirect/x",     # another path
    "http://app.example:8000/redirect?to=x",  # a query of its own
    "https://app.example:8000/redirect",      # another scheme
])
def test_an_unregistered_redirect_uri_gets_an_error_and_no_redirect(
        sim: SimulatorHandle, uri: str) -> None:
    response = authorize(sim, uri)
    assert response.status_code == 400 and "location" not in response.headers
    assert "redirect_uri" in response.json()["message"]


@pytest.mark.parametrize("uri", [
    f"{REGISTERED}\r\nSet-Cookie: session=planted",
    "http://app.example:8000/re\r\ndirect",  # urlsplit drops CR/LF: no match by parsing
    f"{REGISTERED}\nSet-Cookie: session=planted",
])
def test_cr_or_lf_in_the_redirect_uri_writes_no_header(sim: SimulatorHandle, uri: str) -> None:
    answer = raw_authorize(sim, uri)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"set-cookie" not in head and b"location" not in head


def test_a_header_value_with_cr_or_lf_is_never_written(sim: SimulatorHandle) -> None:
    """Even an endpoint's bug cannot split a header: the server answers 500 instead."""
    async def planting(request: Request) -> Reply:
        return Reply(302, headers={"Location": "http://x/\r\nSet-Cookie: session=planted"})

    sim.server.handler = planting
    answer = raw_authorize(sim, REGISTERED)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert answer.startswith(b"HTTP/1.1 500 ")
    assert b"set-cookie" not in head and b"location" not in head


def test_loopback_redirect_uris_may_use_any_port_by_default() -> None:
    """RFC 8252 section 7.3: what the tests' servers on free ports rely on."""
    sim = start_simulator(SimulatorConfig(spaces=1, messages=0))
    try:
        assert code_of(authorize(sim, "http://127.0.0.1:41234/redirect"))
        assert code_of(authorize(sim, "http://localhost:5000/redirect"))
        assert authorize(sim, "http://127.0.0.1:41234/elsewhere").status_code == 400
        assert authorize(sim, "http://app.example/redirect").status_code == 400
    finally:
        sim.stop()


def test_the_code_is_traded_only_with_the_redirect_uri_it_was_issued_for(
        sim: SimulatorHandle) -> None:
    def trade(code: str, redirect_uri: str) -> httpx.Response:
        return httpx.post(f"{sim.base_url}/access_token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": "demo-client", "client_secret": "demo-secret"})

    refused = trade(code_of(authorize(sim, REGISTERED)), "http://attacker.example/steal")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert trade(code_of(authorize(sim, REGISTERED)), REGISTERED).status_code == 200


@pytest.fixture
def demo_simulator(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """What ``flask-realtime run --host 0.0.0.0 --port 5000`` starts in demo mode."""
    from flask_realtime.cli import _start_demo
    from flask_realtime.web.app import create_app

    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret-key", "WEBEX_ENV_FILE": ""})
    handle = _start_demo(app, "192.0.2.7", 5000)
    yield handle
    handle.stop()
    app.extensions["flask_realtime"].close()


def test_demo_mode_registers_the_apps_own_callback(demo_simulator: SimulatorHandle) -> None:
    for uri in ("http://192.0.2.7:5000/redirect", "http://localhost:5000/redirect",
                "http://127.0.0.1:5000/redirect"):
        assert code_of(authorize(demo_simulator, uri))
    assert authorize(demo_simulator, "http://127.0.0.1:5001/redirect").status_code == 400
