"""Real processes on a real Redis: web processes (``flask-realtime run``) and RQ workers.

Login is off (``LOGIN_REQUIRED=false``) so that every client is the same local user:
these tests are about processes and Redis, tests/auth about users.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from rq import Worker

from redis import Redis
from tests.conftest import Watcher, wait_for
from tests.processes import ROOT, Process, WebProcess, wait_until
from tests.redis_server import RedisServer


@pytest.fixture
def stack_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "SECRET_KEY": "shared-test-secret",
            "FLASK_REALTIME_LOGIN_REQUIRED": "false", "FLASK_REALTIME_JOBS": "tests.jobs_for_tests",
            "FLASK_REALTIME_STOP_GRACE_SECONDS": "1", "FLASK_REALTIME_WEBEX_ENV_FILE": '""',
            "FLASK_REALTIME_INSTANCE_PATH": str(tmp_path / "instance"),
            "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


@pytest.fixture
def web(stack_env: dict[str, str], processes: list[Process],
        tmp_path: Path) -> Callable[..., WebProcess]:
    """``web()``: one more web process on the shared Redis."""

    def start(**env: str) -> WebProcess:
        process = WebProcess({**stack_env, **env}, tmp_path / f"web{len(processes)}.log")
        processes.append(process)
        return process.start()

    return start


@pytest.fixture
def worker(stack_env: dict[str, str], processes: list[Process],
           tmp_path: Path) -> Callable[..., Process]:
    """``worker()``: one more ``flask-realtime worker`` on the shared Redis, returned once
    it is registered with RQ (a run started earlier is told no worker is there)."""

    def start(**env: str) -> Process:
        process = Process(["worker"], {**stack_env, **env},
                          tmp_path / f"worker{len(processes)}.log")
        processes.append(process)
        with Redis.from_url(stack_env["REDIS_URL"]) as connection:
            before = Worker.count(connection=connection)
            process.start()

            wait_until(lambda: Worker.count(connection=connection) > before,
                       "the worker registered with RQ", 30, process.proc, process.log)
        return process

    return start


@pytest.fixture
def client() -> Iterator[Callable[[str], Watcher]]:
    """``client(url)``: a Socket.IO client recording output by seq, like the page."""
    opened: list[Watcher] = []

    def open_client(url: str) -> Watcher:
        sio = socketio.Client(reconnection=False)
        watcher = Watcher(sio)
        sio.on("output", watcher.on_output)
        sio.on("state", watcher.states.append)
        sio.on("states", watcher.states.extend)  # several changes at once
        sio.connect(url, transports=["websocket"], wait_timeout=10)
        opened.append(watcher)
        return watcher

    yield open_client
    for watcher in opened:
        with contextlib.suppress(Exception):
            watcher.close()


def run_state(url: str, run_id: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/runs/{run_id}", timeout=5).json()  # type: ignore[no-any-return]


def finished(url: str, run_id: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(lambda: (r := run_state(url, run_id)).get("state") in (  # type: ignore[no-any-return]
        "succeeded", "failed", "stopped") and r, timeout=timeout, interval=0.05)


# The process helpers live in tests/processes.py; test modules here import them from
# this conftest too.
__all__ = ["ROOT", "Process", "RedisServer", "WebProcess", "finished", "run_state"]
