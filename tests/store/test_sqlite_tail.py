"""The SQLite store's open chunk: a run that prints a line at a time (issue 15's latency).

Appends write only their new lines (the open chunk is not rewritten each time), and the
newest lines a watcher asks for are read from memory, without waiting for a write that
holds the database.
"""

from __future__ import annotations

import sqlite3
import threading
from itertools import pairwise
from pathlib import Path

import orjson
import pytest

from flask_realtime.core.output import Line
from flask_realtime.core.ports import StoreUnavailableError
from flask_realtime.core.runs import Run, RunState
from flask_realtime.store import sqlite as sqlite_store
from flask_realtime.store.sqlite import CHUNK_LINES, SQLiteStore


def open_at(opened: list[SQLiteStore], path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    opened.append(store)
    return store


def numbered(first: int, last: int) -> list[Line]:
    return [("stdout", f"line {i}", "\n") for i in range(first, last + 1)]


def read_all(store: SQLiteStore, run_id: str) -> list[Line]:
    lines: list[Line] = []
    while piece := store.read_output(run_id, len(lines), max_lines=700).lines:
        lines += piece
    return lines


def test_a_line_at_a_time_encodes_each_line_a_bounded_number_of_times(
        opened: list[SQLiteStore], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_at(opened, path)
    encoded = [0]
    pack = sqlite_store._pack

    def counting(lines: list[Line]) -> tuple[int, bytes]:
        encoded[0] += len(lines)
        return pack(lines)

    monkeypatch.setattr(sqlite_store, "_pack", counting)
    for i in range(1, 2501):
        store.append_output("r1", numbered(i, i), i)
    # Once as its own small row, once more when its chunk fills (not once per append).
    assert encoded[0] <= 2 * 2500
    assert read_all(store, "r1") == numbered(1, 2500)


def test_reading_a_live_runs_newest_lines_does_not_wait_for_a_write_in_progress(
        opened: list[SQLiteStore], path: Path) -> None:
    store = open_at(opened, path)
    store.append_output("r1", numbered(1, 10), 1)
    store.read_output("r1", 0)
    held, release = threading.Event(), threading.Event()

    def writer_holding_the_database() -> None:  # as a commit waiting for the disk does
        with store._lock:
            held.set()
            release.wait(30)

    threading.Thread(target=writer_holding_the_database, daemon=True).start()
    assert held.wait(10)
    seen: list[object] = []
    reader = threading.Thread(target=lambda: seen.extend(
        [store.output_end("r1"), store.read_output("r1", 5).lines]), daemon=True)
    reader.start()
    reader.join(10)
    finished = not reader.is_alive()
    release.set()
    assert finished
    assert seen == [10, numbered(6, 10)]


def test_a_line_at_a_time_run_goes_on_after_reopening_and_fills_whole_chunks(
        opened: list[SQLiteStore], path: Path) -> None:
    store = open_at(opened, path)
    for i in range(1, 1501):
        store.append_output("r1", numbered(i, i), i // 100)
    store.close()
    store = open_at(opened, path)
    assert store.read_output("r1", 1495).lines == numbered(1496, 1500)
    for i in range(1501, 2101):
        store.append_output("r1", numbered(i, i), i // 100)
    assert read_all(store, "r1") == numbered(1, 2100)
    piece = store.read_output("r1", 1950, max_lines=100)
    assert piece.times == [(0, 19), (49, 20)]  # line 2000 was appended at 20
    with sqlite3.connect(path) as db:
        full = db.execute("SELECT first_seq, last_seq FROM chunks WHERE last_seq <= 2000 "
                          "ORDER BY last_seq").fetchall()
    assert full == [(1, 1000), (1001, 2000)]


def test_a_database_whose_newest_chunk_grew_in_place_opens_and_goes_on(
        opened: list[SQLiteStore], path: Path) -> None:
    """Earlier today the open chunk was one row rewritten by every append: such a
    database opens, and its chunk fills up with the new lines."""
    open_at(opened, path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO chunks VALUES ('r1', 500, 1, '[[0, 7], [250, 8]]', 0, ?)",
                   (orjson.dumps(numbered(1, 500)),))
        db.execute("INSERT INTO outputs VALUES ('r1', 500, 1, ?)",
                   (len(orjson.dumps(numbered(1, 500))),))
    store = open_at(opened, path)
    for i in range(501, 1201):
        store.append_output("r1", numbered(i, i), 9)
    assert read_all(store, "r1") == numbered(1, 1200)
    assert store.read_output("r1", 0, max_lines=CHUNK_LINES).times == [(0, 7), (250, 8),
                                                                       (500, 9)]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT first_seq, last_seq FROM chunks ORDER BY last_seq"
                          ).fetchall()[0] == (1, 1000)


def test_a_finished_runs_open_chunk_leaves_memory_and_reads_the_same_from_the_database(
        opened: list[SQLiteStore], path: Path) -> None:
    """Issue 21: finished runs must not each keep their last lines in memory."""
    store = open_at(opened, path)
    runs = [Run(id=f"r{n}", job="flood", title="Flood", user="alice", state=RunState.RUNNING)
            for n in range(3)]
    for run in runs:
        store.create_run(run)
        store.append_output(run.id, numbered(1, 1500), 1)
        assert store._tail_chars > 0
        assert store.replace_run(run.moved_to(RunState.SUCCEEDED), RunState.RUNNING)
        assert store._tail_chars == 0, f"{run.id} kept its open chunk"
        assert store.output_end(run.id) == 1500
        assert store._tail_chars == 0  # the run list asks every run's end: nothing kept
    for run in runs:
        assert read_all(store, run.id) == numbered(1, 1500)


def test_reading_finished_runs_keeps_only_a_few_of_their_open_chunks(
        opened: list[SQLiteStore], path: Path) -> None:
    """A watcher reading a run's last lines after its end must not bring every finished
    run's open chunk back into memory; an append after the end is read, not an old copy."""
    store = open_at(opened, path)
    for n in range(10):
        run = Run(id=f"r{n}", job="flood", title="Flood", user="alice", state=RunState.RUNNING)
        store.create_run(run)
        store.append_output(run.id, numbered(1, 1500), 1)
        assert store.replace_run(run.moved_to(RunState.SUCCEEDED), RunState.RUNNING)
        assert read_all(store, run.id) == numbered(1, 1500)
    assert store._tail_chars == 0
    assert len(store._finished_tails) <= sqlite_store.FINISHED_TAILS
    store.append_output("r9", numbered(1501, 1502), 2)  # e.g. the interrupted-run line
    assert read_all(store, "r9") == numbered(1, 1502)


def test_whole_chunks_are_kept_decoded_as_written_only_for_runs_being_read(
        opened: list[SQLiteStore], path: Path) -> None:
    """A flood nobody watches leaves no decoded lines in memory (issue 15: RSS after a
    flood); one with a watcher keeps the newest chunks for it."""
    store = open_at(opened, path)
    store.append_output("unread", numbered(1, 5000), 1)
    assert store._cached_chars == 0
    store.read_output("read", 0)  # a watcher asks before anything is printed
    store.append_output("read", numbered(1, 5000), 1)
    assert store._cached_chars > 0
    assert read_all(store, "unread") == numbered(1, 5000)


def times_of(store: SQLiteStore, run_id: str, after: int) -> list[tuple[int, int]]:
    """Each line's epoch ms from seq ``after + 1`` on, spelled out from the change points."""
    piece = store.read_output(run_id, after, max_lines=CHUNK_LINES)
    points = [*piece.times, (len(piece.lines), 0)]
    return [(piece.first_seq + index, ms) for (start, ms), (stop, _) in pairwise(points)
            for index in range(start, stop)]


def test_an_append_to_the_open_chunk_costs_its_new_lines_not_the_lines_held(
        opened: list[SQLiteStore], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run printing a line at a time: each append neither copies the open chunk's
    lines nor works out their times again (that was O(lines held) per append)."""
    store = open_at(opened, path)
    covered = [0]  # lines whose times were looked up, all appends together
    times_for = sqlite_store.times_for

    def counting(times: list[tuple[int, int]], first_seq: int, count: int,
                 **options: int | None) -> list[tuple[int, int]]:
        covered[0] += count
        return times_for(times, first_seq, count, **options)

    monkeypatch.setattr(sqlite_store, "times_for", counting)
    store.append_output("r1", numbered(1, 1), 1)
    held = store._tails["r1"].lines
    for i in range(2, CHUNK_LINES):  # the open chunk never fills: 999 lines
        store.append_output("r1", numbered(i, i), i)  # a new time each: a change point
        assert store._tails["r1"].lines is held, f"append {i} copied the lines held"
    assert covered[0] <= 2 * CHUNK_LINES  # about one a line, not 500 on average
    monkeypatch.undo()
    assert read_all(store, "r1") == numbered(1, CHUNK_LINES - 1)
    assert times_of(store, "r1", 0) == [(i, i) for i in range(1, CHUNK_LINES)]
    for i in range(CHUNK_LINES, 2 * CHUNK_LINES + 11):  # across two fills
        store.append_output("r1", numbered(i, i), i)
    expected = [(i, i) for i in range(1, 2 * CHUNK_LINES + 11)]
    assert read_all(store, "r1") == numbered(1, 2 * CHUNK_LINES + 10)
    assert [*times_of(store, "r1", 0), *times_of(store, "r1", CHUNK_LINES),
            *times_of(store, "r1", 2 * CHUNK_LINES)] == expected


def test_a_rolled_back_append_leaves_the_open_chunk_as_committed(
        opened: list[SQLiteStore], path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new tail shares the old one's lists: a transaction that fails after the new
    lines were added to them must leave reads (from memory and from the database) as
    committed, and the next append must go on from the committed lines."""
    store = open_at(opened, path)
    for i in range(1, 11):
        store.append_output("r1", numbered(i, i), 100 + i)
    before = store.read_output("r1", 0)
    trim = store._trim

    def failing(*args: object) -> tuple[int, int]:
        raise sqlite3.OperationalError("disk I/O error (a test's)")

    monkeypatch.setattr(store, "_trim", failing)  # after the lines are added in memory
    lost = [("stdout", "never stored", "\n")] * 5
    with pytest.raises(StoreUnavailableError):
        store.append_output("r1", lost, 999)
    monkeypatch.setattr(store, "_trim", trim)
    assert store.read_output("r1", 0) == before
    assert store.output_end("r1") == 10
    store.append_output("r1", numbered(11, 12), 200)
    assert read_all(store, "r1") == numbered(1, 12)
    expected = [*((i, 100 + i) for i in range(1, 11)), (11, 200), (12, 200)]
    assert times_of(store, "r1", 0) == expected
    store.close()
    store = open_at(opened, path)
    assert read_all(store, "r1") == numbered(1, 12)
    assert times_of(store, "r1", 0) == expected


def test_a_byte_budget_that_takes_open_rows_keeps_the_newest_lines_and_times(
        opened: list[SQLiteStore], path: Path) -> None:
    """The open chunk's oldest rows go (its lists are made afresh, from the new first
    line) while later appends still share them."""
    store = SQLiteStore(path, retention_bytes=400)
    opened.append(store)
    lows = set()
    for i in range(1, 301):
        store.append_output("r1", numbered(i, i), i // 7)
        piece = store.read_output("r1", 0)
        low = piece.first_seq
        lows.add(low)
        assert piece.lines == numbered(low, i)
        assert times_of(store, "r1", 0) == [(seq, seq // 7) for seq in range(low, i + 1)]
    assert len(lows) > 100  # rows of the open chunk went, one after another
    store.close()
    store = open_at(opened, path)
    piece = store.read_output("r1", 0)
    assert piece.lines == numbered(piece.first_seq, 300)
    assert times_of(store, "r1", 0) == [(seq, seq // 7) for seq in range(piece.first_seq, 301)]
