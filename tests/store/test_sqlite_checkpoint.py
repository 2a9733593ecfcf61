"""The SQLite store's checkpoints: off the commit path, in a thread of their own.

A commit never folds the WAL into the database itself (SQLite's automatic checkpoint,
which ran inside whichever commit crossed 1,000 WAL pages, is off); the store's
Checkpointer does it on its own connection when :class:`CheckpointPolicy` says: every
half second while writes come in, every two seconds while a run floods; and every two
seconds it finishes one with the writers held, so that the WAL starts over.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest

from flask_realtime.core.output import Line
from flask_realtime.core.runs import Run
from flask_realtime.store.sqlite import CheckpointPolicy, SQLiteStore
from tests.processes import wait_until

NEVER = 3600.0


def open_with(opened: list[SQLiteStore], path: Path, policy: CheckpointPolicy) -> SQLiteStore:
    store = SQLiteStore(path, checkpoint_policy=policy)
    opened.append(store)
    return store


def one_line(i: int) -> list[Line]:
    return [("stdout", f"line {i} " + "x" * 50, "\n")]


def print_one_line_at_a_time(store: SQLiteStore, lines: int) -> None:
    """What a run printing slowly does: a transaction per line."""
    store.create_run(Run(id="r1", job="ticker", title="Ticker", user="alice", params={}))
    for i in range(lines):
        store.append_output("r1", one_line(i), 0)


def wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def test_commits_leave_the_wal_alone_however_large_it_grows(
        opened: list[SQLiteStore], path: Path) -> None:
    store = open_with(opened, path, CheckpointPolicy(every=NEVER, flood_every=NEVER))
    size = path.stat().st_size
    print_one_line_at_a_time(store, 2500)  # several WAL pages each: past 1,000 pages
    assert wal(path).stat().st_size > 1000 * 4096
    assert path.stat().st_size == size  # nothing was folded in: no commit checkpointed
    assert store.checkpointer.checkpoints == 0


def test_the_checkpointer_folds_the_wal_in_soon_after_writes(
        opened: list[SQLiteStore], path: Path) -> None:
    store = open_with(opened, path, CheckpointPolicy(every=0.05, flood_every=0.05))
    size = path.stat().st_size
    print_one_line_at_a_time(store, 300)
    wait_until(lambda: store.checkpointer.checkpoints >= 1, "a checkpoint")
    wait_until(lambda: path.stat().st_size > size, "the database file holding the lines")
    assert store.read_output("r1", 0, max_lines=1000).lines[-1][1].startswith("line 299 ")


def restarts(path: Path) -> int:
    """How many times the WAL has started over: its header's checkpoint sequence
    number (bytes 12-15, big-endian; https://sqlite.org/fileformat.html#wal_file_format)."""
    with wal(path).open("rb") as f:
        return int.from_bytes(f.read(16)[12:16], "big")


def test_the_wal_starts_over_while_writes_never_pause(
        opened: list[SQLiteStore], path: Path) -> None:
    """A PASSIVE checkpoint alone never finds a moment with every frame copied while a
    run commits back to back, so the WAL would grow for as long as it prints; finished
    with the writers held, it starts over from its beginning."""
    store = open_with(opened, path, CheckpointPolicy(every=0.01, finish_every=0.05))
    store.create_run(Run(id="r1", job="ticker", title="Ticker", user="alice", params={}))
    first = restarts(path)
    commits, deadline = 0, time.monotonic() + 60
    while store.checkpointer.finishes < 3 and time.monotonic() < deadline:
        store.append_output("r1", one_line(commits), 0)
        commits += 1
    assert store.checkpointer.finishes >= 3
    store.append_output("r1", one_line(commits), 0)  # a write after the last finish
    # The write after a finish starts the WAL over unless the next checkpoint holds a
    # reader's slot just then (it skips it: there is the next finish). That checkpoint
    # comes 0.01 s later here (0.5 s when served), so not every finish need have done it.
    assert restarts(path) > first
    assert store.output_end("r1") == commits + 1


def test_a_wal_grown_past_its_limit_starts_over_whatever_the_clock_says(
        opened: list[SQLiteStore], path: Path) -> None:
    store = open_with(opened, path, CheckpointPolicy(
        every=0.01, flood_every=NEVER, finish_every=NEVER, wal_limit=256 * 1024))
    store.create_run(Run(id="r1", job="flood", title="Flood", user="alice", params={}))
    first = restarts(path)
    batch = [("stdout", f"line {i} " + "x" * 50, "\n") for i in range(200)]  # floods
    deadline = time.monotonic() + 60
    while store.checkpointer.finishes < 2 and time.monotonic() < deadline:
        store.append_output("r1", batch, 0)
    assert store.checkpointer.finishes >= 2
    store.append_output("r1", batch, 0)
    assert restarts(path) > first


def test_closing_folds_everything_in_and_removes_the_wal(
        opened: list[SQLiteStore], path: Path) -> None:
    store = SQLiteStore(path, checkpoint_policy=CheckpointPolicy(every=NEVER))
    print_one_line_at_a_time(store, 200)
    thread = store.checkpointer._thread
    store.close()  # the checkpointer's connection first: the store's is the last one
    assert not thread.is_alive()
    assert not wal(path).exists()
    reopened = open_with(opened, path, CheckpointPolicy())
    assert reopened.output_end("r1") == 200


def test_a_store_dropped_without_closing_does_not_leave_its_thread_behind(
        path: Path) -> None:
    store = SQLiteStore(path, lock=False, checkpoint_policy=CheckpointPolicy(every=0.02))
    thread = store.checkpointer._thread
    del store
    gc.collect()
    wait_until(lambda: not thread.is_alive(), "the checkpointer's thread to end")


class TestPolicy:
    """When a checkpoint is due (times in seconds, as ``time.monotonic()`` gives them)."""

    def policy(self) -> CheckpointPolicy:
        policy = CheckpointPolicy(every=0.5, flood_every=2.0, flood_window=0.25)
        policy.done(100.0, 7)  # the last checkpoint: at t=100, at 7 changes
        return policy

    def test_nothing_written_since_the_last_checkpoint_means_none_is_due(self) -> None:
        assert self.policy().wait(200.0, 7) is None

    def test_after_writes_one_is_due_half_a_second_after_the_last(self) -> None:
        policy = self.policy()
        assert policy.wait(100.1, 8) == pytest.approx(0.4)
        assert policy.wait(100.5, 8) == 0.0
        assert policy.wait(150.0, 8) == 0.0

    def test_while_a_run_floods_they_are_two_seconds_apart(self) -> None:
        policy = self.policy()
        policy.flooded(101.9)
        assert policy.wait(100.6, 5000) > 0  # not due at 100.5: looked at again later
        assert policy.wait(101.0, 5000) > 0
        assert policy.wait(102.0, 5000) == 0.0

    def test_a_wal_past_its_limit_is_checkpointed_and_finished_at_once(self) -> None:
        policy = CheckpointPolicy(every=0.5, flood_every=2.0, finish_every=2.0,
                                  wal_limit=1000)
        policy.done(100.0, 7)
        policy.finished(100.0)
        policy.flooded(100.1)
        # At the limit: the size the file is trimmed to when the WAL starts over.
        assert policy.wait(100.2, 5000, wal_bytes=1000) > 0
        assert not policy.finish_due(100.2, wal_bytes=1000)
        assert policy.wait(100.2, 5000, wal_bytes=1001) == 0.0
        assert policy.finish_due(100.2, wal_bytes=1001)

    def test_once_the_flood_is_over_the_usual_pace_returns(self) -> None:
        policy = self.policy()
        policy.flooded(100.2)
        assert policy.wait(100.6, 5000) == 0.0  # 0.4 s since the last big append

    def test_what_was_written_during_a_checkpoint_counts_for_the_next(self) -> None:
        policy = self.policy()
        policy.done(101.0, 9)  # it started at 9 changes; 3 more came while it ran
        assert policy.wait(101.6, 12) == 0.0
        assert policy.wait(101.6, 9) is None
