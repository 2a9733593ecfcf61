"""Socket.IO packets: what this server sends, and what it accepts from clients.

Inbound packets are checked before python-socketio dispatches them. Left to itself it
raises on malformed ones (``42``, ``42[]``, an event whose name is not a string, JSON
nested thousands deep, a 5,000-digit integer) and logs a traceback for each, or lets a
client fire the server's own ``connect``/``disconnect`` handlers as events. Here such a
packet closes that client's connection with a one-line warning: nothing a client sends
can fill the server's log with tracebacks or reach a handler it should not.

Events that pass are handled on a bounded pool of threads shared by all connections,
a few of one connection's at a time, the next ones waiting in that connection's queue
(:class:`EventDispatcher`). python-socketio would start a thread for each event: a
burst of 3,000 frames on one websocket became thousands of threads, and other users'
requests timed out behind them. An event that finds no room in its queue in time is
refused with an error ack (docs/protocol.md).

The hooks into python-socketio these rules need (its message handler, its event
dispatch, its packet class) are in web/socketio_internals.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import socketio
from socketio import packet as socketio_packet

from .socketio_internals import (
    InboundEvent,
    MalformedPacketError,
    MessageHandler,
    PacketBase,
    intercept_events,
    intercept_messages,
    is_connected,
    reading_paused,
    send_ack,
)

log = logging.getLogger(__name__)

#: Event names a client may not send: python-socketio would call the server's own
#: connection handlers with them.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})


class _FastJSON:
    """The ``json`` module python-socketio encodes packets with, on orjson.

    Encoding output batches was most of the delivery thread's time in a flood
    (py-spy, bench/flood.py); orjson does it several times faster. What orjson refuses
    (a string holding a lone surrogate, a key that is not a string) goes to the
    standard module, so any payload that could be sent still is. Inbound packets are
    parsed by the standard module, as before.
    """

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return json.dumps(obj, **kwargs)

    loads = staticmethod(json.loads)


class TextPacket(PacketBase):
    """Socket.IO packets that are never binary, and inbound ones that make sense.

    python-socketio walks every element of every payload to look for ``bytes`` before
    sending it; with output batches of 2,000 line objects that walk was the largest
    single cost of delivery (bench/stream.py under py-spy). Nothing here sends binary
    (:class:`PacketBase` skips the walk), and nothing here accepts it (:meth:`check`).
    """

    json = _FastJSON

    def check(self, attachments: int) -> None:
        """Raise :class:`MalformedPacketError` unless this inbound packet is a text connect,
        disconnect, event or ack, and an event is a list starting with a name that is not
        reserved."""
        kind = self.packet_type
        if kind in (socketio_packet.BINARY_EVENT, socketio_packet.BINARY_ACK) or attachments:
            raise MalformedPacketError("a binary packet")
        if kind not in (socketio_packet.CONNECT, socketio_packet.DISCONNECT,
                        socketio_packet.EVENT, socketio_packet.ACK):
            raise MalformedPacketError(f"packet type {kind!r}")
        if kind == socketio_packet.EVENT:
            data = self.data
            if not (isinstance(data, list) and data and isinstance(data[0], str)
                    and data[0] not in RESERVED_EVENTS):
                raise MalformedPacketError("an event without a usable name")


#: The ack of an event refused because its connection's queue had no room in time.
TOO_MANY_IN_FLIGHT = "Too many requests in flight on this connection: wait for the answers."


@dataclass
class _Connection:
    on_pool: int = 0  # calls handed to the pool (running or about to)
    waiting: deque[Callable[[], None]] = field(default_factory=deque)


class EventDispatcher:
    """Runs event handlers on one bounded pool, a few of each connection's at a time.

    ``submit(key, work)`` runs ``work()`` on the pool with at most ``per_connection``
    calls of the same ``key`` (an Engine.IO sid) there at once, and up to
    ``max_waiting`` more in that connection's own queue. When the queue is full the
    caller (the thread reading that connection) waits for room, up to ``wait_seconds``:
    a client sending faster than its events are handled is slowed to their pace, and
    costs no more than any other connection. When no room comes (the handlers are stuck,
    say on a store that is away) ``submit`` returns False and runs nothing. While the
    reader waits, the frames behind it are not read, a pong among them: the wait does
    not count towards the connection's ping timeout (``reading_paused``). Each
    finished call hands its connection's slot to that connection's next call at the back
    of the pool's queue, so connections take turns. The process never has more than
    ``workers`` threads for handlers, whatever the clients send.
    """

    def __init__(self, *, workers: int = 16, per_connection: int = 2, max_waiting: int = 16,
                 wait_seconds: float = 2.0) -> None:
        self.per_connection = per_connection
        self.max_waiting = max_waiting
        self.wait_seconds = wait_seconds
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix="flask-realtime-event")
        self._room = threading.Condition()
        #: Only connections with calls on the pool or waiting are here.
        self._connections: dict[str, _Connection] = {}

    def submit(self, key: str, work: Callable[[], None],
               wait_seconds: float | None = None) -> bool:
        """Run ``work()`` soon (True), or refuse it (False): see the class.
        ``wait_seconds`` overrides the wait for room (0: refuse at once)."""
        deadline = time.monotonic() + (
            self.wait_seconds if wait_seconds is None else wait_seconds)
        with self._room:
            while True:
                connection = self._connections.setdefault(key, _Connection())
                if connection.on_pool < self.per_connection:
                    connection.on_pool += 1
                    break
                if len(connection.waiting) < self.max_waiting:
                    connection.waiting.append(work)
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(left)
        self._pool.submit(self._serve, key, work)
        return True

    def _serve(self, key: str, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # the handlers answer every error; this is a bug, not input
            log.exception("a Socket.IO event handler failed")
        finally:
            with self._room:
                connection = self._connections[key]
                following = connection.waiting.popleft() if connection.waiting else None
                if following is None:
                    connection.on_pool -= 1
                    if not connection.on_pool:
                        del self._connections[key]
                self._room.notify_all()
            if following is not None:
                self._pool.submit(self._serve, key, following)


#: One pool for the process, whatever the number of apps (tests make many).
_dispatcher = EventDispatcher()


def guard_inbound(server: socketio.Server, dispatcher: EventDispatcher | None = None) -> None:
    """Close the connection of a client that sends a malformed packet, and run events
    on ``dispatcher`` (the process's by default), never on a thread each (see above).

    The server must have ``async_handlers=False`` (ValueError otherwise): python-socketio
    then hands each event over in the thread that read it, which queues it here.
    """
    events = dispatcher or _dispatcher

    def guarded(handle: MessageHandler, eio_sid: str, data: Any) -> None:
        try:
            if not isinstance(data, str) or not data:
                # python-socketio would treat "" as an event without data, bytes as an
                # attachment of a binary packet; neither is anything this server accepts.
                raise MalformedPacketError("an empty or binary message")
            handle(eio_sid, data)
        except MalformedPacketError as exc:
            log.warning("closed a Socket.IO connection that sent a malformed packet: %s", exc)
            server.eio.disconnect(eio_sid)

    def queue_event(event: InboundEvent) -> None:
        def work() -> None:
            if is_connected(server, event.sid, event.namespace):  # gone while it waited
                event.run()

        if events.submit(event.eio_sid, work, wait_seconds=0):
            return
        with reading_paused(server.eio, event.eio_sid):  # its pong waits behind this
            accepted = events.submit(event.eio_sid, work)
        if not accepted and event.ack_id is not None:
            send_ack(server, event.eio_sid, event.namespace, event.ack_id,
                     [{"error": TOO_MANY_IN_FLIGHT}])

    intercept_events(server, queue_event)
    intercept_messages(server, guarded)
