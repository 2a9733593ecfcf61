"""The SQLite store: what survives reopening, what it refuses to open, how it pages."""

from __future__ import annotations

import logging
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_realtime.core.output import Line
from flask_realtime.core.ports import StoreUnavailableError
from flask_realtime.core.runs import Run, RunState
from flask_realtime.store import MemoryStore, open_store
from flask_realtime.store import sqlite as sqlite_store
from flask_realtime.store.sqlite import INTERRUPTED, SQLiteStore, StoreOpenError


def open_at(opened: list[SQLiteStore], path: Path, **options: object) -> SQLiteStore:
    store = SQLiteStore(path, **options)  # type: ignore[arg-type]
    opened.append(store)
    return store


def a_run(run_id: str, user: str = "alice", state: RunState = RunState.QUEUED) -> Run:
    return Run(id=run_id, job="countdown", title="Countdown", user=user, params={"n": 3},
               state=state)


def numbered(first: int, last: int) -> list[Line]:
    return [("stdout", f"line {i}", "\n") for i in range(first, last + 1)]


def test_everything_survives_reopening(opened: list[SQLiteStore], path: Path) -> None:
    store = open_at(opened, path)
    run = store.create_run(a_run("r1"), "alice\x00req-1")
    done = run.moved_to(RunState.RUNNING).moved_to(RunState.SUCCEEDED, result={"ok": 1},
                                                   has_result=True)
    store.replace_run(run.moved_to(RunState.RUNNING), RunState.QUEUED)
    store.replace_run(done, RunState.RUNNING)
    store.append_output("r1", numbered(1, 2500), 1000, writer="w", offset=0)
    store.request_stop("r1")
    store.save_session("s1", {"user": "alice"}, ttl=600)
    store.save_tokens("alice", b"\x00encrypted")
    store.close()

    again = open_at(opened, path)
    assert again.get_run("r1") == done
    found = again.run_for_request("alice\x00req-1")
    assert found is not None and found.id == "r1"
    assert again.output_end("r1") == 2500
    assert again.read_output("r1", 2490).lines == numbered(2491, 2500)
    assert again.stop_requested("r1")
    assert again.load_session("s1") == {"user": "alice"}
    assert again.load_tokens("alice") == b"\x00encrypted"
    # The writer's count survives too: a batch sent again after the restart is not stored twice.
    assert again.append_output("r1", numbered(1, 2500), 2000, writer="w", offset=0) == 2500


def test_runs_left_going_are_failed_at_the_next_start_and_keep_their_output(
        tmp_path: Path) -> None:
    config = {"STORE": "sqlite"}
    store = open_store(config, tmp_path)
    assert isinstance(store, SQLiteStore)
    store.create_run(a_run("queued"))
    store.create_run(a_run("running", state=RunState.RUNNING))
    store.create_run(a_run("stopping", state=RunState.STOPPING))
    store.create_run(a_run("done", state=RunState.SUCCEEDED))
    store.append_output("running", numbered(1, 10), 1)
    store.close()

    store = open_store(config, tmp_path)
    try:
        for run_id in ("queued", "running", "stopping"):
            run = store.get_run(run_id)
            assert run is not None and run.state is RunState.FAILED
            assert run.error == INTERRUPTED and run.ended_at is not None
        done = store.get_run("done")
        assert done is not None and done.state is RunState.SUCCEEDED and done.error is None
        lines = store.read_output("running", 0).lines
        assert lines[:10] == numbered(1, 10) and lines[10] == ("system", INTERRUPTED, "\n")
    finally:
        store.close()


