"""What a delivery turn asks of Redis: with many runs watched, the turn reads every
run's end in one request (``output_ends``, one MGET), not one request a run, and the
new lines of every run that printed in one more (``read_outputs``, one pipeline of an
MGET and an XRANGE a run). Through nginx onto several web processes,
each process's delivery does this for its own watchers (docs/performance.md, "Sockets
per process")."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from flask_realtime.store.redis import RedisStore
from flask_realtime.web.delivery import Delivery
from tests.web.test_delivery_bounds import Sockets

RUNS = 50


@pytest.fixture
def store(redis_url: str) -> Any:
    made = RedisStore(redis_url, listen=False)
    yield made
    made.close()


def count_commands(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the round trips ``store`` makes from now on: each command sent on its own,
    by name, and each pipeline as ``"pipeline"`` with what it held by name prefixed
    ``"in pipeline "``."""
    sent: Counter[str] = Counter()
    execute = store.redis.execute_command
    pipeline = store.redis.pipeline

    def counting(*args: Any, **options: Any) -> Any:
        sent[str(args[0]).upper()] += 1
        return execute(*args, **options)

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        run = pipe.execute

        def counted_execute(*a: Any, **k: Any) -> Any:
            sent["pipeline"] += 1
            for command in pipe.command_stack:
                sent["in pipeline " + str(command[0][0]).upper()] += 1
            return run(*a, **k)

        pipe.execute = counted_execute  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(store.redis, "execute_command", counting)
    monkeypatch.setattr(store.redis, "pipeline", counting_pipeline)
    return sent


def test_a_turn_over_many_runs_asks_redis_for_their_ends_at_once(
        store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sockets = Sockets()
    delivery = Delivery(sockets, store)  # type: ignore[arg-type]
    run_ids = [f"r{i}" for i in range(RUNS)]
    for run_id in run_ids:
        delivery._requests.put(("watch", f"sid-{run_id}", run_id, 0))
    delivery._turn()  # every watcher caught up (nothing printed yet): in its room
    for run_id in run_ids:
        store.append_output(run_id, [("stdout", f"line of {run_id}", "\n")], 0)

    sent = count_commands(store, monkeypatch)
    while delivery._turn():
        pass

    assert all(sockets.received[f"sid-{run_id}"] == [1] for run_id in run_ids)
    assert sent["GET"] == 0  # no run's end asked for on its own
    assert sent["XRANGE"] == 0  # no run's lines read on their own: ...
    assert sent["pipeline"] == 1  # ... every run's read in one round trip
    assert sent["in pipeline XRANGE"] == RUNS
    assert sent["MGET"] <= 3  # the turn's few looks at all the runs' ends


def test_a_read_of_a_chunk_or_past_the_end_is_one_round_trip(
        store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.append_output("r", [("stdout", "only line", "\n")], 0)
    sent = count_commands(store, monkeypatch)

    assert store.read_output("r", 1).lines == []
    assert store.read_output("r", 0).lines == [("stdout", "only line", "\n")]
    assert sent == {"pipeline": 2, "in pipeline MGET": 2, "in pipeline XRANGE": 2}
