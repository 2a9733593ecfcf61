"""Packets for a websocket are written by the thread that sends them when nothing is
queued ahead (web/socketio_internals.py ``write_through``; docs/configuration.md
``WEBSOCKET_WRITE_THROUGH``): they arrive whole and in order, also when the client
reads slowly and a frame is only partly taken by the socket; a socket that began
with long-polling keeps python-engineio's writer thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import engineio
import pytest
import websockets
from flask import Flask

from flask_realtime.web.socketio_internals import WireQueue
from tests.conftest import LiveServer
from tests.processes import wait_until


def eio_of(app: Flask) -> Any:
    return app.extensions["socketio"].server.eio


def only_socket(app: Flask) -> Any:
    """The one Engine.IO socket open on ``app``'s server, once it is there."""
    sockets = eio_of(app).sockets
    wait_until(lambda: len(sockets) == 1, timeout=10, what="one Engine.IO socket")
    return next(iter(sockets.values()))


async def open_websocket(url: str, **options: Any) -> websockets.ClientConnection:
    ws = await websockets.connect(
        url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
        origin=websockets.Origin(url), **options)
    assert str(await asyncio.wait_for(ws.recv(), 10)).startswith("0{")  # Engine.IO open
    return ws


def send_from_a_thread(app: Flask, sid: str, messages: list[str], *,
                       pace: float = 0.0) -> threading.Thread:
    """Send each of ``messages`` to ``sid`` as Engine.IO messages, from a thread of the
    server's process (as delivery does), ``pace`` seconds apart (the load's shape)."""
    eio = eio_of(app)

    def send() -> None:
        for message in messages:
            eio.send(sid, message)
            if pace:
                time.sleep(pace)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


async def receive(ws: websockets.ClientConnection, count: int) -> list[str]:
    """The next ``count`` Engine.IO messages (pings answered, not counted)."""
    got: list[str] = []
    while len(got) < count:
        frame = str(await asyncio.wait_for(ws.recv(), 20))
        if frame == "2":
            await ws.send("3")
        elif frame.startswith("4"):
            got.append(frame[1:])
    return got


def test_packets_to_a_websocket_are_written_through_in_order(
        live_server: LiveServer) -> None:
    messages = [f"line {n} " + "x" * (n % 97) for n in range(2000)]

    async def scenario() -> tuple[list[str], Any]:
        ws = await open_websocket(live_server.url)
        eio_socket = only_socket(live_server.app)
        wait_until(lambda: eio_socket.queue.unsent == 0, timeout=10, what="open written")
        thread = send_from_a_thread(live_server.app, eio_socket.sid, messages)
        got = await receive(ws, len(messages))
        thread.join(10)
        await ws.close()
        return got, eio_socket.queue

    got, packets = asyncio.run(scenario())
    assert got == messages
    assert isinstance(packets, WireQueue)
    assert packets.direct >= len(messages) // 2  # the writer thread was not woken for them


def test_a_slow_reader_gets_every_frame_whole_and_in_order(live_server: LiveServer) -> None:
    # 20 KB messages into a 4 KB send buffer while the client does not read: frames are
    # written in part, their rest queued ahead of the messages after them.
    messages = [f"{n:05d}" + chr(ord("a") + n % 26) * 20_000 for n in range(150)]

    async def scenario() -> tuple[list[str], Any]:
        ws = await open_websocket(live_server.url, max_queue=1, max_size=None)
        eio_socket = only_socket(live_server.app)
        packets = eio_socket.queue
        wait_until(lambda: packets.unsent == 0, timeout=10, what="open written")
        packets.wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        thread = send_from_a_thread(live_server.app, eio_socket.sid, messages)
        thread.join(20)  # never blocked by the client: the rest waits in the queue
        assert not thread.is_alive()
        assert packets.partial > 0 and packets.unsent > 0  # the rest: the writer's
        got = await receive(ws, len(messages))
        wait_until(lambda: packets.unsent == 0, timeout=10, what="the writer done")
        direct = packets.direct
        send_from_a_thread(live_server.app, eio_socket.sid, ["after"]).join(10)
        got += await receive(ws, 1)
        direct = packets.direct - direct
        # Read while they are sent: the socket takes a part, then room comes back while
        # the writer still holds a rest, again and again.
        thread = send_from_a_thread(live_server.app, eio_socket.sid, messages, pace=0.002)
        got += await receive(ws, len(messages))
        thread.join(10)
        await ws.close()
        return got, direct

    got, direct_after = asyncio.run(scenario())
    assert [m[:5] for m in got] == [m[:5] for m in [*messages, "after", *messages]]
    assert got == [*messages, "after", *messages]
    assert direct_after == 1  # caught up, it is written through again


