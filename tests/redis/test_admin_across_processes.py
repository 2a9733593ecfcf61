"""Admins with two web processes on one Redis (docs/access.md, docs/scale-out.md): an
admin whose socket is on process B watches, hears the state of and stops a run that
user1 started on process A, and both processes write one audit trail."""

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
from tests.jobs_for_tests import gate_open


@pytest.fixture
def two_servers(redis_url: str, simulator: Any, tmp_path: Path,  # noqa: F811
                monkeypatch: pytest.MonkeyPatch) -> Iterator[list[LiveServer]]:
    servers: list[LiveServer] = []
    for name in ("a", "b"):
        monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / name))
        app = create_app({"TESTING": True, "SECRET_KEY": "shared-test-secret",
                          "REDIS_URL": redis_url, "WEBEX_ENV_FILE": "",
                          "JOBS": "tests.jobs_for_tests", "STOP_GRACE_SECONDS": 0.5,
                          "ADMIN_USERS": "user3@example.com"})
        configure_demo(app, simulator)
        servers.append(start_server(app))
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def socket_to() -> Iterator[Callable[[str, str | None], Watcher]]:
    opened: list[Watcher] = []

    def open_client(url: str, cookie: str | None) -> Watcher:
        watcher = Watcher(socketio.Client(reconnection=False))
        watcher.client.on("output", watcher.on_output)
        watcher.client.on("state", watcher.states.append)
        watcher.client.on("states", watcher.states.extend)  # several changes at once
        opened.append(watcher)
        watcher.client.connect(url, transports=["websocket"], wait_timeout=10,
                               headers={"Cookie": f"{COOKIE}={cookie}"})
        return watcher

    yield open_client
    for watcher in opened:
        with contextlib.suppress(Exception):
            watcher.close()


def test_an_admin_on_b_watches_and_stops_a_run_started_on_a(
        two_servers: list[LiveServer], socket_to: Callable[[str, str | None], Watcher]
        ) -> None:
    a, b = two_servers
    gate_open.clear()
    user, admin = Browser(a.url), Browser(b.url)
    try:
        user.login("user1")
        admin.login("user3")
        owner = socket_to(a.url, user.cookie)
        watcher = socket_to(b.url, admin.cookie)
        admin_states: list[dict[str, Any]] = []
        watcher.client.on("admin_state", admin_states.append)
        watcher.client.on("admin_states", admin_states.extend)  # several changes at once
        run_id = owner.call("start", {"job": "gate"})["run_id"]
        assert watcher.call("admin_watch", {"run_id": run_id, "after": 0})["ok"]
        wait_for(lambda: watcher.texts(run_id) == ["waiting at the gate"])
        assert watcher.call("admin_stop", {"run_id": run_id}) == {"ok": True}
        wait_for(lambda: owner.state_of(run_id) == "stopped")
        wait_for(lambda: any(s["id"] == run_id and s["state"] == "stopped"
                             for s in admin_states))
        trail = admin.http.get("/api/admin/audit").json()["entries"]
        assert [(e["actor"], e["action"]) for e in trail[:4]] == [
            ("user3@example.com", "admin_stop"), ("user3@example.com", "admin_watch"),
            ("user1@example.com", "start"), ("user3@example.com", "login")]
    finally:
        gate_open.set()
        user.close()
        admin.close()
