"""Engine.IO pings from one thread (web/socketio_internals.py ``Pinger``): python-engineio
starts a thread for every ping of every socket; here every socket is pinged on the same
schedule by one thread, a client that answers stays connected, and one that stops
answering is still closed after the ping timeout."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import websockets
from flask import Flask

from flask_realtime.web import packets
from tests.conftest import LiveServer, wait_for
from tests.hardening.rawclient import RawClient
from tests.hardening.test_bursts import read_acks, stuck_handlers

PING_INTERVAL = 0.2
PING_TIMEOUT = 0.5


@pytest.fixture
def app(app: Flask) -> Flask:
    eio = app.extensions["socketio"].server.eio
    eio.ping_interval, eio.ping_timeout = PING_INTERVAL, PING_TIMEOUT
    return app


async def open_socket(url: str) -> websockets.ClientConnection:
    ws = await websockets.connect(
        url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
        origin=websockets.Origin(url))
    assert str(await asyncio.wait_for(ws.recv(), 10)).startswith("0{")
    await ws.send("40")
    while not str(await asyncio.wait_for(ws.recv(), 10)).startswith("40"):
        pass
    return ws


async def pings(ws: websockets.ClientConnection, count: int, *, answer: bool) -> int:
    """Read until ``count`` pings came (answering each with ``answer``); how many."""
    seen = 0
    while seen < count:
        if str(await asyncio.wait_for(ws.recv(), 10)) == "2":
            seen += 1
            if answer:
                await ws.send("3")
    return seen


def ping_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if "_send_ping" in t.name]


def test_every_socket_is_pinged_again_and_again_by_one_thread(live_server: LiveServer) -> None:
    async def scenario() -> tuple[list[int], list[str]]:
        sockets = [await open_socket(live_server.url) for _ in range(10)]
        counts = await asyncio.gather(*(pings(ws, 4, answer=True) for ws in sockets))
        during = ping_threads()
        for ws in sockets:
            await ws.close()
        return counts, during

    counts, during = asyncio.run(scenario())
    assert counts == [4] * 10
    assert during == []  # none of python-engineio's own ping threads
    pinger = live_server.app.extensions["socketio"].server.eio.flask_realtime_pinger
    assert [t for t in threading.enumerate() if t.name == "flask-realtime-pinger"]
    assert pinger.pending() >= 1


def test_a_client_that_stops_answering_pings_is_closed(live_server: LiveServer) -> None:
    async def scenario() -> bool:
        ws = await open_socket(live_server.url)
        await pings(ws, 1, answer=False)
        try:  # no pong: the server closes it after ping_interval + ping_timeout
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed:
            return True

    assert asyncio.run(scenario())


def test_a_client_whose_events_wait_for_room_is_not_closed_for_a_pong_not_read_yet(
        live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that sends events faster than they are handled is read at their pace
    (web/packets.py): its pong waits, unread, behind its events. The server's wait is
    not the client's silence: it stays connected and every event is answered."""
    dispatcher = packets._dispatcher
    stuck = stuck_handlers(live_server, monkeypatch, 30)
    raw = RawClient(live_server.url)
    eio = live_server.app.extensions["socketio"].server.eio
    (socket,) = eio.sockets.values()
    events = dispatcher.per_connection + dispatcher.max_waiting + 1  # the last one waits
    for ack_id in range(1, events + 1):
        raw.send(f"42{ack_id}" + json.dumps(["watch", {"run_id": "nope", "after": 0}]))
    # The ping goes out and is answered; the pong is behind the waiting event. Once the
    # ping is older than its timeout, python-engineio alone would close the socket.
    def ping_overdue() -> bool:
        raw.pump(0.05)  # reads, and answers the ping
        return bool(socket.last_ping) and time.time() - socket.last_ping > 3 * PING_TIMEOUT

    wait_for(ping_overdue)
    stuck.set()
    answers = read_acks(raw, events)
    assert sorted(answers) == list(range(1, events + 1))
    assert {a["error"] for a in answers.values()} == {"There is no run 'nope'."}
    assert not socket.closed
    assert raw.call("watch", {"run_id": "nope", "after": 0}) == {
        "error": "There is no run 'nope'."}
    raw.close()
