"""While a run's watchers are sent a flood's batches, another run's new line waits for
at most one of them: the flood yields after its batch, and the next turn starts with
the run that has the least to send."""

from __future__ import annotations

from typing import Any

from flask_realtime.store.memory import MemoryStore
from flask_realtime.web.delivery import Delivery
from flask_realtime.web.rooms import live_room
from tests.web.test_delivery_bounds import Sockets


class Recording(Sockets):
    """Sockets that record the order of the batches, and call ``during`` after each."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[str, int]] = []  # (room, first seq)
        self.during: Any = None

    def emit(self, event: str, payload: dict[str, Any], *, to: str, **kwargs: Any) -> None:
        super().emit(event, payload, to=to, **kwargs)
        self.order.append((to, payload["first_seq"]))
        if self.during is not None:
            self.during(payload)


def test_a_quiet_run_s_line_waits_for_one_batch_of_a_flood_not_a_turn() -> None:
    store = MemoryStore()
    sockets = Recording()
    delivery = Delivery(sockets, store, max_batch_lines=10,  # type: ignore[arg-type]
                        batches_per_turn=4)
    for sid, run_id in (("a", "flood"), ("b", "quiet")):
        delivery._requests.put(("watch", sid, run_id, 0))
    delivery._turn()  # both caught up: in their rooms
    store.append_output("flood", [("stdout", str(i), "\n") for i in range(1, 81)], 0)

    def quiet_writes(payload: dict[str, Any]) -> None:
        if payload["run_id"] == "flood" and payload["first_seq"] == 1:
            store.append_output("quiet", [("stdout", "quiet line", "\n")], 0)

    sockets.during = quiet_writes
    while delivery._turn():
        pass
    flood, quiet = live_room("flood"), live_room("quiet")
    assert sockets.order[:3] == [(flood, 1), (quiet, 1), (flood, 11)]
    assert sockets.received["a"] == list(range(1, 81))  # the flood's lines, each once
    assert sockets.received["b"] == [1]


def test_a_flood_alone_is_sent_a_whole_turn_at_a_time() -> None:
    store = MemoryStore()
    sockets = Recording()
    delivery = Delivery(sockets, store, max_batch_lines=10,  # type: ignore[arg-type]
                        batches_per_turn=4)
    delivery._requests.put(("watch", "a", "flood", 0))
    delivery._turn()
    store.append_output("flood", [("stdout", str(i), "\n") for i in range(1, 81)], 0)
    assert delivery._turn()  # four batches, then more to come
    assert [seq for _room, seq in sockets.order] == [1, 11, 21, 31]
