"""Floods and slow consumers (docs/protocol.md, "Batching"; docs/reliability.md, requirement 2).

A flood keeps only RETENTION_LINES lines; a client that stops reading blocks neither
the job nor another watcher, costs at most MAX_CLIENT_QUEUE queued packets, and when it
reads again it catches up from the log, told by ``skipped`` what retention dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from flask_realtime.web.socketio_internals import backlog
from tests.conftest import LiveServer, Watcher, wait_for
from tests.hardening.conftest import ServerProblems
from tests.hardening.rawclient import RawClient

Connect = Callable[..., Watcher]
RETENTION = 20_000


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "RETENTION_LINES": RETENTION}


def held_lines(server: LiveServer, run_id: str) -> int:
    store = server.app.extensions["flask_realtime"].store
    piece = store.read_output(run_id, 0, max_lines=10**9, max_chars=10**12)
    return len(piece.lines)


def test_a_flood_keeps_only_the_retention_cap(
    connect: Connect, live_server: LiveServer, server_problems: ServerProblems,
) -> None:
    w = connect()
    run_id = w.call("start", {"job": "hx_flood", "params": {"lines": 300_000, "width": 20}})[
        "run_id"]
    most = [0]

    def sample() -> bool:
        most[0] = max(most[0], held_lines(live_server, run_id))
        return w.state_of(run_id) == "succeeded"

    wait_for(sample, timeout=60, interval=0.02)
    store = live_server.app.extensions["flask_realtime"].store
    assert store.output_end(run_id) == 300_000
    assert most[0] <= RETENTION and held_lines(live_server, run_id) == RETENTION
    piece = store.read_output(run_id, 0, max_lines=5)
    assert piece.first_seq == 300_000 - RETENTION + 1 and piece.skipped == 300_000 - RETENTION
    assert piece.lines[0][1].startswith(f"{piece.first_seq:08d}")
    assert server_problems.summary() == []


def test_a_client_that_stops_reading_blocks_nobody_and_catches_up(
    connect: Connect, live_server: LiveServer, server_problems: ServerProblems,
) -> None:
    total, rate = 100_000, 25_000  # 4 s of output; 100 characters a line: 10 MB
    fast = connect()
    run_id = fast.call("start", {"job": "hx_flood", "params": {
        "lines": total, "width": 100, "rate": rate}})["run_id"]
    slow = RawClient(live_server.url, receive_buffer=4096)
    assert slow.call("watch", {"run_id": run_id, "after": 0})["ok"]
    # From here on the slow client reads nothing: its socket buffers fill, then the
    # server's queue for it, and the delivery thread takes it out of the run's room.
    queue_sizes: list[int] = []
    server = live_server.app.extensions["socketio"].server
    slow_sid = _sid_of(live_server, exclude=fast)

    def finished() -> bool:
        queue_sizes.append(backlog(server, slow_sid, "/"))
        return fast.state_of(run_id) == "succeeded"

    wait_for(finished, timeout=total / rate + 10, interval=0.02)
    wait_for(lambda: len(fast.lines.get(run_id, [])) == total, timeout=20)
    assert fast.errors == []
    assert [t[:8] for t in fast.texts(run_id)[::9_999]] == [
        f"{i:08d}" for i in range(1, total + 1, 9_999)]
    limit = live_server.app.config["MAX_CLIENT_QUEUE"]
    assert max(queue_sizes) <= limit + 8, max(queue_sizes)  # 8: one delivery turn

    # Now it reads again: it gets what was queued, then the log from where it was,
    # with `skipped` for what retention dropped meanwhile; no gap is left unexplained.
    last, skipped = 0, 0
    while last < total:
        message = slow.recv(10)
        assert message is not None, f"closed at seq {last}"
        if not message.startswith('42["output"'):
            continue
        batch = json.loads(message[2:])[1]
        assert batch["first_seq"] == last + 1 + batch.get("skipped", 0), (batch["first_seq"], last)
        skipped += batch.get("skipped", 0)
        last = batch["first_seq"] + len(batch["lines"]) - 1
    assert last == total and 0 < skipped <= total - RETENTION
    slow.close()
    assert server_problems.summary() == []


def _sid_of(server: LiveServer, exclude: Watcher) -> str:
    """The Socket.IO sid of the one connected client that is not ``exclude``."""
    sockets = server.app.extensions["flask_realtime"].sockets
    own = exclude.client.get_sid("/")
    return next(sid for sid in list(sockets) if sid != own)


def test_a_stalled_client_does_not_slow_another_users_run(
    connect: Connect, live_server: LiveServer,
) -> None:
    """Two stalled readers on a flood; a third client's own run still arrives whole."""
    flooder = connect()
    flood_id = flooder.call("start", {"job": "hx_flood", "params": {
        "lines": 200_000, "width": 100}})["run_id"]
    stalled = [RawClient(live_server.url, receive_buffer=4096) for _ in range(2)]
    for client in stalled:
        client.call("watch", {"run_id": flood_id, "after": 0})
    other = connect()
    run_id = other.call("start", {"job": "numbers", "params": {"n": 3_000}})["run_id"]
    wait_for(lambda: other.state_of(run_id) == "succeeded", timeout=30)
    wait_for(lambda: len(other.lines.get(run_id, [])) == 3_000, timeout=30)
    assert other.texts(run_id) == [str(i) for i in range(1, 3_001)] and other.errors == []
    flooder.call("stop", {"run_id": flood_id})
    wait_for(lambda: flooder.state_of(flood_id) in ("stopped", "succeeded"), timeout=30)
    for client in stalled:
        client.close()
