"""The web tier's contract, three stores: what web/ports.py promises (login sessions,
Webex token blobs, the one-question socket check, share links, notification preferences)
holds for SQLite, memory and Redis.
Core's part is tests/store/test_contract.py; the ``store`` fixture is in conftest.py."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

from flask_realtime.notify.preferences import PreferenceStore
from flask_realtime.web.ports import AppStore, LoginStore, ShareStore
from tests.conftest import wait_for


def test_sessions_expire_and_only_json_survives(store: LoginStore) -> None:
    store.save_session("s1", {"user": "alice", "n": 1}, ttl=60)
    assert store.load_session("s1") == {"user": "alice", "n": 1}
    store.delete_session("s1")
    store.delete_session("s1")
    assert store.load_session("s1") is None
    store.save_session("s2", {"user": "bob"}, ttl=1)
    wait_for(lambda: store.load_session("s2") is None, timeout=5)


def test_token_blobs(store: LoginStore) -> None:
    assert store.load_tokens("alice") is None
    store.save_tokens("alice", b"\x00encrypted\xff")
    assert store.load_tokens("alice") == b"\x00encrypted\xff"
    store.delete_tokens("alice")
    store.delete_tokens("alice")
    assert store.load_tokens("alice") is None


def test_tokens_are_replaced_only_while_they_are_the_ones_expected(store: LoginStore) -> None:
    assert store.replace_tokens("alice", None, b"first")  # None: expects none stored
    assert not store.replace_tokens("alice", None, b"again")
    assert store.replace_tokens("alice", b"first", b"second")
    assert not store.replace_tokens("alice", b"first", b"stale")
    assert store.load_tokens("alice") == b"second"


def test_a_renewal_saved_after_a_logout_does_not_bring_the_tokens_back(store: LoginStore) -> None:
    store.save_tokens("alice", b"before")
    store.delete_tokens("alice")  # the logout, while the renewal was at Webex
    assert not store.replace_tokens("alice", b"before", b"renewed")
    assert store.load_tokens("alice") is None


def test_a_compare_and_set_may_delete(store: LoginStore) -> None:
    store.save_tokens("alice", b"mine")
    assert not store.replace_tokens("alice", b"not mine", None)
    assert store.replace_tokens("alice", b"mine", None)
    assert store.load_tokens("alice") is None


def test_sessions_and_tokens_are_read_in_one_question(store: LoginStore) -> None:
    store.save_session("s1", {"user": "alice"}, ttl=60)
    store.save_tokens("alice", b"a")
    assert store.sessions_and_tokens(["s1", "gone"], ["alice", "bob"]) == (
        {"s1"}, {"alice": b"a"})
    assert store.sessions_and_tokens(iter(["s1"]), iter([])) == ({"s1"}, {})
    assert store.sessions_and_tokens([], []) == (set(), {})


def _share(share_id: str, run_id: str = "r1", expires_in: float = 60) -> dict[str, Any]:
    return {"id": share_id, "token_hash": "h-" + share_id, "run_id": run_id,
            "owner": "alice", "expires_at": time.time() + expires_in}


def test_shares_are_found_by_token_hash_and_listed_per_run(store: ShareStore) -> None:
    later, sooner = _share("s1", expires_in=120), _share("s2", expires_in=60)
    store.create_share(later)
    store.create_share(sooner)
    store.create_share(_share("s3", run_id="other"))
    assert store.get_share("h-s1") == later
    assert store.get_share("unknown") is None
    assert store.list_shares("r1") == [sooner, later]
    assert store.list_shares("none") == []


def test_a_deleted_share_is_gone(store: ShareStore) -> None:
    store.create_share(_share("s1"))
    store.delete_share("s1")
    store.delete_share("s1")
    assert store.get_share("h-s1") is None
    assert store.list_shares("r1") == []


def test_an_expired_share_is_gone(store: ShareStore) -> None:
    store.create_share(_share("s1", expires_in=1))
    wait_for(lambda: store.get_share("h-s1") is None, timeout=5)
    assert store.list_shares("r1") == []


def test_a_sqlite_database_from_before_shares_opens_with_them(tmp_path: Path) -> None:
    from flask_realtime.store.sqlite import MIGRATIONS, SQLiteStore

    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(MIGRATIONS[0] + "PRAGMA user_version=1;")
        db.execute("INSERT INTO tokens VALUES ('alice', x'01')")
        db.commit()
    store = SQLiteStore(path)
    try:
        assert store.load_tokens("alice") == b"\x01"
        store.create_share(_share("s1"))
        found = store.get_share("h-s1")
        assert found is not None and found["run_id"] == "r1"
    finally:
        store.close()


# -- notification preferences (docs/notifications.md) ------------------------------------

def test_preferences_are_kept_per_user_as_json(store: PreferenceStore) -> None:
    assert store.load_preferences("alice") is None
    store.save_preferences("alice", {"notify": "failure", "webex": True, "webex_room": None})
    store.save_preferences("bob", {"notify": "finish"})
    assert store.load_preferences("alice") == {"notify": "failure", "webex": True,
                                               "webex_room": None}
    store.save_preferences("alice", {"notify": "off"})  # over what was there
    assert store.load_preferences("alice") == {"notify": "off"}
    assert store.load_preferences("bob") == {"notify": "finish"}


def test_a_run_keeps_its_notify_choice_and_notifications(store: AppStore) -> None:
    from dataclasses import replace

    from flask_realtime.core.runs import Run, RunState

    run = store.create_run(Run(id="n1", job="j", title="t", user="alice", notify="failure"))
    ended = run.moved_to(RunState.RUNNING).moved_to(RunState.FAILED, error="boom")
    assert store.replace_run(ended, RunState.QUEUED)
    noted = replace(ended, notifications={"webhook": {"status": "failed", "reason": "x"}})
    assert store.replace_run(noted, RunState.FAILED)  # a note: the state does not move
    found = store.get_run("n1")
    assert found is not None and found.notify == "failure" and found.state is RunState.FAILED
    assert found.notifications == {"webhook": {"status": "failed", "reason": "x"}}


def test_a_sqlite_database_from_before_preferences_opens_with_them(tmp_path: Path) -> None:
    from flask_realtime.store.sqlite import MIGRATIONS, SQLiteStore

    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "PRAGMA user_version=2;")
        db.commit()
    store = SQLiteStore(path)
    try:
        store.save_preferences("alice", {"notify": "finish"})
        assert store.load_preferences("alice") == {"notify": "finish"}
    finally:
        store.close()
    store = SQLiteStore(path)  # and they survive a restart
    try:
        assert store.load_preferences("alice") == {"notify": "finish"}
    finally:
        store.close()
