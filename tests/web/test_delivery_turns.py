"""A delivery turn looks only at the runs that have something to send: with many runs
watched and one printing, the others' sockets are not asked how far behind they are."""

from __future__ import annotations

from typing import Any

from flask_realtime.store.memory import MemoryStore
from flask_realtime.web.delivery import Delivery
from tests.web.test_delivery_bounds import Sockets


def test_a_turn_looks_only_at_the_run_that_printed() -> None:
    store = MemoryStore()
    sockets = Sockets()
    delivery = Delivery(sockets, store)  # type: ignore[arg-type]
    for run in range(50):
        for watcher in range(3):
            delivery._requests.put(("watch", f"s{run}-{watcher}", f"r{run}", 0))
    delivery._turn()  # every watcher caught up, in its run's room
    asked: list[str] = []

    def backlog(sid: str) -> int:
        asked.append(sid)
        return 0

    delivery._backlog = backlog  # type: ignore[method-assign]
    store.append_output("r7", [("stdout", "one line", "\n")], 0)
    delivery._turn()

    assert sorted(asked) == ["s7-0", "s7-1", "s7-2"]
    assert sockets.received["s7-1"] == [1]
    assert not any(sockets.received[f"s{run}-0"] for run in range(50) if run != 7)


def test_a_watcher_catching_up_is_served_though_its_run_printed_nothing_new() -> None:
    store = MemoryStore()
    store.append_output("r", [("stdout", str(i), "\n") for i in range(1, 6)], 0)
    sockets = Sockets()
    delivery = Delivery(sockets, store)  # type: ignore[arg-type]
    delivery._requests.put(("watch", "late", "r", 2))  # its page holds lines 1-2
    delivery._turn()
    assert sockets.received["late"] == [3, 4, 5]


def test_a_turn_reads_the_next_batch_of_every_run_that_printed_in_one_call() -> None:
    """On Redis a read is a round trip: a turn with 40 runs to send makes one, not 40."""
    store = MemoryStore()
    sockets = Sockets()
    delivery = Delivery(sockets, store)  # type: ignore[arg-type]
    for run in range(50):
        delivery._requests.put(("watch", f"s{run}", f"r{run}", 0))
    delivery._turn()  # every watcher caught up, in its run's room
    calls: list[str] = []
    read_output = store.read_output

    def one(*args: Any, **kwargs: Any) -> Any:
        calls.append("read_output")
        return read_output(*args, **kwargs)

    def many(reads: Any, **kwargs: Any) -> Any:
        calls.append(f"read_outputs of {len(reads)}")
        return [read_output(run_id, after, **kwargs) for run_id, after in reads]

    store.read_output, store.read_outputs = one, many  # type: ignore[method-assign]
    for run in range(40):
        store.append_output(f"r{run}", [("stdout", f"line of r{run}", "\n")], 0)
    delivery._turn()

    assert calls == ["read_outputs of 40"]
    assert all(sockets.received[f"s{run}"] == [1] for run in range(40))
    assert not any(sockets.received[f"s{run}"] for run in range(40, 50))
