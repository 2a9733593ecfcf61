"""Backups and restores, with the commands docs/deployment.md gives, on real processes.

Each store: a ``flask-realtime run`` (demo mode) with a logged-in user and a finished
run; the backup taken while it serves; everything wiped; the backup restored; the
server started again. The run is back with its output, and the user's session cookie
from before still logs them in.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import redis
from tests.auth.conftest import Browser
from tests.conftest import wait_for
from tests.processes import ROOT, WebProcess, wait_until
from tests.redis_server import RedisServer

DOCS = (ROOT / "docs" / "deployment.md").read_text()

# As docs/deployment.md writes them ("Backups"); the tests add the paths and the port.
SQLITE_BACKUP = ("python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                 "copy = sqlite3.connect(sys.argv[2]); db.backup(copy); copy.close()'")
REDIS_SNAPSHOT = "redis-cli BGSAVE"
REDIS_INFO = "redis-cli INFO persistence"
REDIS_LOAD_SNAPSHOT = "redis-server --appendonly no --save ''"
REDIS_AOF_ON = "redis-cli CONFIG SET appendonly yes"
REDIS_SHUTDOWN = "redis-cli SHUTDOWN"


def documented(command: str) -> str:
    """``command``, checked to be what the docs give."""
    assert command in DOCS, f"docs/deployment.md does not give: {command}"
    return command


def args_of(command: str, *more: object, port: int | None = None) -> list[str]:
    """A documented command's argv: this interpreter for python3, ``-p``/``--port``
    for the test's Redis, ``more`` at the end."""
    args = shlex.split(documented(command))
    if args[0] == "python3":
        args[0] = sys.executable
    if port is not None:
        args[1:1] = ["-p" if args[0] == "redis-cli" else "--port", str(port)]
    return [*args, *map(str, more)]


def sh(command: str, *more: object, port: int | None = None) -> str:
    """Run a documented command; its stdout."""
    args = args_of(command, *more, port=port)
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def demo_env(instance: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("FLASK_REALTIME_") and k not in ("REDIS_URL", "SECRET_KEY")}
    return {**base, "FLASK_REALTIME_INSTANCE_PATH": str(instance),
            "FLASK_REALTIME_WEBEX_ENV_FILE": '""', "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture
def user() -> Iterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        browser.close()


def finished_run(browser: Browser) -> tuple[str, list[str]]:
    """A countdown run of ``browser``'s user, once it has finished; its id and output."""
    started = browser.post("/api/runs", {"job": "countdown", "params": {"n": 5, "delay": 0}})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    wait_for(lambda: browser.http.get(f"/api/runs/{run_id}").json()["state"] == "succeeded",
             timeout=30)
    return run_id, log_of(browser, run_id)


def log_of(browser: Browser, run_id: str) -> list[str]:
    response = browser.http.get(f"/api/runs/{run_id}/log", params={"download": "0"})
    assert response.status_code == 200, response.status_code
    return response.text.splitlines()


def assert_back(browser: Browser, run_id: str, output: list[str]) -> None:
    """The session cookie from before the backup still logs in, and the run is there."""
    listed = browser.http.get("/api/runs")
    assert listed.status_code == 200, "the session cookie no longer logs in"
    assert browser.http.get(f"/api/runs/{run_id}").json()["state"] == "succeeded"
    assert log_of(browser, run_id) == output == ["5", "4", "3", "2", "1", "Liftoff!"]


def test_sqlite_store_online_backup_and_restore(tmp_path: Path,
                                                user: list[Browser]) -> None:
    instance, backup = tmp_path / "instance", tmp_path / "backup"
    server = WebProcess(demo_env(instance), tmp_path / "web.log", demo=True).start()
    try:
        browser = Browser(server.url)
        user.append(browser)
        browser.login("user1")
        run_id, output = finished_run(browser)

        backup.mkdir()  # while it serves: the database, and the key beside it
        sh(SQLITE_BACKUP, instance / "flask-realtime.sqlite3", backup / "flask-realtime.sqlite3")
        shutil.copy2(instance / documented("secret_key"), backup / "secret_key")

        server.kill()  # SIGKILL: what the backup holds is all there is
        shutil.rmtree(instance)
        shutil.copytree(backup, instance)  # the restore: both files back, nothing else
        server.start()
        assert_back(browser, run_id, output)
    finally:
        server.kill()


def redis_info(port: int) -> dict[str, str]:
    text = sh(REDIS_INFO, port=port)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_redis_snapshot_backup_and_restore(tmp_path: Path, user: list[Browser]) -> None:
    data, backup = tmp_path / "redis", tmp_path / "backup"
    store = RedisServer(data).start()
    env = demo_env(tmp_path / "instance", REDIS_URL=store.url,
                   SECRET_KEY="the-same-key-before-and-after")
    server = WebProcess(env, tmp_path / "web.log", demo=True)
    try:
        server.start()
        browser = Browser(server.url)
        user.append(browser)
        browser.login("user1")
        run_id, output = finished_run(browser)

        before = redis_info(store.port)["rdb_last_save_time"]
        sh(REDIS_SNAPSHOT, port=store.port)  # in the background, while it serves
        wait_until(lambda: (info := redis_info(store.port))["rdb_bgsave_in_progress"] == "0"
                   and info["rdb_last_save_time"] != before, "BGSAVE", 30)
        assert redis_info(store.port)["rdb_last_bgsave_status"] == "ok"
        backup.mkdir()
        shutil.copy2(data / "dump.rdb", backup / "dump.rdb")

        server.kill()
        store.kill()
        shutil.rmtree(data)  # AOF and all
        data.mkdir()
        shutil.copy2(backup / "dump.rdb", data / "dump.rdb")
        # With AOF on, Redis loads the AOF and ignores dump.rdb (it would start empty):
        # load the snapshot once with AOF off, let Redis write the AOF from it, stop.
        loading = subprocess.Popen(args_of(REDIS_LOAD_SNAPSHOT, "--dir", data, port=store.port),
                                   stdout=subprocess.DEVNULL)
        try:
            with redis.Redis(port=store.port, socket_connect_timeout=0.5) as client:
                wait_until(lambda: _pong(client), "redis-server with the snapshot", 15,
                           loading)
            sh(REDIS_AOF_ON, port=store.port)
            wait_until(lambda: (info := redis_info(store.port))["aof_enabled"] == "1"
                       and info["aof_rewrite_in_progress"] == "0", "the AOF rewrite", 30)
            subprocess.run(args_of(REDIS_SHUTDOWN, port=store.port), timeout=30,
                           capture_output=True)  # saves nothing: --save ''; AOF synced
            loading.wait(30)
        finally:
            if loading.poll() is None:
                loading.kill()
        store.start()  # as deployed: AOF on, and the AOF now holds the snapshot
        server.start()
        assert_back(browser, run_id, output)
    finally:
        server.kill()
        store.stop()


def _pong(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_the_backup_commands_name_the_default_instance_folder_of_a_checkout() -> None:
    """Without FLASK_REALTIME_INSTANCE_PATH, a source checkout's instance folder is
    Flask's default beside the package: src/instance."""
    from flask import Flask

    import flask_realtime

    folder = Path(Flask(flask_realtime.__name__).instance_path)
    assert folder == ROOT / "src" / "instance"
    assert "src/instance/flask-realtime.sqlite3" in DOCS
    assert "src/instance/flask-realtime.sqlite3" in (ROOT / "README.md").read_text()
