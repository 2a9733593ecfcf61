"""A live server in demo mode against a real Webex simulator, and clients that log in.

:class:`Browser` is an HTTP client with a cookie jar that follows redirects, as a
browser does: ``Browser(url).login("user2")`` goes through ``/login``, the
simulator's ``/authorize`` and our ``/redirect`` like the real flow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import socketio
from flask import Flask

from flask_realtime.web.app import create_app
from flask_realtime.web.auth import configure_demo
from tests.conftest import LiveServer, Watcher

COOKIE = "session"


@pytest.fixture
def simulator_options() -> dict[str, Any]:
    """Override in a module for other token lifetimes."""
    return {}


@pytest.fixture
def simulator(simulator_options: dict[str, Any]) -> Iterator[Any]:
    from flask_realtime.webex.simulator import SimulatorConfig, start_simulator

    handle = start_simulator(SimulatorConfig(**simulator_options), host="127.0.0.1", port=0)
    yield handle
    handle.stop()


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "STOP_GRACE_SECONDS": 0.5,
            "JOBS": "tests.jobs_for_tests,tests.auth.jobs_for_auth", "WEBEX_ENV_FILE": ""}


@pytest.fixture
def app(app_config: dict[str, Any], simulator: Any, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)
    configure_demo(app, simulator)
    return app


class Browser:
    """Cookies, redirects and the page's CSRF token, like a browser tab."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, follow_redirects=True, timeout=10)

    @property
    def cookie(self) -> str | None:
        return self.http.cookies.get(COOKIE)

    def login(self, user: str | None = None) -> httpx.Response:
        response = self.http.get("/login", params={"login_hint": user} if user else None)
        assert response.status_code == 200, response.text
        assert str(response.url) == f"{self.url}/", f"login ended at {response.url}"
        return response

    def csrf(self) -> str:
        match = re.search(r'data-csrf-token="([^"]+)"', self.http.get("/").text)
        assert match, "the page carries no CSRF token"
        return match.group(1)

    def post(self, path: str, json: Any = None, *, csrf: bool = True) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf()} if csrf else {}
        return self.http.post(path, json=json, headers=headers)

    def logout(self) -> httpx.Response:
        return self.http.post("/logout", data={"csrf_token": self.csrf()})

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def browser(live_server: LiveServer) -> Iterator[Callable[[], Browser]]:
    """``b = browser()``: a new browser (its own cookie jar) for the live server."""
    opened: list[Browser] = []

    def open_browser() -> Browser:
        opened.append(Browser(live_server.url))
        return opened[-1]

    yield open_browser
    for b in opened:
        b.close()


@pytest.fixture
def user(browser: Callable[[], Browser]) -> Browser:
    """A browser logged in as the simulator's user1."""
    b = browser()
    b.login("user1")
    return b


@pytest.fixture
def open_socket(live_server: LiveServer) -> Iterator[Callable[..., Watcher]]:
    """``open_socket(cookie, origin=…)``: a Socket.IO client sending that session cookie.

    The origin goes where each transport's library really sends it (websocket-client
    adds its own Origin header otherwise, and two Origin headers would be refused for
    the wrong reason)."""
    watchers: list[Watcher] = []

    def open_client(cookie: str | None, *, origin: str | None = None,
                    transport: str = "websocket",
                    headers: dict[str, str] | None = None) -> Watcher:
        sent = dict(headers or {})
        options: dict[str, Any] = {}
        if origin is not None and transport == "websocket":
            options["origin"] = origin
        elif origin is not None:
            sent["Origin"] = origin
        jar = requests.Session()  # python-socketio polls with it: the cookie on each request
        if cookie and transport == "polling":
            jar.cookies.set(COOKIE, cookie)
        elif cookie:
            sent["Cookie"] = f"{COOKIE}={cookie}"
        client = socketio.Client(reconnection=False, websocket_extra_options=options,
                                 http_session=jar)
        watcher = Watcher(client)
        client.on("output", watcher.on_output)
        client.on("state", watcher.states.append)
        client.on("states", watcher.states.extend)  # several changes at once
        watchers.append(watcher)
        client.connect(live_server.url, transports=[transport], headers=sent, wait_timeout=10)
        return watcher

    yield open_client
    for watcher in watchers:
        watcher.close()


def store_dump(store: Any) -> str:
    """Every key and value the store holds, as text (for the no-plaintext check)."""
    seen: set[int] = set()
    parts: list[str] = []

    def walk(value: Any) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, bytes | bytearray):
            parts.append(bytes(value).decode("latin-1"))
        elif isinstance(value, str | int | float):
            parts.append(str(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)
        elif hasattr(value, "__dict__") or hasattr(value, "__slots__"):
            for name in getattr(value, "__slots__", ()):
                walk(getattr(value, name, None))
            walk(getattr(value, "__dict__", {}))

    walk(store)
    # A SQLite store keeps most of it on disk only: its database files count too.
    path = getattr(store, "path", None)
    for suffix in ("", "-wal", "-journal"):
        file = Path(f"{path}{suffix}") if path else None
        if file is not None and file.is_file():
            parts.append(file.read_bytes().decode("latin-1"))
    return "\n".join(parts)
