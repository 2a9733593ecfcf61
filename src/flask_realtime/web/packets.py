"""Socket.IO packets: what this server sends, and what it accepts from clients.

Inbound packets are checked before python-socketio dispatches them. Left to itself it
raises on malformed ones (``42``, ``42[]``, an event whose name is not a string, JSON
nested thousands deep, a 5,000-digit integer) and logs a traceback for each, or lets a
client fire the server's own ``connect``/``disconnect`` handlers as events. Here such a
packet closes that client's connection with a one-line warning: nothing a client sends
can fill the server's log with tracebacks or reach a handler it should not.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
import socketio
from socketio import packet as socketio_packet

log = logging.getLogger(__name__)

#: Event names a client may not send: python-socketio would call the server's own
#: connection handlers with them.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})


class MalformedPacketError(ValueError):
    pass


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


class TextPacket(socketio_packet.Packet):
    """Socket.IO packets that are never binary, and inbound ones that make sense.

    python-socketio walks every element of every payload to look for ``bytes`` before
    sending it; with output batches of 2,000 line objects that walk was the largest
    single cost of delivery (bench/stream.py under py-spy). Nothing here sends binary,
    and nothing here accepts it.
    """

    json = _FastJSON

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        return isinstance(data, bytes | bytearray)

    def decode(self, encoded_packet: Any) -> int:
        try:
            attachments: int = super().decode(encoded_packet)
        except (ValueError, TypeError, IndexError, RecursionError) as exc:
            raise MalformedPacketError(f"undecodable ({type(exc).__name__})") from exc
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
        return 0


def guard_inbound(server: socketio.Server) -> None:
    """Close the connection of a client that sends a malformed packet (see above)."""
    handle = server._handle_eio_message  # what python-socketio registered for 'message'

    def guarded(eio_sid: str, data: Any) -> None:
        try:
            if not isinstance(data, str) or not data:
                # python-socketio would treat "" as an event without data, bytes as an
                # attachment of a binary packet; neither is anything this server accepts.
                raise MalformedPacketError("an empty or binary message")
            handle(eio_sid, data)
        except MalformedPacketError as exc:
            log.warning("closed a Socket.IO connection that sent a malformed packet: %s", exc)
            server.eio.disconnect(eio_sid)

    server.eio.on("message", guarded)
