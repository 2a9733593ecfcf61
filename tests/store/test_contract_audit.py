"""The audit trail's contract (web/ports.py ``AuditStore``), on the three stores: entries
are appended, read newest first a page at a time, and dropped only by the retention an
append applies (by age and by count). The ``store`` fixture is in conftest.py."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from flask_realtime.store.sqlite import SQLiteStore
from flask_realtime.web.ports import AuditStore


def _entry(n: int, at: float | None = None) -> dict[str, object]:
    return {"at": time.time() if at is None else at, "actor": f"user{n}@example.com",
            "action": "start", "detail": {"n": n}}


def test_entries_are_read_newest_first_with_their_ids(store: AuditStore) -> None:
    ids = [store.append_audit(_entry(n)) for n in range(3)]
    assert len(set(ids)) == 3
    found = store.read_audit()
    assert [e["detail"] for e in found] == [{"n": 2}, {"n": 1}, {"n": 0}]
    assert [e["id"] for e in found] == ids[::-1]
    assert found[0]["actor"] == "user2@example.com" and found[0]["action"] == "start"


def test_pages_follow_on_with_before(store: AuditStore) -> None:
    for n in range(5):
        store.append_audit(_entry(n))
    first = store.read_audit(limit=2)
    second = store.read_audit(before=first[-1]["id"], limit=2)
    third = store.read_audit(before=second[-1]["id"], limit=2)
    assert [e["detail"]["n"] for e in first + second + third] == [4, 3, 2, 1, 0]
    assert store.read_audit(before=third[-1]["id"]) == []


def test_an_empty_trail_reads_as_nothing(store: AuditStore) -> None:
    assert store.read_audit() == []


@pytest.mark.parametrize("before", ["not-an-id", "²", "9" * 40, "-1", "(0", ""])
def test_a_page_end_no_store_gave_reads_as_nothing(store: AuditStore, before: str) -> None:
    store.append_audit(_entry(0))
    assert store.read_audit(before=before) == []


def test_retention_by_count_keeps_the_newest(store: AuditStore) -> None:
    for n in range(6):
        store.append_audit(_entry(n), max_entries=4)
    assert [e["detail"]["n"] for e in store.read_audit()] == [5, 4, 3, 2]


def test_retention_by_age_drops_the_old_entries_at_the_next_append(store: AuditStore) -> None:
    store.append_audit(_entry(0, at=time.time() - 3))
    store.append_audit(_entry(1), max_age=3600)
    assert [e["detail"]["n"] for e in store.read_audit()] == [1, 0]
    store.append_audit(_entry(2), max_age=1.5)
    found = [e["detail"]["n"] for e in store.read_audit()]
    assert 0 not in found and found[:1] == [2]


def test_ids_keep_growing_after_entries_are_dropped(store: AuditStore) -> None:
    store.append_audit(_entry(0), max_entries=1)
    first = store.read_audit()[0]["id"]
    store.append_audit(_entry(1), max_entries=1)
    (only,) = store.read_audit()
    assert only["id"] != first and only["detail"] == {"n": 1}
    assert store.read_audit(before=only["id"]) == []


def test_the_sqlite_trail_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "flask-realtime.sqlite3"
    store = SQLiteStore(path)
    store.append_audit(_entry(7))
    store.close()
    reopened = SQLiteStore(path)
    try:
        assert [e["detail"] for e in reopened.read_audit()] == [{"n": 7}]
    finally:
        reopened.close()


def test_a_sqlite_database_from_before_the_trail_opens_with_it(tmp_path: Path) -> None:
    from flask_realtime.store.sqlite import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "PRAGMA user_version=2;")
        db.execute("INSERT INTO tokens VALUES ('alice', x'01')")
        db.commit()
    store = SQLiteStore(path)
    try:
        assert store.load_tokens("alice") == b"\x01"
        store.append_audit(_entry(1))
        assert [e["detail"] for e in store.read_audit()] == [{"n": 1}]
    finally:
        store.close()