@pytest.mark.parametrize("app_config", [{
    "TESTING": True, "SECRET_KEY": "test-secret-key", "WEBSOCKET_WRITE_THROUGH": False}])
def test_with_write_through_off_the_writer_thread_writes_everything(
        live_server: LiveServer, app_config: dict[str, Any]) -> None:
    async def scenario() -> tuple[list[str], Any]:
        ws = await open_websocket(live_server.url)
        eio_socket = only_socket(live_server.app)
        thread = send_from_a_thread(live_server.app, eio_socket.sid, ["a", "b", "c"])
        got = await receive(ws, 3)
        thread.join(10)
        await ws.close()
        return got, eio_socket.queue

    got, packets = asyncio.run(scenario())
    assert got == ["a", "b", "c"]
    assert not isinstance(packets, WireQueue)


def test_a_socket_upgraded_from_polling_keeps_the_writer_thread(
        live_server: LiveServer) -> None:
    client = engineio.Client()
    got: list[str] = []
    client.on("message", got.append)
    client.connect(live_server.url, transports=["polling", "websocket"],
                   engineio_path="socket.io")
    try:
        wait_until(lambda: client.transport() == "websocket", timeout=10, what="upgrade")
        eio_socket = only_socket(live_server.app)
        wait_until(lambda: eio_socket.upgraded, timeout=10, what="upgraded on the server")
        send_from_a_thread(live_server.app, eio_socket.sid, [str(n) for n in range(50)]).join(10)
        wait_until(lambda: len(got) == 50, timeout=10, what="50 messages")
        assert got == [str(n) for n in range(50)]
        assert eio_socket.queue.wire is None and eio_socket.queue.direct == 0
    finally:
        client.disconnect()


class Wire:
    """A websocket as WireQueue uses it: ``sock`` and a framing ``ws`` (here the frame
    is the message itself, so what the peer reads is the messages run together)."""

    connected = True

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ws = self

    def send(self, event: Any) -> bytes:
        return str(event.data).encode()


class Text:
    """An Engine.IO packet, as WireQueue takes it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def encode(self) -> str:
        return self.text


def test_nothing_is_written_through_while_a_rest_waits_for_the_writer() -> None:
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    packets = WireQueue()
    packets.wire = Wire(ours)
    first, second = "A" * 200_000, "B" * 10

    assert packets.send(Text(first))  # the socket takes a part of it
    assert packets.partial == 1 and packets.unsent == 1
    received = peer.recv(1_000_000)  # the client reads: there is room again
    assert packets.send(Text(second)) is False  # the rest of the first goes first
    packets.put(Text(second))

    def writer() -> None:  # python-engineio's writer, as WriteThroughWebSocket.send does it
        for _ in range(2):
            item = packets.get()
            if hasattr(item, "data"):
                ours.sendall(item.data)
            else:
                ours.sendall(item.encode().encode())
            packets.written()

    thread = threading.Thread(target=writer)
    thread.start()
    while len(received) < len(first) + len(second):
        received += peer.recv(1_000_000)
    thread.join(10)
    assert received.decode() == first + second
    assert packets.unsent == 0 and packets.send(Text("C"))  # written through again
    assert peer.recv(10) == b"C"
    ours.close()
    peer.close()
