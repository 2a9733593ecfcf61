"""``read_outputs`` (core/ports.py), three stores: several runs' slices in one call, each
the slice ``read_output`` gives, and on Redis one round trip for runs with a few new
chunks each. The ``store`` fixture (100 lines kept a run) is in conftest.py."""

from __future__ import annotations

from typing import Any

import pytest

from flask_realtime.core.output import Line
from flask_realtime.core.ports import RunStore
from flask_realtime.core.runs import Run


def a_run(run_id: str) -> Run:
    return Run(id=run_id, job="countdown", title="countdown", user="alice", params={})


def lines(run_id: str, first: int, last: int) -> list[Line]:
    return [("stdout", f"{run_id} {i}", "\n") for i in range(first, last + 1)]


def fill(store: RunStore) -> None:
    """Runs of every shape: one-line chunks (``ones``, more chunks than one round trip
    asks for), chunks of many lines (``big``), past the retention (``long``: 250 lines, 100 kept),
    a line per chunk at different times (``timed``), one with nothing (``empty``)."""
    for run_id in ("ones", "big", "long", "timed", "empty"):
        store.create_run(a_run(run_id))
    for i in range(1, 21):
        store.append_output("ones", lines("ones", i, i), 5)
    store.append_output("big", lines("big", 1, 60), 5)
    store.append_output("big", lines("big", 61, 90), 6)
    for first in range(1, 251, 50):
        store.append_output("long", lines("long", first, first + 49), 5)
    for i in range(1, 6):
        store.append_output("timed", lines("timed", i, i), 1000 + i)


READS = [("ones", 0), ("ones", 7), ("ones", 20), ("big", 0), ("big", 59), ("long", 0),
         ("long", 200), ("timed", 2), ("empty", 0), ("no-such-run", 3), ("ones", 99)]


@pytest.mark.parametrize("limits", [{}, {"max_lines": 3}, {"max_chars": 40}],
                         ids=["defaults", "3 lines", "40 chars"])
def test_each_slice_is_the_one_read_output_gives(store: RunStore,
                                                 limits: dict[str, int]) -> None:
    fill(store)
    together = store.read_outputs(READS, **limits)
    one_by_one = [store.read_output(run_id, after, **limits) for run_id, after in READS]
    assert together == one_by_one
    by_read = dict(zip(READS, together, strict=True))
    if not limits:
        assert [t for _, t, _ in by_read["ones", 7].lines] == [
            f"ones {i}" for i in range(8, 21)]
        assert by_read["long", 0].first_seq == 151 and by_read["long", 0].skipped == 150
        assert by_read["timed", 2].times == [(0, 1003), (1, 1004), (2, 1005)]
        assert len(by_read["big", 0].lines) == 90 and len(by_read["big", 59].lines) == 31
    assert by_read["empty", 0].lines == [] and by_read["no-such-run", 3].lines == []


def test_no_reads_is_no_slices(store: RunStore) -> None:
    assert store.read_outputs([]) == []


def test_redis_reads_a_hundred_quiet_runs_in_one_round_trip(redis_url: str) -> None:
    from flask_realtime.store.redis import RedisStore

    store = RedisStore(redis_url)
    try:
        for run in range(100):
            store.create_run(a_run(f"r{run}"))
            store.append_output(f"r{run}", lines(f"r{run}", 1, 3), 1)
            store.append_output(f"r{run}", lines(f"r{run}", 4, 4), 2)
        trips: list[str] = []
        real_pipeline, real_xrange = store.redis.pipeline, store.redis.xrange

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            trips.append("pipeline")
            return real_pipeline(*args, **kwargs)

        def xrange(*args: Any, **kwargs: Any) -> Any:
            trips.append("xrange")
            return real_xrange(*args, **kwargs)

        store.redis.pipeline, store.redis.xrange = pipeline, xrange  # type: ignore[method-assign]
        slices = store.read_outputs([(f"r{run}", 0) for run in range(100)])
        assert trips == ["pipeline"]
        assert all(len(s.lines) == 4 and s.end_seq == 4 for s in slices)
        trips.clear()
        store.read_output("r1", 0, max_lines=1)  # one line of the first chunk: no more
        assert trips == ["pipeline"]
    finally:
        store.close()
