"""Logout on one web process ends the user's sockets on every process
(docs/reliability.md, requirement 8)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from flask_realtime.web.app import create_app
from flask_realtime.web.auth import configure_demo
from tests.auth.conftest import COOKIE, Browser, simulator, simulator_options  # noqa: F401
from tests.conftest import LiveServer, Watcher, start_server, wait_for


@pytest.fixture
def two_servers(redis_url: str, simulator: Any, tmp_path: Path,  # noqa: F811
                monkeypatch: pytest.MonkeyPatch) -> Iterator[list[LiveServer]]:
    """Two web apps in demo mode sharing one Redis: a session made on one is valid on both."""
    servers: list[LiveServer] = []
    for name in ("a", "b"):
        monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / name))
        app = create_app({"TESTING": True, "SECRET_KEY": "shared-test-secret",
                          "REDIS_URL": redis_url, "WEBEX_ENV_FILE": ""})
        configure_demo(app, simulator)
        servers.append(start_server(app))
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def socket_to() -> Iterator[Callable[[str, str | None], Watcher]]:
    opened: list[Watcher] = []

    def open_client(url: str, cookie: str | None) -> Watcher:
        client = socketio.Client(reconnection=False)
        watcher = Watcher(client)
        opened.append(watcher)
        client.connect(url, transports=["websocket"], wait_timeout=10,
                       headers={"Cookie": f"{COOKIE}={cookie}"})
        return watcher

    yield open_client
    for watcher in opened:
        with contextlib.suppress(Exception):
            watcher.close()


def test_logout_on_a_ends_the_users_sockets_on_b_within_a_second(
        two_servers: list[LiveServer], socket_to: Callable[[str, str | None], Watcher]) -> None:
    a, b = two_servers
    laptop, other = Browser(a.url), Browser(a.url)
    try:
        laptop.login("user1")
        other.login("user2")
        mine = socket_to(b.url, laptop.cookie)  # the same session, served by process B
        theirs = socket_to(b.url, other.cookie)
        assert mine.call("watch", {"run_id": "none"})["error"]  # connected and answered
        assert laptop.logout().status_code == 200
        wait_for(lambda: not mine.client.connected, timeout=1.0)
        assert theirs.client.connected
    finally:
        laptop.close()
        other.close()
