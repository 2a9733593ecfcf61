"""The ``state`` event's payload (web/states.py): the run with its number of stored lines;
a queued run (announced once, as it is made, before any line) says 0 without a read."""

from __future__ import annotations

from flask_realtime.core.runs import Run, RunState
from flask_realtime.store.memory import MemoryStore
from flask_realtime.web.states import state_event


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.ends = 0

    def output_end(self, run_id: str) -> int:
        self.ends += 1
        return super().output_end(run_id)


def test_a_queued_run_is_announced_with_no_lines_without_reading_the_store() -> None:
    store = CountingStore()
    run = store.create_run(Run(id="r1", job="j", title="J", user="u"))
    event = state_event(store, run)
    assert event["run_id"] == "r1" and event["state"] == "queued" and event["lines"] == 0
    assert "result" not in event
    assert store.ends == 0
    assert event == {"run_id": "r1", **run.to_json(lines=0)}


def test_a_run_past_queued_is_announced_with_its_stored_lines() -> None:
    store = CountingStore()
    run = store.create_run(Run(id="r1", job="j", title="J", user="u"))
    running = run.moved_to(RunState.RUNNING)
    assert store.replace_run(running, RunState.QUEUED)
    store.append_output("r1", [("stdout", "a", "\n"), ("stdout", "b", "\n")], 0)
    event = state_event(store, running)
    assert event["lines"] == 2 and event["state"] == "running"
    assert store.ends == 1
