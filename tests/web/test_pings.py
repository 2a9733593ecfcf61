"""Engine.IO pings from one thread (web/socketio_internals.py ``Pinger``): python-engineio
starts a thread for every ping of every socket; here every socket is pinged on the same
schedule by one thread, a client that answers stays connected, and one that stops
answering is still closed after the ping timeout."""

from __future__ import annotations

import asyncio
import threading

import pytest
import websockets
from flask import Flask

from tests.conftest import LiveServer

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
