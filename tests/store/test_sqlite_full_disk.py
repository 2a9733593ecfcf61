"""A full disk under the SQLite store, for real: the instance folder on a 16 MB tmpfs.

The run keeps going, its output waits in the capture pump's bounded buffer (as during a
Redis outage), watchers see a warning line at once, and once space is back every line
is stored and delivered, in order. Needs ``mount`` (root); elsewhere it is skipped, and
tests/store/test_sqlite.py's simulated full database (``max_page_count``) still runs.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from flask import Flask

from flask_realtime.core.ports import StoreUnavailableError
from flask_realtime.store.sqlite import SQLiteStore
from flask_realtime.web.app import create_app
from flask_realtime.web.identity import LOCAL_USER
from tests.conftest import LiveServer, Watcher, start_server, wait_for

LINES = 60_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted for the test, unmounted after it. Not smaller: SQLite's WAL
    grows to about 4 MB between checkpoints, and a disk the WAL alone fills cannot be
    checkpointed again (the database file has no room to take the pages)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                              capture_output=True, text=True, timeout=30)
    except OSError as exc:  # no mount command at all
        pytest.skip(f"cannot mount a size-limited tmpfs here ({exc}); the simulated full "
                    "database of tests/store/test_sqlite.py covers the store's side")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here ({done.stderr.strip()}); the "
                    "simulated full database of tests/store/test_sqlite.py covers the "
                    "store's side")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30, check=False)


@pytest.fixture
def app(small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(small_disk / "instance"))
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret-key",
                      "JOBS": "tests.jobs_for_tests", "STOP_GRACE_SECONDS": 0.5})
    yield app


@pytest.fixture
def server(app: Flask) -> Iterator[LiveServer]:
    live = start_server(app)
    yield live
    live.stop()


@pytest.fixture
def watcher(server: LiveServer) -> Iterator[Watcher]:
    client = socketio.Client(reconnection=False)
    watching = Watcher(client)
    client.on("output", watching.on_output)
    client.connect(server.url, transports=["websocket"], wait_timeout=10)
    yield watching
    watching.close()


def fill(disk: Path) -> Path:
    """A file taking every byte the filesystem has left."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def waiting_lines(app: Flask) -> int:
    """Lines the capture pump holds because the store refused them."""
    outboxes = app.extensions["flask_realtime"].pump._outboxes.values()
    return sum(len(outbox.unsent) for outbox in outboxes)


def system_lines(watching: Watcher, run_id: str) -> list[dict[str, Any]]:
    return [line for line in watching.lines.get(run_id, []) if line["stream"] == "system"]


def test_a_full_disk_holds_output_in_memory_warns_and_loses_nothing_once_space_is_back(
        app: Flask, server: LiveServer, watcher: Watcher, small_disk: Path) -> None:
    realtime = app.extensions["flask_realtime"]
    run = realtime.start(LOCAL_USER, "numbers", {"n": LINES, "every": 100, "pause": 0.01})
    assert watcher.call("watch", {"run_id": run.id, "after": 0})["ok"]
    wait_for(lambda: len(watcher.texts(run.id)) >= 1_000, timeout=30)

    filler = fill(small_disk)
    # The run goes on: its lines pile up in the pump's buffer, not in the store...
    wait_for(lambda: waiting_lines(app) >= 5_000, timeout=60)
    assert realtime.store.get_run(run.id).state.value == "running"
    # ... the watcher is told at once, and so is the health check.
    wait_for(lambda: system_lines(watcher, run.id), timeout=10)
    assert "cannot be stored" in system_lines(watcher, run.id)[0]["text"]
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "degraded"

    filler.unlink()  # space is back
    wait_for(lambda: realtime.store.get_run(run.id).state.finished, timeout=120)
    assert realtime.store.get_run(run.id).state.value == "succeeded"
    wait_for(lambda: len(watcher.lines[run.id]) >= LINES + 1, timeout=30)
    numbers = [line["text"] for line in watcher.lines[run.id] if line["stream"] != "system"]
    assert numbers == [str(i) for i in range(1, LINES + 1)]  # every line, in order
    assert len(system_lines(watcher, run.id)) == 1  # the warning, no "lines were lost"
    assert watcher.errors == []
    log = httpx.get(f"{server.url}/api/runs/{run.id}/log", params={"download": "0"},
                    timeout=30).text.splitlines()
    assert [text for text in log if not text.startswith("[flask-realtime")] == numbers
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"


def test_a_refused_write_shows_the_warning_at_the_next_seq_and_stores_it_first(
        tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "flask-realtime.sqlite3")
    try:
        store.append_output("r1", [("stdout", "one", "\n")], 1, writer="w", offset=0)
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")  # as a full disk answers
        big = [("stdout", f"line {i}", "\n") for i in range(2, 50_000)]
        with pytest.raises(StoreUnavailableError):
            store.append_output("r1", big, 2, writer="w", offset=1)
        seen = store.read_output("r1", 1)
        assert (seen.first_seq, seen.end_seq, store.output_end("r1")) == (2, 2, 2)
        assert seen.lines[0][0] == "system" and "cannot be stored" in seen.lines[0][1]
        assert not store.healthy()
        store._db.execute("PRAGMA max_page_count = 1073741823")  # room again
        assert store.append_output("r1", big, 3, writer="w", offset=1) == 50_000
        stored = store.read_output("r1", 0, max_lines=100_000, max_chars=10**8)
        assert stored.lines[1] == seen.lines[0] and stored.lines[2:] == big
        assert store.healthy()
    finally:
        store.close()
