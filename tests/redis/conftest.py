"""Real processes on a real Redis: web processes (``flask-realtime run``) and RQ workers.

Login is off (``LOGIN_REQUIRED=false``) so that every client is the same local user:
these tests are about processes and Redis, tests/auth about users.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from rq import Worker

from redis import Redis
from tests.conftest import Watcher, wait_for
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A child process of the test, killed (if still there) at the end."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "flask_realtime.cli", *self.args],
                                     env=self.env, cwd=ROOT, stdout=out, stderr=out)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        """Its child processes: an RQ worker's work-horse outlives a SIGKILLed worker."""
        assert self.proc is not None
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.append(int(stat.parent.name))
        return found


class WebProcess(Process):
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["run", "--port", str(self.port), "--no-demo"], env, log)

    def start(self) -> WebProcess:
        super().start()

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert self.proc is not None and self.proc.poll() is None, self.output()
                return False

        wait_for(up, timeout=30, interval=0.05)
        return self

    def restart(self) -> WebProcess:
        self.kill(signal.SIGTERM)
        return self.start()


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

            def registered() -> bool:
                assert process.proc is not None and process.proc.poll() is None, \
                    process.output()
                return Worker.count(connection=connection) > before

            wait_for(registered, timeout=30, interval=0.05)
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


__all__ = ["RedisServer", "finished", "run_state"]
