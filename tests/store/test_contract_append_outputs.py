"""``append_outputs`` (core/ports.py), three stores: several runs' batches in one call,
numbered as ``append_output``'s, so that a call made again stores no line twice. The
``store`` fixture is in conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_redis_appends_a_hundred_runs_in_one_round_trip_and_tells_them_in_another(
        redis_url: str) -> None:
    """A pump round with lines of 100 runs waits for one round trip for all their
    appends, not one each (docs/performance.md, "The pump's appends in one pipeline"),
    and one more that tells the other processes which runs were written."""
    from flask_realtime.store.redis import RedisStore

    store = RedisStore(redis_url)
    try:
        for run in range(100):
            store.create_run(a_run(f"r{run}"))
        trips: list[str] = []
        real_pipeline, real_append = store.redis.pipeline, store._append

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            trips.append("pipeline")
            return real_pipeline(*args, **kwargs)

        class Append:  # the script, each call of its own counted
            sha = real_append.sha

            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                trips.append("append")
                return real_append(*args, **kwargs)

        store.redis.pipeline, store._append = pipeline, Append()  # type: ignore[method-assign,assignment]
        ends = store.append_outputs([(f"r{run}", lines(f"r{run}", 1, 2), f"w{run}", 0)
                                     for run in range(100)], 1)
        assert trips == ["pipeline", "pipeline"]
        assert ends == [2] * 100
        assert all(texts(store, f"r{run}") == [f"r{run} 1", f"r{run} 2"] for run in range(100))
    finally:
        store.close()


def test_redis_appends_after_its_scripts_were_flushed_each_line_once(redis_url: str) -> None:
    """A Redis that lost the append script (restarted, SCRIPT FLUSH) answers the
    pipeline's calls with NOSCRIPT: each of those batches is stored on its own, which
    loads the script again, and no line is stored twice or lost."""
    from flask_realtime.store.redis import RedisStore

    store = RedisStore(redis_url)
    try:
        for run_id in ("a", "b"):
            store.create_run(a_run(run_id))
        store.append_outputs([("a", lines("a", 1, 2), "wa", 0)], 1)
        store.redis.script_flush()
        assert store.append_outputs([("a", lines("a", 1, 3), "wa", 0),
                                     ("b", lines("b", 1, 1), "wb", 0)], 2) == [3, 1]
        assert texts(store, "a") == ["a 1", "a 2", "a 3"]
        assert texts(store, "b") == ["b 1"]
    finally:
        store.close()


def test_redis_appends_a_batch_longer_than_one_call_takes(redis_url: str) -> None:
    """More lines than one script call carries (50 chunks: a run's lines kept through an
    outage): the batches are appended one after the other, each in order."""
    from flask_realtime.store.redis import CHUNK_LINES, RedisStore

    store = RedisStore(redis_url, retention_lines=1_000_000)
    try:
        for run_id in ("long", "short"):
            store.create_run(a_run(run_id))
        count = 50 * CHUNK_LINES + 7
        ends = store.append_outputs([("long", lines("long", 1, count), "wl", 0),
                                     ("short", lines("short", 1, 1), "ws", 0)], 1)
        assert ends == [count, 1]
        assert store.output_end("long") == count
        last = store.read_output("long", count - 2)
        assert [t for _, t, _ in last.lines] == [f"long {count - 1}", f"long {count}"]
    finally:
        store.close()


def test_redis_appends_two_batches_of_one_writer_in_order(redis_url: str) -> None:
    """A writer with two batches in one call, the first longer than one script call:
    its second batch's lines come after every line of its first."""
    from flask_realtime.store.redis import CHUNK_LINES, RedisStore

    store = RedisStore(redis_url, retention_lines=1_000_000)
    try:
        store.create_run(a_run("a"))
        count = 50 * CHUNK_LINES + 3
        ends = store.append_outputs([("a", lines("a", 1, count), "wa", 0),
                                     ("a", lines("a", count + 1, count + 2), "wa", count)], 1)
        assert ends == [count, count + 2]
        tail = store.read_output("a", count - 1)
        assert [t for _, t, _ in tail.lines] == [f"a {i}" for i in range(count, count + 3)]
    finally:
        store.close()