def test_a_database_from_a_newer_version_is_refused(opened: list[SQLiteStore],
                                                    path: Path) -> None:
    open_at(opened, path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {sqlite_store.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreOpenError, match="newer version of Flask-Realtime") as refused:
        open_at(opened, path)
    assert str(path) in str(refused.value)


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(
        opened: list[SQLiteStore], path: Path) -> None:
    garbage = b"these are not the pages you are looking for\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(StoreOpenError, match="not a Flask-Realtime database") as refused:
        open_at(opened, path)
    assert str(path) in str(refused.value)
    assert path.read_bytes() == garbage
    open_at(opened, path.with_name("other.sqlite3"))  # the lock was released on the way out


def test_a_damaged_database_is_refused(opened: list[SQLiteStore], path: Path) -> None:
    store = open_at(opened, path)
    for i in range(200):
        store.create_run(a_run(f"r{i}"))
        store.append_output(f"r{i}", numbered(1, 50), 1)
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page:3 * page + 200] = b"\xff" * 200  # a b-tree page's header and cells
    path.write_bytes(bytes(data))
    with pytest.raises(StoreOpenError, match="damaged") as refused:
        open_at(opened, path)
    assert str(path) in str(refused.value)


def test_a_second_store_on_the_same_folder_is_refused_naming_the_holder(
        opened: list[SQLiteStore], path: Path) -> None:
    import os

    open_at(opened, path)
    with pytest.raises(StoreOpenError, match=f"process {os.getpid()}") as refused:
        open_at(opened, path)
    assert str(path.parent) in str(refused.value)
    opened[0].close()
    open_at(opened, path)  # released with the store


