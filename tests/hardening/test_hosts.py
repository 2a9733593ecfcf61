"""DNS rebinding: a Host that is not this server's gets 400 before any handler runs.

With ``LOGIN_REQUIRED=false`` (this module's server) a rebound page
(``Host``/``Origin: rebind.attacker.example:PORT``) would otherwise be same-origin with
the console: CSRF token, ``POST /api/runs``, a websocket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websocket

from flask_realtime.web.app import create_app
from tests.conftest import LiveServer, start_server

REBOUND = "rebind.attacker.example"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "ALLOWED_HOSTS": "console.example, .corp.example"}


def get(server: LiveServer, path: str, host: str, **headers: str) -> httpx.Response:
    return httpx.get(server.url + path, headers={"Host": host, **headers}, timeout=10)


def test_a_rebound_host_is_refused_before_any_handler(live_server: LiveServer) -> None:
    port = live_server.url.rsplit(":", 1)[1]
    host = f"{REBOUND}:{port}"
    page = get(live_server, "/", host)
    assert page.status_code == 400
    assert "FLASK_REALTIME_ALLOWED_HOSTS" in page.json()["error"]
    assert "csrf" not in page.text
    posted = httpx.post(f"{live_server.url}/api/runs", json={"job": "hello"}, timeout=10,
                        headers={"Host": host, "Origin": f"http://{host}"})
    assert posted.status_code == 400
    assert get(live_server, "/socket.io/?EIO=4&transport=polling", host,
               Origin=f"http://{host}").status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(
            live_server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
            timeout=5, host=host, origin=f"http://{host}")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "192.0.2.7",
                                  "console.example", "ci.corp.example"])
def test_local_names_addresses_and_configured_hosts_are_served(
        live_server: LiveServer, host: str) -> None:
    for name in (host, f"{host}:8080"):
        assert get(live_server, "/", name).status_code == 200, name


@pytest.fixture
def integration_server(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A server whose Webex integration names its public URL in REDIRECT_URI."""
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    server = start_server(create_app({
        "TESTING": True, "SECRET_KEY": "test-secret-key", "WEBEX_ENV_FILE": "",
        "WEBEX_CLIENT_ID": "id", "WEBEX_CLIENT_SECRET": "secret",
        "WEBEX_REDIRECT_URI": "https://console.public.example/redirect"}))
    yield server
    server.stop()


def test_the_redirect_uris_host_is_served(integration_server: LiveServer) -> None:
    assert get(integration_server, "/healthz", "console.public.example").status_code == 200
    assert get(integration_server, "/healthz", "public.example").status_code == 400
