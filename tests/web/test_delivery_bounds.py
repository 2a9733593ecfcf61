"""A watcher catching up to the live room gets each line once: never past the room."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask_realtime.store.memory import MemoryStore
from flask_realtime.web.delivery import Delivery
from flask_realtime.web.rooms import live_room


class Sockets:
    """Stands in for Flask-SocketIO: which seqs each client was sent, through its room
    or to it alone."""

    def __init__(self) -> None:
        self.server = self
        self.manager = self
        self.rooms: dict[str, set[str]] = defaultdict(set)
        self.received: dict[str, list[int]] = defaultdict(list)

    def is_connected(self, sid: str, namespace: str) -> bool:
        return True

    def emit(self, event: str, payload: dict[str, Any], *, to: str, **kwargs: Any) -> None:
        seqs = range(payload["first_seq"], payload["first_seq"] + len(payload["lines"]))
        for sid in self.rooms.get(to, {to}):
            self.received[sid].extend(seqs)

    def enter_room(self, sid: str, room: str, namespace: str) -> None:
        self.rooms[room].add(sid)

    def leave_room(self, sid: str, room: str, namespace: str) -> None:
        self.rooms[room].discard(sid)


def test_a_watcher_catching_up_behind_a_busy_room_gets_each_line_once() -> None:
    store = MemoryStore()
    sockets = Sockets()
    delivery = Delivery(sockets, store, max_batch_lines=3)  # type: ignore[arg-type]
    delivery._requests.put(("watch", "live", "r", 0))
    delivery._turn()  # caught up (nothing printed yet): in the room
    store.append_output("r", [("stdout", str(i), "\n") for i in range(1, 21)], 0)
    delivery._requests.put(("watch", "late", "r", 1))  # the page holds line 1 already

    assert delivery._turn()  # the room is cut short after two batches: it is at 6 of 20
    while delivery._turn():
        pass
    assert "late" in sockets.rooms[live_room("r")]
    assert sockets.received["live"] == list(range(1, 21))
    assert sockets.received["late"] == list(range(2, 21))
