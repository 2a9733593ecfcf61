"""Blobs (core/ports.py ``BlobStore``) on every store: a run's uploads and artifacts kept
by name, large ones whole, and deleted with the run (issue 20)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from flask_realtime.core.ports import RunStore
from flask_realtime.core.runs import Run, RunState


def finished_run(run_id: str, user: str = "alice") -> Run:
    return Run(id=run_id, job="j", title="j", user=user, state=RunState.SUCCEEDED)


def test_a_blob_reads_back_whole_and_is_replaced_by_name(store: RunStore) -> None:
    big = os.urandom(3 * 1024 * 1024 + 5)  # more than one SQLite part
    store.put_blob("r1", "upload/data", big)
    store.put_blob("r1", "artifact/empty.txt", b"")
    assert store.get_blob("r1", "upload/data") == big
    assert store.get_blob("r1", "artifact/empty.txt") == b""
    assert store.list_blobs("r1") == {"upload/data": len(big), "artifact/empty.txt": 0}
    store.put_blob("r1", "upload/data", b"small")
    assert store.get_blob("r1", "upload/data") == b"small"
    assert store.list_blobs("r1")["upload/data"] == 5
    assert store.get_blob("r1", "nope") is None and store.get_blob("r2", "upload/data") is None
    assert store.list_blobs("r2") == {}


def test_blobs_go_with_their_run(store: RunStore) -> None:
    for run_id in ("old", "new"):
        store.create_run(finished_run(run_id))
        store.put_blob(run_id, "artifact/a.txt", run_id.encode())
    assert store.forget_old_runs("alice", keep=1) == ["old"]
    assert store.list_blobs("old") == {} and store.get_blob("old", "artifact/a.txt") is None
    assert store.get_blob("new", "artifact/a.txt") == b"new"
    store.delete_blobs("new")
    assert store.list_blobs("new") == {}


def test_a_sqlite_database_from_before_blobs_opens_with_them(tmp_path: Path) -> None:
    from flask_realtime.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore

    assert any("CREATE TABLE blobs" in script for script in MIGRATIONS[2:])

    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "PRAGMA user_version=2;")
        db.execute("INSERT INTO tokens VALUES ('alice', x'01')")
        db.commit()
    store = SQLiteStore(path)
    try:
        assert store.load_tokens("alice") == b"\x01"  # what it held is still there
        store.put_blob("r1", "upload/data", b"kept")
        assert store.get_blob("r1", "upload/data") == b"kept"
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