def test_paging_a_big_run_decodes_only_the_chunks_it_returns(
        opened: list[SQLiteStore], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_at(opened, path, retention_lines=1_000_000)
    store.create_run(a_run("big"))
    for first in range(1, 100_001, 5000):
        store.append_output("big", numbered(first, first + 4999), first)
    store.close()
    store = open_at(opened, path, retention_lines=1_000_000)  # nothing decoded yet
    decoded: list[int] = []
    decode = sqlite_store._decode

    def counting(packing: int, payload: bytes) -> tuple[list[Line], Any]:
        found = decode(packing, payload)
        decoded.append(len(found[0]))
        return found

    monkeypatch.setattr(sqlite_store, "_decode", counting)
    piece = store.read_output("big", 54_321, max_lines=100)
    assert piece.lines == numbered(54_322, 54_421) and piece.end_seq == 100_000
    assert piece.times == [(0, 50_001)]
    assert len(decoded) <= 2
    decoded.clear()
    assert store.read_output("big", 99_990).lines == numbered(99_991, 100_000)
    assert len(decoded) == 1


def test_single_line_appends_share_chunks(opened: list[SQLiteStore], path: Path) -> None:
    store = open_at(opened, path)
    for i in range(1, 2501):
        store.append_output("r1", numbered(i, i), i // 100)
    with sqlite3.connect(path) as db:  # whole chunks, then the open one's small rows
        assert db.execute("SELECT first_seq, last_seq FROM chunks WHERE last_seq <= 2000"
                          ).fetchall() == [(1, 1000), (1001, 2000)]
        assert db.execute("SELECT min(first_seq), count(*) FROM chunks WHERE last_seq > 2000"
                          ).fetchone() == (2001, 500)
    piece = store.read_output("r1", 950, max_lines=100)
    assert piece.lines == numbered(951, 1050)
    assert piece.times == [(0, 9), (49, 10)]  # line 1000 was appended at 10


ODD_LINES: list[Line] = [
    ("stdout", "plain", "\n"), ("stderr", "to stderr", "\n"), ("stdout", "", "\n"),
    ("stdout", "partial", ""), ("stdout", "50%", "\r"), ("log", "été ✓ 😀", "\n"),
    ("system", "lone \udcff surrogate", "\n"), ("stdout", "tab\there", "\n"),
    ("odd \udcff stream", "a stream name orjson refuses", "\n"),
]


@pytest.mark.parametrize("repeat", [1, 125])  # one small plain row; whole compressed chunks
def test_lines_of_every_kind_read_back_as_written_after_reopening(
        opened: list[SQLiteStore], path: Path, repeat: int) -> None:
    store = open_at(opened, path)
    written = ODD_LINES * repeat
    store.append_output("r1", written, 1)
    store.close()
    store = open_at(opened, path)
    assert store.read_output("r1", 0, max_lines=10_000, max_chars=1 << 20).lines == written


@given(st.lists(st.tuples(st.sampled_from(["stdout", "stderr", "log"]), st.text(max_size=12),
                          st.sampled_from(["\n", "", "\r"])), min_size=1, max_size=40))
def test_a_rows_payload_decodes_to_its_lines_and_their_running_sizes(
        lines: list[Line]) -> None:
    decoded, sizes = sqlite_store._decode(*sqlite_store._pack(lines))
    assert decoded == lines
    assert list(sizes) == [sum(len(t) for _, t, _ in lines[:k]) for k in range(len(lines) + 1)]


def test_text_holding_a_newline_is_stored_as_a_json_array_and_reads_back(
        opened: list[SQLiteStore], path: Path) -> None:
    """No line the capture makes holds a newline, but append_output takes any text."""
    store = open_at(opened, path)
    written = [("stdout", "two\nlines", "\n")] * 1000 + [("stdout", "after", "\n")]
    store.append_output("r1", written, 1)
    store.close()
    with sqlite3.connect(path) as db:
        packings = [row[0] for row in db.execute("SELECT packing FROM chunks")]
    assert packings[0] in (sqlite_store._JSON, sqlite_store._ZLIB)
    store = open_at(opened, path)
    assert store.read_output("r1", 0, max_lines=2000, max_chars=1 << 20).lines == written


def test_rows_of_the_json_array_packing_from_older_databases_still_read(
        opened: list[SQLiteStore], path: Path) -> None:
    open_at(opened, path).close()
    old = orjson.dumps(numbered(1, 1000))
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO chunks VALUES ('r1', 1000, 1, '[[0, 7]]', 1, ?)",
                   (zlib.compress(old),))
        db.execute("INSERT INTO outputs VALUES ('r1', 1000, 1, 10)")
    store = open_at(opened, path)
    store.append_output("r1", numbered(1001, 1500), 8)
    piece = store.read_output("r1", 900, max_lines=200)
    assert piece.lines == numbered(901, 1100) and piece.times == [(0, 7), (100, 8)]


def test_a_schema_version_2_database_is_upgraded_so_older_code_refuses_it(
        opened: list[SQLiteStore], path: Path) -> None:
    """Version 3 rows may use packings version 2 cannot read: its own check (a
    database newer than the code) then refuses the file with a sentence."""
    with sqlite3.connect(path) as db:
        db.executescript(sqlite_store.MIGRATIONS[0] + sqlite_store.MIGRATIONS[1]
                         + "PRAGMA user_version=2;")
    open_at(opened, path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_store.SCHEMA_VERSION >= 3


def test_past_the_byte_budget_the_oldest_chunks_go_and_are_counted_as_skipped(
        opened: list[SQLiteStore], path: Path) -> None:
    store = open_at(opened, path, retention_lines=1_000_000, retention_bytes=20_000)
    for first in range(1, 20_001, 1000):
        store.append_output("r1", numbered(first, first + 999), 1)
    piece = store.read_output("r1", 0, max_lines=1)
    assert piece.skipped > 0 and piece.first_seq == piece.skipped + 1
    assert piece.lines == numbered(piece.first_seq, piece.first_seq)
    assert piece.first_seq % 1000 == 1  # whole chunks
    assert store.read_output("r1", 19_990).lines == numbered(19_991, 20_000)


def test_past_the_disk_budget_the_oldest_finished_runs_output_goes_first(
        opened: list[SQLiteStore], path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = open_at(opened, path)
    store.create_run(a_run("old", state=RunState.SUCCEEDED))
    store.create_run(a_run("going", state=RunState.RUNNING))
    store.create_run(a_run("new", state=RunState.SUCCEEDED))
    store.append_output("old", numbered(1, 3000), 1)
    store.append_output("going", numbered(1, 3000), 1)
    with sqlite3.connect(path) as db:
        two_runs = db.execute("SELECT sum(bytes) FROM outputs").fetchone()[0]
    store.disk_budget_bytes = two_runs + two_runs // 4  # a third run goes past it
    with caplog.at_level(logging.WARNING, "flask_realtime.store.sqlite"):
        store.append_output("new", numbered(1, 3000), 1)
    gone = store.read_output("old", 0)
    assert (gone.lines, gone.skipped, gone.end_seq) == ([], 3000, 3000)
    assert store.get_run("old") is not None  # the record stays
    assert len(store.read_output("going", 0, max_lines=5000).lines) == 3000
    assert len(store.read_output("new", 0, max_lines=5000).lines) == 3000
    assert "DISK_BUDGET_BYTES" in caplog.text


def test_a_full_database_refuses_the_batch_whole_and_takes_it_again_later(
        opened: list[SQLiteStore], path: Path) -> None:
    store = open_at(opened, path)
    store.append_output("r1", numbered(1, 10), 1, writer="w", offset=0)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # as a full disk answers
    with pytest.raises(StoreUnavailableError, match=str(path)):
        store.append_output("r1", numbered(11, 200_000), 2, writer="w", offset=10)
    assert store.read_output("r1", 0).lines[:10] == numbered(1, 10)  # none of the batch
    assert store.output_end("r1") == 11  # and seq 11, the warning watchers see meanwhile
    store._db.execute("PRAGMA max_page_count = 1073741823")
    assert store.append_output("r1", numbered(11, 200_000), 3, writer="w", offset=10) == 200_001
    assert store.read_output("r1", 199_999).lines == numbered(199_999, 200_000)


def test_open_store_picks_sqlite_in_the_instance_folder_unless_told_memory(
        tmp_path: Path) -> None:
    assert isinstance(open_store({"STORE": "memory"}, tmp_path), MemoryStore)
    store = open_store({}, tmp_path)
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == tmp_path / "flask-realtime.sqlite3" and store.path.is_file()
        assert (tmp_path / "flask-realtime.lock").read_text().strip().isdigit()
    finally:
        store.close()
    with pytest.raises(StoreOpenError, match="STORE is 'postgres'"):
        open_store({"STORE": "postgres"}, tmp_path)


def test_a_backup_taken_while_the_store_is_open_holds_what_was_committed(
        opened: list[SQLiteStore], path: Path) -> None:
    """The README's backup command, run beside an open store (WAL: the newest writes are
    still in the -wal file, which a plain copy of the database would miss)."""
    import shutil
    import subprocess

    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command is not installed")
    store = open_at(opened, path)
    store.create_run(a_run("r1"))
    store.append_output("r1", numbered(1, 5000), 1)
    backup = path.with_name("backup.sqlite3")
    subprocess.run(["sqlite3", str(path), f".backup {backup}"], check=True, timeout=60)
    copy = open_at(opened, backup)
    assert copy.get_run("r1") == store.get_run("r1")
    assert copy.read_output("r1", 4990).lines == numbered(4991, 5000)


def test_a_database_from_before_input_is_upgraded_with_its_runs_kept(
        opened: list[SQLiteStore], path: Path) -> None:
    with sqlite3.connect(path) as db:  # as the version with share links left it
        for number, script in enumerate(sqlite_store.MIGRATIONS[:2]):
            db.executescript(script)
            db.execute(f"PRAGMA user_version = {number + 1}")
        db.execute("INSERT INTO runs (id, user, job, state, record) VALUES (?, ?, ?, ?, ?)",
                   ("old", "alice", "countdown", "succeeded", '{"id": "old", "job": '
                    '"countdown", "title": "c", "user": "alice", "state": "succeeded"}'))
    store = open_at(opened, path)
    assert store.get_run("old") is not None
    assert store.send_input("r1", "hi\n") == "sent"
    assert store.take_input("r1", 0) == "hi\n"


def test_input_of_an_interrupted_run_is_dropped_at_the_next_start(
        opened: list[SQLiteStore], path: Path) -> None:
    store = open_at(opened, path)
    store.create_run(a_run("r1").moved_to(RunState.RUNNING))
    store.send_input("r1", "typed, never read\n")
    store.close()
    opened.remove(store)
    again = open_at(opened, path)
    assert again.recover_interrupted() == ["r1"]
    assert again.take_input("r1", 0) is None
