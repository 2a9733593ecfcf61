"""Shared fixtures: a real server on a free port, and real Socket.IO clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
from flask import Flask
from werkzeug.serving import make_server

from flask_realtime.web.app import RequestHandler, create_app


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


@dataclass
class LiveServer:
    url: str
    app: Flask
    _server: Any = None
    _thread: threading.Thread | None = None

    def stop(self) -> None:
        self._server.shutdown()
        self.app.extensions["flask_realtime"].close()


def start_server(app: Flask) -> LiveServer:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=RequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LiveServer(f"http://127.0.0.1:{server.server_port}", app, server, thread)


@pytest.fixture(autouse=True)
def _instance_folder(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's apps keep their SQLite store in a folder of the test's own: an app
    made without one would open (and lock) the package's instance folder, which every
    test run on this machine shares."""
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))


@pytest.fixture
def app_config(tmp_path: Any) -> dict[str, Any]:
    """Override in a test module to change settings; the instance folder is a temp dir."""
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "STOP_GRACE_SECONDS": 0.5}


@pytest.fixture
def app(app_config: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    return create_app(app_config)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = start_server(app)
    yield server
    server.stop()


@dataclass
class Watcher:
    """A python-socketio client that records output batches by seq, checking order.

    python-engineio's client handles each incoming message in a thread of its own, so
    two batches can reach ``on_output`` in either order (a browser handles them in
    order). A batch is held until the one before it has been recorded: ``lines`` is
    always a gapless prefix of the run's output, and a gap the server leaves shows as
    lines that never arrive. A batch that repeats lines is an error.
    """

    client: socketio.Client
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    states: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    held: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_output(self, batch: dict[str, Any]) -> None:
        run_id = batch["run_id"]
        with self._lock:
            after = batch["first_seq"] - 1 - batch.get("skipped", 0)  # the seq it follows
            if after < self.last_seq.get(run_id, 0):
                self.errors.append(f"{run_id}: got first_seq {batch['first_seq']} again, "
                                   f"after {self.last_seq[run_id]}")
                return
            held = self.held.setdefault(run_id, {})
            held[after] = batch
            while (batch := held.pop(self.last_seq.get(run_id, 0), None)) is not None:
                self.lines.setdefault(run_id, []).extend(batch["lines"])
                self.last_seq[run_id] = batch["first_seq"] + len(batch["lines"]) - 1

    def texts(self, run_id: str) -> list[str]:
        return [line["text"] for line in self.lines.get(run_id, [])]

    def state_of(self, run_id: str) -> str | None:
        for state in reversed(self.states):
            if state["id"] == run_id:
                return state["state"]  # type: ignore[no-any-return]
        return None

    def call(self, event: str, data: Any) -> Any:
        return self.client.call(event, data, timeout=10)

    def close(self) -> None:
        """Disconnect at once: Werkzeug answers a websocket close frame with an HTTP 400
        instead of a close frame, so websocket-client would wait 3 s for one."""
        ws = getattr(self.client.eio, "ws", None)
        if ws is not None and self.client.connected:
            ws.close(timeout=0.2)
        self.client.disconnect()


@pytest.fixture
def connect(live_server: LiveServer) -> Iterator[Callable[..., Watcher]]:
    """Open a Socket.IO client to the live server: ``w = connect()``."""
    watchers: list[Watcher] = []

    def open_client(**kwargs: Any) -> Watcher:
        client = socketio.Client(reconnection=False)
        watcher = Watcher(client)
        client.on("output", watcher.on_output)
        client.on("state", watcher.states.append)
        client.on("states", watcher.states.extend)  # several changes at once
        client.connect(live_server.url, transports=["websocket"], wait_timeout=10, **kwargs)
        watchers.append(watcher)
        return watcher

    yield open_client
    for watcher in watchers:
        watcher.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One redis-server for the session (tests flush what they need)."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    redis_server.client().flushall()
    return str(redis_server.url)
