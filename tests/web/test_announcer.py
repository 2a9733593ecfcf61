"""Run state changes on their way to the sockets (web/announcer.py): the thread that moved
a run only queues it; a change after a quiet spell leaves at once; changes that come
while a send is under way leave together, one ``states`` packet per user, in order,
none dropped; through Redis, a batch is one pipelined publish that every process reads
as python-socketio's own (web/socketio_internals.py ``emit_many``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import socketio

import redis
from flask_realtime.core.runs import Run, RunState
from flask_realtime.store.memory import MemoryStore
from flask_realtime.web.announcer import Emit, StateAnnouncer, packets
from flask_realtime.web.rooms import ADMIN_ROOM, user_room
from flask_realtime.web.socketio_imports import restore_redis
from flask_realtime.web.socketio_internals import emit_many, redis_manager
from flask_realtime.web.states import CHANNEL, state_event, state_events
from tests.conftest import wait_for

WAIT = 10


class Recorder:
    """A sender that records what it is given, in which thread, and can be held."""

    def __init__(self) -> None:
        self.sent: list[list[Emit]] = []
        self.threads: list[threading.Thread] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_next = False

    def __call__(self, batch: Sequence[Emit]) -> None:
        self.threads.append(threading.current_thread())
        self.entered.set()
        assert self.release.wait(WAIT), "the test never released the sender"
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the queue is away")
        self.sent.append(list(batch))

    def changes(self) -> list[tuple[str, str, str]]:
        """Every change sent, flattened: (room, run id, state)."""
        out = []
        for batch in self.sent:
            for event, data, room in batch:
                records = data if event.endswith("states") else [data]
                out += [(room, record["id"], record["state"]) for record in records]
        return out


def new_run(store: MemoryStore, run_id: str, user: str = "ada") -> Run:
    return store.create_run(Run(id=run_id, job="j", title="J", user=user))


def moved(store: MemoryStore, run: Run, state: RunState) -> Run:
    after = run.moved_to(state)
    assert store.replace_run(after, run.state)
    return after


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def announcer(store: MemoryStore, recorder: Recorder) -> Iterator[StateAnnouncer]:
    announcer = StateAnnouncer(store, recorder, window=0.05)
    yield announcer
    recorder.release.set()
    announcer.close()


def test_a_change_after_a_quiet_spell_leaves_at_once_from_the_announcers_thread(
        store: MemoryStore, recorder: Recorder, announcer: StateAnnouncer) -> None:
    run = new_run(store, "r1")
    announcer(run)
    wait_for(lambda: recorder.sent, timeout=WAIT)
    assert recorder.sent == [[("state", state_event(store, run), user_room("ada"))]]
    assert recorder.threads[0] is not threading.current_thread()


def test_changes_during_a_send_leave_together_one_packet_a_user_in_order(
        store: MemoryStore, recorder: Recorder, announcer: StateAnnouncer) -> None:
    recorder.release.clear()
    first = new_run(store, "r0")
    announcer(first)  # taken at once; the sender is held
    assert recorder.entered.wait(WAIT)
    runs = [new_run(store, f"r{i}", user="ada" if i % 2 else "bob") for i in range(1, 7)]
    for run in runs:
        announcer(run)  # returns although the sender is held: nothing waits for it
    running = moved(store, runs[0], RunState.RUNNING)
    announcer(running)
    recorder.release.set()
    wait_for(lambda: len(recorder.sent) == 2, timeout=WAIT)
    second = recorder.sent[1]
    assert [(event, room) for event, _, room in second] == [
        ("states", user_room("ada")), ("states", user_room("bob"))]
    ada = second[0][1]
    assert [(r["id"], r["state"]) for r in ada] == [
        ("r1", "queued"), ("r3", "queued"), ("r5", "queued"), ("r1", "running")]
    assert [r["id"] for r in second[1][1]] == ["r2", "r4", "r6"]


def test_no_change_is_dropped_or_reordered_under_a_burst(
        store: MemoryStore, recorder: Recorder, announcer: StateAnnouncer) -> None:
    expected = []
    for i in range(200):
        run = new_run(store, f"r{i}", user=f"u{i % 5}")
        announcer(run)
        running = moved(store, run, RunState.RUNNING)
        announcer(running)
        expected += [(user_room(run.user), run.id, "queued"),
                     (user_room(run.user), run.id, "running")]
    wait_for(lambda: len(recorder.changes()) == len(expected), timeout=WAIT)
    got = recorder.changes()
    for room in {room for room, _, _ in expected}:
        assert [c for c in got if c[0] == room] == [c for c in expected if c[0] == room]
    assert len(recorder.sent) < 200  # batched, not one send a change


def test_a_failed_send_is_logged_and_the_next_change_still_goes(
        store: MemoryStore, recorder: Recorder, announcer: StateAnnouncer,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    recorder.fail_next = True
    announcer(new_run(store, "r1"))
    wait_for(lambda: any("could not announce" in r.getMessage() for r in caplog.records),
             timeout=WAIT)
    announcer(new_run(store, "r2"))
    wait_for(lambda: recorder.changes() == [(user_room("ada"), "r2", "queued")], timeout=WAIT)


def test_close_sends_what_is_queued_then_later_changes_go_at_once_in_the_callers_thread(
        store: MemoryStore, recorder: Recorder, announcer: StateAnnouncer) -> None:
    recorder.release.clear()
    announcer(new_run(store, "r0"))
    assert recorder.entered.wait(WAIT)
    announcer(new_run(store, "r1"))  # queued behind the held send
    closer = threading.Thread(target=announcer.close)
    closer.start()
    recorder.release.set()
    closer.join(WAIT)
    assert not closer.is_alive()
    assert [c[1] for c in recorder.changes()] == ["r0", "r1"]
    announcer(new_run(store, "r2"))
    assert recorder.changes()[-1][1] == "r2"
    assert recorder.threads[-1] is threading.current_thread()


def test_an_announcer_closed_before_any_change_sends_at_once(
        store: MemoryStore, recorder: Recorder) -> None:
    announcer = StateAnnouncer(store, recorder)
    announcer.close()
    announcer(new_run(store, "r1"))
    assert recorder.changes() == [(user_room("ada"), "r1", "queued")]


def test_the_gathering_grows_with_the_packets_the_last_send_made(store: MemoryStore) -> None:
    """A send that reached many sockets is followed by a longer gathering: 0.5 ms a
    packet, at least the window, at most a second."""
    reached = {"n": 0}
    announcer = StateAnnouncer(store, lambda batch: reached["n"], window=0.05)
    run = new_run(store, "r1")
    for n, wait in ((0, 0.05), (20, 0.05), (300, 0.15), (1000, 0.5), (10_000, 1.0)):
        reached["n"] = n
        assert announcer._send([run]) == pytest.approx(wait)
    announcer.close()


def test_packets_go_to_each_users_room_and_with_admins_to_the_admins_room_too() -> None:
    events = [{"id": "a", "state": "queued"}, {"id": "b", "state": "queued"},
              {"id": "a", "state": "running"}]
    assert packets(events, ["ada", "bob", "ada"], admins=False) == [
        ("states", [events[0], events[2]], user_room("ada")),
        ("state", events[1], user_room("bob"))]
    assert packets(events[:1], ["ada"], admins=True) == [
        ("state", events[0], user_room("ada")), ("admin_state", events[0], ADMIN_ROOM)]
    assert packets(events, ["ada", "bob", "ada"], admins=True)[-1] == (
        "admin_states", events, ADMIN_ROOM)


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[str]] = []

    def output_ends(self, run_ids: Sequence[str]) -> list[int]:
        self.asked.append(list(run_ids))
        return super().output_ends(run_ids)


def test_state_events_ask_the_store_once_for_the_lines_of_the_runs_past_queued() -> None:
    store = CountingStore()
    queued = new_run(store, "q")
    running = moved(store, new_run(store, "r"), RunState.RUNNING)
    store.append_output("r", [("stdout", "a", "\n")], 0)
    events = state_events(store, [queued, running])
    assert store.asked == [["r"]]
    assert [(e["id"], e["lines"]) for e in events] == [("q", 0), ("r", 1)]
    assert events == [state_event(store, queued), state_event(store, running)]


# --- through Redis -----------------------------------------------------------------------

def published(listener: Any, count: int) -> list[dict[str, Any]]:
    out = []
    while len(out) < count:
        message = listener.get_message(timeout=WAIT)
        assert message is not None, f"only {len(out)} of {count} messages published"
        out.append(json.loads(message["data"]))
    return out


def test_emit_many_publishes_what_python_socketios_own_emit_publishes(redis_url: str) -> None:
    restore_redis()
    # write-only: no listening thread left behind (it would outlive the redis-server)
    manager = redis_manager(redis_url, channel=CHANNEL, write_only=True)
    server = socketio.Server(client_manager=manager)
    listener = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)
    listener.get_message(timeout=WAIT)
    try:
        batch: list[Emit] = [("state", {"id": "r1", "state": "queued"}, "user:ada"),
                             ("states", [{"id": "r2"}, {"id": "r3"}], "user:bob")]
        batch += [("state", {"id": f"r{i}"}, f"user:{i % 3}") for i in range(4, 50)]
        for event, data, room in batch:
            server.emit(event, data, to=room, namespace="/")
        own = published(listener, len(batch))
        emit_many(server, batch)
        ours = published(listener, len(batch))
        assert ours == own  # the same messages (host id included), in the same order
        assert [(m["event"], m["data"][0], m["room"]) for m in ours] == batch
    finally:
        listener.close()


def test_emit_many_sends_to_this_processs_sockets_in_the_rooms_and_counts_them() -> None:
    server = socketio.Server()
    sent: list[tuple[str, str]] = []
    server._send_eio_packet = lambda eio_sid, pkt: sent.append(  # type: ignore[method-assign]
        (eio_sid, pkt.data))
    for eio_sid, room in (("e1", "user:ada"), ("e2", "user:ada"), ("e3", "user:bob")):
        sid = server.manager.connect(eio_sid, "/")
        server.manager.enter_room(sid, "/", room, eio_sid=eio_sid)
    batch: list[Emit] = [("states", [{"id": "r1"}, {"id": "r2"}], "user:ada"),
                         ("state", {"id": "r3"}, "user:bob"),
                         ("state", {"id": "r4"}, "user:nobody")]
    assert emit_many(server, batch) == 3
    assert sorted(eio for eio, _ in sent) == ["e1", "e2", "e3"]
    assert all(data.startswith('2["state') for _, data in sent)
