"""While a run's watchers are sent a flood's batches, another run's new line waits for
at most one of them: the flood yields after its batch, and the next turn starts with
the run that has the least to send. Beside another run, a flood is sent small batches
at a pace (``SHARED_BATCH_LINES``, ``SHARED_BATCH_GAP_SECONDS``)."""

from __future__ import annotations

from typing import Any

import pytest

from flask_realtime.store.memory import MemoryStore
from flask_realtime.web.delivery import Delivery
from flask_realtime.web.rooms import live_room
from tests.core.test_scheduler import Clock  # the delivery's clock, moved by the test
from tests.web.test_delivery_bounds import Sockets


class Recording(Sockets):
    """Sockets that record the order of the batches, and call ``during`` after each."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[str, int]] = []  # (room, first seq)
        self.payloads: list[dict[str, Any]] = []
        self.during: Any = None

    def emit(self, event: str, payload: dict[str, Any], *, to: str, **kwargs: Any) -> None:
        super().emit(event, payload, to=to, **kwargs)
        self.order.append((to, payload["first_seq"]))
        self.payloads.append(payload)
        if self.during is not None:
            self.during(payload)


def test_a_quiet_run_s_line_waits_for_one_batch_of_a_flood_not_a_turn() -> None:
    store = MemoryStore()
    sockets = Recording()
    delivery = Delivery(sockets, store, max_batch_lines=10,  # type: ignore[arg-type]
                        batches_per_turn=4, shared_batch_gap=0)  # unpaced: the turns' order
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


def paced_delivery(gap: float = 0.005) -> tuple[MemoryStore, Recording, Delivery, Clock]:
    """A delivery whose clock the test moves: batches of at most 100 lines; paced, a
    destination gets one batch per ``gap`` of 25 lines more than the run printed since."""
    clock = Clock(now=1000.0)  # a small number: the gaps below compare exactly
    store = MemoryStore()
    sockets = Recording()
    delivery = Delivery(sockets, store, max_batch_lines=100,  # type: ignore[arg-type]
                        shared_batch_lines=25, shared_batch_gap=gap, clock=clock)
    return store, sockets, delivery, clock


def sharing_a_flood(*, watch_flood_from: int = 0) -> tuple[
    MemoryStore, Recording, Delivery, Clock
]:
    """A flood of 1,000 lines to send and a quiet run's line, both watched, on a
    :func:`paced_delivery`."""
    store, sockets, delivery, clock = paced_delivery()
    delivery._requests.put(("watch", "b", "quiet", 0))
    if not watch_flood_from:
        delivery._requests.put(("watch", "a", "flood", 0))
    delivery._turn()
    store.append_output("flood", [("stdout", str(i), "\n") for i in range(1, 1001)], 0)
    if watch_flood_from:  # a watcher catching up from the log, not in the room
        delivery._requests.put(("watch", "a", "flood", watch_flood_from))
    store.append_output("quiet", [("stdout", "quiet line", "\n")], 0)
    return store, sockets, delivery, clock


@pytest.mark.parametrize("catching_up", [False, True], ids=["live room", "catching up"])
def test_a_flood_beside_another_run_is_sent_small_batches_at_a_pace(catching_up: bool) -> None:
    """Each of the flood's lines costs this thread (and the process's GIL) a read, an
    encoding and a send, and the other run's lines wait behind them: beside another run,
    a run with much to send gets one small batch per gap, however fast its watcher
    reads."""
    store, sockets, delivery, clock = sharing_a_flood(watch_flood_from=1 if catching_up else 0)
    flood = "a" if catching_up else live_room("flood")
    delivery._turn()
    assert sockets.order == [(live_room("quiet"), 1), (flood, 2 if catching_up else 1)]
    sizes = [len(p["lines"]) for p in sockets.payloads if p["run_id"] == "flood"]
    assert sizes == [25]
    assert delivery._idle_seconds() == pytest.approx(0.005)  # the thread wakes then

    delivery._turn()  # its next batch is not due yet: nothing for it
    store.append_output("quiet", [("stdout", "another", "\n")], 0)
    delivery._turn()  # the quiet run's new line is not held back by the pace
    assert sockets.order[2:] == [(live_room("quiet"), 2)]

    clock.now += 0.005
    delivery._turn()
    assert sockets.order[3:] == [(flood, 27 if catching_up else 26)]


def test_a_paced_flood_gets_every_line_once_and_the_pace_ends_with_the_sharing() -> None:
    _store, sockets, delivery, clock = sharing_a_flood()
    for _ in range(10):  # 50 ms: ten paced batches
        delivery._turn()
        clock.now += 0.005
    assert sum(len(p["lines"]) for p in sockets.payloads if p["run_id"] == "flood") == 250

    clock.now += 0.25  # nobody else had lines to send since: the flood is alone
    while delivery._turn() or delivery._paced_wake is not None:
        clock.now += 0.005
    assert sockets.received["a"] == list(range(1, 1001))
    assert sockets.received["b"] == [1]
    sizes = [len(p["lines"]) for p in sockets.payloads if p["run_id"] == "flood"]
    assert sizes[10:] == [100] * 7 + [50]  # whole batches again


def test_a_zero_gap_turns_the_pace_off() -> None:
    store, sockets, delivery, _clock = paced_delivery(gap=0)
    for sid, run_id in (("a", "flood"), ("b", "quiet")):
        delivery._requests.put(("watch", sid, run_id, 0))
    delivery._turn()
    store.append_output("flood", [("stdout", str(i), "\n") for i in range(1, 1001)], 0)
    store.append_output("quiet", [("stdout", "quiet line", "\n")], 0)
    delivery._turn()
    sizes = [len(p["lines"]) for p in sockets.payloads if p["run_id"] == "flood"]
    assert sizes == [100, 100]


def test_a_paced_destination_keeps_up_with_what_the_run_prints() -> None:
    """Never slower than the run prints, so that a watcher can never lose lines to the
    store's retention: each paced batch holds what was printed since the last one,
    and ``shared_batch_lines`` more of the backlog."""
    store, sockets, delivery, clock = sharing_a_flood()
    delivery._turn()  # the quiet line, and the flood's first 25
    store.append_output("flood", [("stdout", "more", "\n")] * 60, 0)
    clock.now += 0.005
    delivery._turn()
    sizes = [len(p["lines"]) for p in sockets.payloads if p["run_id"] == "flood"]
    assert sizes == [25, 25 + 60]


def test_each_destination_of_a_run_has_a_pace_of_its_own() -> None:
    """The live room and a watcher catching up are paced apart: neither takes the
    other's turn, however far behind both are."""
    store, sockets, delivery, _clock = paced_delivery()
    delivery._requests.put(("watch", "a", "flood", 0))
    delivery._turn()
    store.append_output("flood", [("stdout", str(i), "\n") for i in range(1, 1001)], 0)
    while delivery._turn():  # alone: whole batches, the room at 1,000
        pass
    delivery._requests.put(("watch", "b", "quiet", 0))
    delivery._requests.put(("watch", "c", "flood", 0))  # a new page, from the start
    store.append_output("flood", [("stdout", str(i), "\n") for i in range(1001, 2001)], 0)
    store.append_output("quiet", [("stdout", "quiet line", "\n")], 0)
    sockets.order.clear()
    delivery._turn()
    assert sockets.order == [("b", 1), (live_room("flood"), 1001), ("c", 1)]
    assert [len(p["lines"]) for p in sockets.payloads[-2:]] == [25, 25]
