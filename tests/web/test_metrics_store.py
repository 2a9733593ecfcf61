"""The store calls web/metrics.py times: each method of ``STORE_METHODS`` observed on
the instance, including ``output_ends``, which the delivery and the announcements use
for many runs at once."""

from __future__ import annotations

from prometheus_client import REGISTRY

from flask_realtime.store.memory import MemoryStore
from flask_realtime.web.metrics import observe_store


def timed(method: str) -> float:
    return REGISTRY.get_sample_value(
        "flask_realtime_store_call_seconds_count", {"method": method}) or 0.0


def test_the_ends_of_many_runs_are_timed_like_one_run_s() -> None:
    store = observe_store(MemoryStore())
    before = timed("output_ends"), timed("output_end")
    store.append_output("r", [("stdout", "a line", "\n")], 0)

    assert store.output_ends(["r", "other"]) == [1, 0]
    assert store.output_end("r") == 1
    assert timed("output_ends") == before[0] + 1
    assert timed("output_end") >= before[1] + 1
