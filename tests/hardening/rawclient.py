"""A minimal Socket.IO client on websocket-client: one connection, no threads.

python-socketio's client hides the wire: it answers pings by itself, always reads, and
refuses to send malformed packets. The hardening tests need to do exactly those things
(send any text as a packet, stop reading), so they speak Engine.IO 4 directly:
``0`` open, ``40`` connect, ``42[event, data]`` event, ``421[...]`` with ack id 1,
``431[...]`` its ack, ``2``/``3`` ping/pong, ``1`` close.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

import websocket


class RawClient:
    def __init__(self, url: str, *, receive_buffer: int | None = None,
                 timeout: float = 5.0, cookie: str | None = None) -> None:
        options = ((socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer),) \
            if receive_buffer else ()
        self.ws = websocket.create_connection(
            url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
            timeout=timeout, sockopt=options,
            header=[f"Cookie: session={cookie}"] if cookie else None)
        self.received: list[str] = []  # every message, for tests that grep the traffic
        opening = self.ws.recv()
        assert str(opening).startswith("0"), opening
        self.ws.send("40")
        answer = self.recv(timeout)
        assert answer is not None and answer.startswith("40"), answer
        self._next_id = 1
        self.events: list[tuple[str, Any]] = []

    def send(self, text: str) -> None:
        self.ws.send(text)

    def recv(self, timeout: float) -> str | None:
        """The next message other than a ping (answered); None when the socket closed.

        Raises TimeoutError when nothing came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.ws.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                message = self.ws.recv()
            except websocket.WebSocketTimeoutException as exc:
                raise TimeoutError(f"nothing received within {timeout}s") from exc
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                return None
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            self.received.append(message)
            if message == "2":
                self.ws.send("3")
                continue
            if message in ("", "1"):
                return None
            return str(message)

    def pump(self, seconds: float) -> None:
        """Read (and keep) whatever arrives for ``seconds``; for polling with wait_for."""
        with contextlib.suppress(TimeoutError):
            self.recv(seconds)

    def call(self, event: str, data: Any, timeout: float = 5.0) -> Any:
        """Emit with an ack id; keep other events; return the ack's first value."""
        ack_id = self._next_id
        self._next_id += 1
        self.ws.send(f"42{ack_id}" + json.dumps([event, data]))
        return self.wait_ack(ack_id, timeout)

    def wait_ack(self, ack_id: int, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        prefix = f"43{ack_id}"
        while time.monotonic() < deadline:
            message = self.recv(deadline - time.monotonic())
            if message is None:
                raise ConnectionError("the server closed the connection")
            if message.startswith(prefix) and message[len(prefix):len(prefix) + 1] == "[":
                values = json.loads(message[len(prefix):])
                return values[0] if values else None
            if message.startswith("42"):
                name, payload = json.loads(message[2:])
                self.events.append((name, payload))
        raise TimeoutError(f"no ack {ack_id} within {timeout}s")

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the connection (other messages are dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.recv(deadline - time.monotonic()) is None:
                    return True
            except TimeoutError:
                return False
        return False

    def close(self) -> None:
        self.ws.close(timeout=0.2)
