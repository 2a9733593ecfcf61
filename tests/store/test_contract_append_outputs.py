"""``append_outputs`` (core/ports.py), three stores: several runs' batches in one call,
numbered as ``append_output``'s, so that a call made again stores no line twice. The
``store`` fixture is in conftest.py."""

from __future__ import annotations

from pathlib import Path

from flask_realtime.core.output import Line
from flask_realtime.core.ports import RunStore
from flask_realtime.core.runs import Run
from flask_realtime.store.sqlite import SQLiteStore


def a_run(run_id: str) -> Run:
    return Run(id=run_id, job="countdown", title="countdown", user="alice", params={})


def lines(run_id: str, first: int, last: int) -> list[Line]:
    return [("stdout", f"{run_id} {i}", "\n") for i in range(first, last + 1)]


def texts(store: RunStore, run_id: str) -> list[str]:
    return [line[1] for line in store.read_output(run_id, 0).lines]


def test_batches_of_several_runs_are_appended_in_order_each_after_its_own_end(
        store: RunStore) -> None:
    for run_id in ("a", "b", "c"):
        store.create_run(a_run(run_id))
    store.append_output("b", lines("b", 1, 2), 1)
    store.output_changed.clear()
    ends = store.append_outputs([("a", lines("a", 1, 3), "wa", 0),
                                 ("b", lines("b", 3, 3), "wb", 0),
                                 ("a", lines("a", 4, 5), "wa", 3),  # the same run again
                                 ("c", [], "wc", 0)], 7)
    assert ends == [3, 3, 5, 0]
    assert store.output_changed.is_set()
    assert texts(store, "a") == [f"a {i}" for i in range(1, 6)]
    assert texts(store, "b") == [f"b {i}" for i in range(1, 4)]
    assert store.output_end("c") == 0
    assert store.read_output("a", 0).times == [(0, 7)]


def test_batches_sent_again_are_stored_once(store: RunStore) -> None:
    """A call whose reply was lost, made again with the lines printed since: the store
    skips what each writer gave already, in one call or one batch at a time."""
    for run_id in ("a", "b"):
        store.create_run(a_run(run_id))
    first = [("a", lines("a", 1, 4), "wa", 0), ("b", lines("b", 1, 2), "wb", 0)]
    store.append_outputs(first, 1)
    assert store.append_outputs([("a", lines("a", 1, 6), "wa", 0),
                                 ("b", lines("b", 1, 2), "wb", 0)], 2) == [6, 2]
    assert store.append_output("b", lines("b", 1, 3), 3, writer="wb", offset=0) == 3
    assert texts(store, "a") == [f"a {i}" for i in range(1, 7)]
    assert texts(store, "b") == [f"b {i}" for i in range(1, 4)]


def test_sqlite_stores_every_batch_of_a_call_in_one_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "flask-realtime.sqlite3")
    try:
        for i in range(20):
            store.create_run(a_run(f"r{i}"))
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        store.append_outputs([(f"r{i}", lines(f"r{i}", 1, 1), f"w{i}", 0)
                              for i in range(20)], 1)
        store._db.set_trace_callback(None)
        assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == [
            "BEGIN IMMEDIATE", "COMMIT"]
        assert all(texts(store, f"r{i}") == [f"r{i} 1"] for i in range(20))
    finally:
        store.close()
