"""REDIS_OUTPUT_BUDGET_BYTES on a real Redis: past it, the oldest finished runs' output
goes first (records stay, readers are told the lines were skipped), with a warning;
stored chunks are compressed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from flask_realtime.core.output import Line
from flask_realtime.core.runs import Run, RunState
from flask_realtime.store.redis import RedisStore


@pytest.fixture
def opened(redis_url: str) -> Iterator[list[RedisStore]]:
    stores: list[RedisStore] = []
    yield stores
    for store in stores:
        store.close()


def open_store(opened: list[RedisStore], url: str, **options: object) -> RedisStore:
    store = RedisStore(url, listen=False, **options)  # type: ignore[arg-type]
    opened.append(store)
    return store


def numbered(count: int) -> list[Line]:
    return [("stdout", f"{i:08d} " + "x" * 51, "\n") for i in range(1, count + 1)]


def a_run(store: RedisStore, run_id: str, state: RunState) -> None:
    store.create_run(Run(id=run_id, job="flood", title="Flood", user="alice", params={},
                         state=state))


def test_past_the_budget_the_oldest_finished_runs_output_goes_first(
        opened: list[RedisStore], redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    probe = open_store(opened, redis_url)
    a_run(probe, "probe", RunState.SUCCEEDED)
    probe.append_output("probe", numbered(3000), 1)
    per_run = int(probe.redis.hget("fr:ob", "probe"))
    probe.forget_old_runs("alice", 0)
    assert int(probe.redis.get("fr:obt") or 0) == 0  # forgetting frees the budget too

    store = open_store(opened, redis_url, output_budget_bytes=int(per_run * 2.5))
    a_run(store, "old", RunState.SUCCEEDED)
    a_run(store, "going", RunState.RUNNING)
    store.append_output("old", numbered(3000), 1)
    store.append_output("going", numbered(3000), 1)
    a_run(store, "new", RunState.SUCCEEDED)
    with caplog.at_level(logging.WARNING):
        store.append_output("new", numbered(3000), 1)
    gone = store.read_output("old", 0)
    assert (gone.lines, gone.skipped, gone.end_seq) == ([], 3000, 3000)
    assert store.get_run("old") is not None  # the record stays
    assert len(store.read_output("going", 0, max_lines=5000, max_chars=10**7).lines) == 3000
    assert len(store.read_output("new", 0, max_lines=5000, max_chars=10**7).lines) == 3000
    assert "REDIS_OUTPUT_BUDGET_BYTES" in caplog.text
    assert int(store.redis.get("fr:obt")) <= int(per_run * 2.5)


def test_stored_chunks_are_compressed_and_read_back_whole(
        opened: list[RedisStore], redis_url: str) -> None:
    plain = open_store(opened, redis_url, compress=False)
    packed = open_store(opened, redis_url)
    for store, run_id in ((plain, "plain"), (packed, "packed")):
        a_run(store, run_id, RunState.RUNNING)
        store.append_output(run_id, numbered(10_000), 1)
    sizes = {run_id: int(packed.redis.hget("fr:ob", run_id)) for run_id in ("plain", "packed")}
    assert sizes["packed"] * 5 < sizes["plain"]
    assert packed.read_output("packed", 0, max_lines=10_000, max_chars=10**7).lines == \
        plain.read_output("plain", 0, max_lines=10_000, max_chars=10**7).lines == numbered(10_000)


def test_the_bytes_counted_are_the_bytes_the_retention_cap_leaves(
        opened: list[RedisStore], redis_url: str) -> None:
    store = open_store(opened, redis_url, retention_lines=2500)
    a_run(store, "r", RunState.RUNNING)
    for _ in range(10):
        store.append_output("r", numbered(1000), 1)
    held = sum(len(fields[b"p"]) for _, fields in store.redis.xrange("fr:out:r"))
    assert int(store.redis.hget("fr:ob", "r")) == int(store.redis.get("fr:obt")) == held
