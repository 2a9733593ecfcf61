"""Delivery shares one thread among all runs: a quiet run is not kept waiting by a flood."""

from __future__ import annotations

from typing import Any

from flask_realtime.store.memory import MemoryStore
from flask_realtime.web.delivery import Delivery


class Recorder:
    """Stands in for Flask-SocketIO: records what would be sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, int]] = []  # (run_id, first_seq, lines)
        self.server = self
        self.manager = self

    def is_connected(self, sid: str, namespace: str) -> bool:
        return True

    def emit(self, event: str, payload: dict[str, Any], **kwargs: Any) -> None:
        self.sent.append((payload["run_id"], payload["first_seq"], len(payload["lines"])))

    def enter_room(self, sid: str, room: str, namespace: str) -> None:
        pass

    def leave_room(self, sid: str, room: str, namespace: str) -> None:
        pass


def test_a_quiet_runs_new_line_goes_out_before_a_floods_backlog() -> None:
    store = MemoryStore()
    socketio = Recorder()
    delivery = Delivery(socketio, store, max_batch_lines=100,  # type: ignore[arg-type]
                        shared_batch_gap=0)  # the turns' order, unpaced (see below)
    for sid, run_id in (("a", "flood"), ("b", "quiet")):
        delivery._requests.put(("watch", sid, run_id, 0))
    delivery._turn()  # both watchers are caught up (nothing printed yet) and live
    store.append_output("flood", [("stdout", f"{i}", "\n") for i in range(10_000)], 0)
    store.append_output("quiet", [("stdout", "tick", "\n")], 0)

    assert delivery._turn()  # the flood has more than one turn's share
    assert socketio.sent[0] == ("quiet", 1, 1)
    assert socketio.sent[1:] == [("flood", 1, 100), ("flood", 101, 100)]  # two per turn
    while delivery._turn():
        pass
    assert sum(n for run, _, n in socketio.sent if run == "flood") == 10_000
