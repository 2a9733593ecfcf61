"""``flask-realtime run`` on the SQLite store, as real processes: killed with ``kill -9``
mid-run and started again, started twice on one instance folder, started on a damaged
database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import socketio

from flask_realtime.store.sqlite import INTERRUPTED
from tests.conftest import Watcher, wait_for
from tests.redis.conftest import ROOT, WebProcess, run_state


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def env(instance: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SECRET_KEY")}
    return {**base, "FLASK_REALTIME_LOGIN_REQUIRED": "false",
            "FLASK_REALTIME_JOBS": "tests.jobs_for_tests",
            "FLASK_REALTIME_WEBEX_ENV_FILE": '""', "FLASK_REALTIME_INSTANCE_PATH": str(instance),
            "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def servers(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], WebProcess]]:
    """``servers()``: a ``flask-realtime run`` on the test's instance folder, once it
    answers; every one still there is killed at the end."""
    started: list[WebProcess] = []

    def start() -> WebProcess:
        process = WebProcess(env, tmp_path / f"web{len(started)}.log")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def watcher() -> Iterator[Callable[[str], Watcher]]:
    opened: list[Watcher] = []

    def open_client(url: str) -> Watcher:
        sio = socketio.Client(reconnection=False)
        watching = Watcher(sio)
        sio.on("output", watching.on_output)
        sio.connect(url, transports=["websocket"], wait_timeout=10)
        opened.append(watching)
        return watching

    yield open_client
    for watching in opened:
        if watching.client.connected:
            watching.client.disconnect()


def stored_log(url: str, run_id: str) -> list[str]:
    return httpx.get(f"{url}/api/runs/{run_id}/log", params={"download": "0"},
                     timeout=30).text.splitlines()


def test_kill_9_mid_run_loses_nothing_a_watcher_received(
        servers: Callable[[], WebProcess], watcher: Callable[[str], Watcher]) -> None:
    server = servers()
    watching = watcher(server.url)
    run_id = watching.call("start", {"job": "numbers", "params": {
        "n": 1_000_000, "every": 500, "pause": 0.002}})["run_id"]
    assert watching.call("watch", {"run_id": run_id, "after": 0})["ok"]
    wait_for(lambda: len(watching.texts(run_id)) >= 20_000, timeout=60)
    server.kill()  # SIGKILL: no goodbye, no last commit
    received = watching.texts(run_id)  # nothing more can arrive: the process is gone

    again = servers()
    run = run_state(again.url, run_id)
    assert run["state"] == "failed" and run["error"] == INTERRUPTED
    log = stored_log(again.url, run_id)
    numbers = log[:-1]
    assert log[-1] == INTERRUPTED
    assert numbers == [str(i) for i in range(1, len(numbers) + 1)]  # in order, no gap
    assert len(numbers) >= len(received) and numbers[:len(received)] == received


def test_a_second_server_on_the_same_instance_folder_refuses_naming_the_first(
        servers: Callable[[], WebProcess], env: dict[str, str]) -> None:
    first = servers()
    assert first.proc is not None
    second = subprocess.run([sys.executable, "-m", "flask_realtime.cli", "run", "--port", "0",
                             "--no-demo"], env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert f"process {first.proc.pid}" in second.stderr and "Traceback" not in second.stderr
    assert httpx.get(f"{first.url}/healthz").json()["status"] == "ok"  # untouched


def test_exec_runs_beside_a_server_without_touching_its_database(
        servers: Callable[[], WebProcess], env: dict[str, str], instance: Path) -> None:
    servers()
    database = instance / "flask-realtime.sqlite3"
    before = database.stat().st_mtime_ns
    done = subprocess.run([sys.executable, "-m", "flask_realtime.cli", "exec", "countdown",
                           "n=2", "delay=0"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert database.stat().st_mtime_ns == before


def test_a_damaged_database_stops_the_start_with_a_sentence_naming_it(
        env: dict[str, str], instance: Path) -> None:
    instance.mkdir()
    database = instance / "flask-realtime.sqlite3"
    database.write_bytes(b"not a database at all\n" * 100)
    done = subprocess.run([sys.executable, "-m", "flask_realtime.cli", "run", "--port", "0",
                           "--no-demo"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert str(database) in done.stderr and "Traceback" not in done.stderr
    assert database.read_bytes() == b"not a database at all\n" * 100
