"""What this server reaches into in python-socketio and python-engineio, and why.

Everything below uses something those libraries do not offer as their API: a method
with an underscore, an attribute their documentation does not list, the way they wire
their own handlers. It is all in this one module so that an upgrade that changes one
of them breaks this file and no other: each use says the version it was written
against and what breaks if it changes, and :func:`require_internals` (run when the app
is built, and by tests/web/test_socketio_internals.py) names what is gone in a
sentence instead of an ``AttributeError`` in the middle of a request.

Written against python-socketio 5.18.1, python-engineio 4.15.1 with its ``threading``
async mode (simple-websocket 1.1.0) and Flask-SocketIO 5.7.0 (``pyproject.toml``
allows python-socketio >= 5.16.2, python-engineio >= 4.13.2). The policies these hooks
serve live beside their reasons: web/packets.py (which packets and events are
accepted, the bounded event pool), web/transport.py (the Engine.IO request and frame
guards), web/delivery.py (backpressure on slow clients).
"""

from __future__ import annotations

import contextlib
import heapq
import inspect
import itertools
import queue
import socket as socket_module
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import engineio
import socketio
from engineio import packet as engineio_packet
from engineio import payload as engineio_payload
from engineio import socket as engineio_socket_module
from socketio import packet as socketio_packet
from wsproto.events import Message, TextMessage

#: The libraries' versions this module was written and tested against.
WRITTEN_AGAINST = {"python-socketio": "5.18.1", "python-engineio": "4.15.1"}


class MalformedPacketError(ValueError):
    """A Socket.IO packet from a client that this server does not handle: the
    connection that sent it is closed (web/packets.py)."""


# --- Packets ---------------------------------------------------------------------------

class PacketBase(socketio_packet.Packet):
    """python-socketio's packet class, as the ``serializer=`` option takes it (a
    subclass of ``socketio.packet.Packet`` with its own ``decode``), never binary.

    5.18.1: ``Packet.__init__`` asks ``data_is_binary(data)`` of every outgoing
    payload (it walks the whole payload looking for ``bytes``) unless
    ``uses_binary_events`` is false; ``decode`` returns the number of binary
    attachments and sets ``packet_type`` and ``data``; ``json`` is the module packets
    are encoded with (what the ``json=`` option sets). If ``data_is_binary`` stops
    being called, delivery is only slower; if ``decode`` raises other exceptions than
    these, a malformed packet logs a traceback again (tests/hardening/test_fuzz_socket.py).
    """

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        """Whether python-socketio should send ``data`` as binary: only when it is ``bytes``
        itself, so no payload is walked element by element."""
        return isinstance(data, bytes | bytearray)

    def decode(self, encoded_packet: Any) -> int:
        """Decode, with python-socketio's own errors as :class:`MalformedPacketError`;
        returns the attachment count (0: :meth:`check` refuses binary packets)."""
        try:
            attachments: int = super().decode(encoded_packet) or 0
        except (ValueError, TypeError, IndexError, RecursionError) as exc:
            raise MalformedPacketError(f"undecodable ({type(exc).__name__})") from exc
        self.check(attachments)
        return 0

    def check(self, attachments: int) -> None:
        """Raise :class:`MalformedPacketError` for a decoded packet not to handle."""


# --- Inbound messages and events -------------------------------------------------------

#: python-socketio's handler of one Engine.IO message: ``handle(eio_sid, data)``.
MessageHandler = Callable[[str, Any], None]


class InboundEvent(NamedTuple):  # a tuple: one is made for every event a client sends
    """An event python-socketio has decoded and found connected, not yet handled.

    ``run()`` does what python-socketio would have: calls the app's handler and sends
    its return value as the ack (when the client asked for one, ``ack_id``)."""

    sid: str
    eio_sid: str
    namespace: str
    ack_id: int | None
    run: Callable[[], None]


def intercept_messages(server: socketio.Server,
                       guard: Callable[[MessageHandler, str, Any], None]) -> None:
    """Hand every Engine.IO message of ``server`` to ``guard(handle, eio_sid, data)``
    instead of python-socketio, ``handle`` being python-socketio's own dispatcher.

    5.18.1: python-socketio registers ``Server._handle_eio_message`` as the Engine.IO
    server's ``"message"`` handler (``eio.on``, one handler per event: ours replaces
    it). If the method is renamed, :func:`require_internals` stops the app at startup
    (:func:`intercept_events` runs it);
    if python-socketio registers its handler later than the server's construction,
    the guard is bypassed and malformed packets log tracebacks again
    (tests/hardening/test_fuzz_socket.py fails).
    """
    handle: MessageHandler = server._handle_eio_message

    def guarded(eio_sid: str, data: Any) -> None:
        guard(handle, eio_sid, data)

    server.eio.on("message", guarded)


#: What an inbound event named "*" is renamed to before python-socketio dispatches it
#: (:func:`intercept_events`); the catch-all handler names it "*" again.
STAR_EVENT = "\x00*"


def intercept_events(server: socketio.Server, queue: Callable[[InboundEvent], None]) -> None:
    """Hand each decoded event of ``server`` to ``queue`` in the thread that read it,
    instead of python-socketio starting a thread for it or handling it there.

    5.18.1: with ``async_handlers=False``, ``Server._handle_event`` calls
    ``self._handle_event_internal(server, sid, eio_sid, data, namespace, id)`` in the
    reading thread; that method calls the handler and sends the ack. If the signature
    changes, every event fails with a TypeError (tests/web/test_socket.py fails); if
    ``_handle_event`` stops calling it, events run unbounded in the reading thread
    again (tests/hardening/test_bursts.py fails). Runs :func:`require_internals` first.
    """
    require_internals(server)
    if server.async_handlers:
        raise ValueError("Events are dispatched by this server itself: create the "
                         "Socket.IO server with async_handlers=False.")
    run_event = server._handle_event_internal

    def queue_event(srv: socketio.Server, sid: str, eio_sid: str, data: Any,
                    namespace: str, ack_id: int | None) -> None:
        if isinstance(data, list) and data and data[0] == "*":
            # An event named "*" is dispatched to the catch-all handler without its
            # name, which the handler then takes for the sid (a TypeError, no answer):
            # renamed, it reaches the catch-all as any unknown event does.
            data = [STAR_EVENT, *data[1:]]
        queue(InboundEvent(sid, eio_sid, namespace, ack_id,
                           lambda: run_event(srv, sid, eio_sid, data, namespace, ack_id)))

    server._handle_event_internal = queue_event


def send_ack(server: socketio.Server, eio_sid: str, namespace: str, ack_id: int,
             data: list[Any]) -> None:
    """Answer an event's ack without running its handler.

    5.18.1: ``Server._send_packet(eio_sid, packet)`` and ``server.packet_class`` (the
    ``serializer=`` class) are what ``_handle_event_internal`` itself acks with; there
    is no public way to ack an event outside its handler. If they change, a refused
    event is not answered (tests/hardening/test_bursts.py fails).
    """
    server._send_packet(eio_sid, server.packet_class(
        socketio_packet.ACK, namespace=namespace, id=ack_id, data=data))


def is_connected(server: Any, sid: str, namespace: str) -> bool:
    """Whether the Socket.IO ``sid`` is connected to ``namespace``: no from the moment
    its disconnect begins, before the app's disconnect handler runs.

    5.18.1: ``server.manager`` (the client manager, ``BaseManager.is_connected``);
    the same call python-socketio makes before it dispatches an event. If it goes,
    :func:`require_internals` stops the app at startup.
    """
    return bool(server.manager.is_connected(sid, namespace))


def backlog(server: Any, sid: str, namespace: str) -> int:
    """Packets waiting to be written to the Socket.IO ``sid``'s connection (0 when it
    is gone, or when this cannot be read).

    python-engineio 4.15.1: each Engine.IO socket (``eio.sockets[eio_sid]``, mapped
    from the Socket.IO sid by ``manager.eio_sid_from_sid``) holds its outgoing packets
    in ``socket.queue``, a ``queue.Queue`` in the threading mode. Nothing public says
    how far behind a client is. If this changes it reads 0: a slow client is never
    taken out of its run's room and its queue grows without bound
    (tests/hardening/test_floods.py fails).
    """
    try:
        eio_sid = server.manager.eio_sid_from_sid(sid, namespace)
        socket = engineio_socket(server.eio, eio_sid) if eio_sid else None
        return socket.queue.qsize() if socket is not None else 0
    except Exception:
        return 0


# --- Engine.IO sockets and transports --------------------------------------------------

def engineio_sockets(eio: engineio.Server) -> dict[str, Any]:
    """The open Engine.IO sockets by sid.

    4.15.1: ``Server.sockets``, the server's own dict (read it, never change it). If
    it goes, :func:`require_internals` stops the app at startup.
    """
    sockets: dict[str, Any] = eio.sockets
    return sockets


def engineio_socket(eio: engineio.Server, sid: str) -> Any | None:
    """The Engine.IO socket ``sid``, or None. It is hashable and weakly referable
    (web/transport.py keys a ``WeakKeyDictionary`` on it)."""
    return engineio_sockets(eio).get(sid)


def socket_closed(socket: Any) -> bool:
    """Whether an Engine.IO socket is closed (4.15.1: ``Socket.closed``)."""
    return bool(socket.closed)


def close_without_waiting(eio: engineio.Server, socket: Any) -> None:
    """Close an Engine.IO socket now, without waiting for a poll to take the close
    packet (the client may have none open: its next poll gets it).

    4.15.1: ``Socket.close(wait=False, reason=...)``; ``eio.disconnect(sid)`` would
    wait (``queue.join()``). If ``wait`` goes, the request that closes it hangs
    (tests/hardening/test_transport.py fails).
    """
    socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)


def on_engineio_connect(eio: engineio.Server, listener: Callable[[Any, dict[str, Any]], None],
                        ) -> None:
    """Call ``listener(socket, environ)`` for each new Engine.IO socket, before
    python-socketio's own connect handler.

    4.15.1: ``Server.handlers`` holds one handler per event (``eio.on`` replaces it),
    and python-socketio registered its ``"connect"`` one when it was created; the
    socket is in ``eio.sockets`` by the time it runs. If either changes, no polling
    request is accepted after the handshake (tests/hardening/test_transport.py fails),
    and not the other way round: a changed library refuses, it never lets a sid through.
    """
    previous = eio.handlers.get("connect")

    def connect(sid: str, environ: dict[str, Any]) -> Any:
        socket = engineio_socket(eio, sid)
        if socket is not None:
            listener(socket, environ)
        return previous(sid, environ) if previous is not None else None

    eio.on("connect", connect)


def max_decode_packets() -> int:
    """How many packets python-engineio decodes in one polling payload (4.15.1:
    ``engineio.payload.Payload.max_decode_packets``, a class attribute; it raises on
    more). If it goes, :func:`require_internals` stops the app at startup."""
    return int(engineio_payload.Payload.max_decode_packets)


def max_http_buffer_size(eio: engineio.Server) -> int:
    """The largest message python-engineio accepts (the ``max_http_buffer_size=`` it
    was created with; 4.15.1 keeps it in the attribute of that name and refuses a
    larger polling body without a traceback). If it goes, :func:`require_internals`
    stops the app at startup."""
    return int(eio.max_http_buffer_size)


def filter_websocket_frames(eio: engineio.Server,
                            refuse: Callable[[str, str], bool]) -> None:
    """Close a websocket whose text frame ``refuse(frame, remote_address)`` refuses,
    before python-engineio decodes it.

    4.15.1: in the threading mode ``eio._async["websocket"]`` is the class python-engineio
    wraps each websocket in (``SimpleWebSocketWSGI``: ``__call__(environ, start_response)``
    opens it, ``wait()`` returns the next frame or None once it is closed). If it
    changes, undecodable frames log tracebacks again (tests/hardening/test_transport.py
    fails); an async mode without websockets (``None``) gets no filter.
    """
    base = eio._async["websocket"]
    if base is None:
        return

    class FilteredWebSocket(base):  # type: ignore[misc, valid-type]
        remote = "?"

        def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
            self.remote = environ.get("REMOTE_ADDR", "?")
            return super().__call__(environ, start_response)

        def wait(self) -> Any:
            frame = super().wait()
            if isinstance(frame, str) and refuse(frame, self.remote):
                return None  # what the client closing looks like: the socket is closed
            return frame

    # A copy: the dict is the async mode module's own, shared by every server.
    eio._async = {**eio._async, "websocket": FilteredWebSocket}


# --- Writing to websockets -------------------------------------------------------------

class _Frame:
    """The bytes of a websocket frame that a write-through could not finish: queued
    ahead of everything after it, and written by the socket's writer thread (which calls
    ``encode()`` on each packet it takes, then the websocket's ``send``)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def encode(self) -> _Frame:
        return self


class WireQueue(queue.Queue[Any]):
    """An Engine.IO socket's outgoing packets, which can go straight to its websocket
    when nothing is ahead of them (:func:`write_through`).

    ``unsent`` counts the packets put and not yet written by the socket's writer thread:
    those waiting, and those it has taken and is writing (it tells :meth:`written`
    after each). While it is 0 and ``wire`` (the websocket) is set, :meth:`send` frames
    a packet and writes it on the socket without blocking, holding the queue's lock, so
    no packet can be put or taken meanwhile: the packets reach the client in the order
    they were sent. What the socket does not take at once (its buffer is full: the
    client reads slowly) is queued as the first packet, as a frame's rest, and the
    writer thread writes it when the client reads, blocking as before; the packets
    after it queue behind it, and the queue's length is the client's backlog as before
    (web/delivery.py).

    python-engineio's writer waits for a packet at most ``ping_interval +
    ping_timeout`` and then closes the websocket: that is how a client that stopped
    answering pings is closed. A packet written through counts as one taken: the wait
    ends that long after the last packet either way (:meth:`get`). While the socket's
    reader is held (``reading_paused``, told by :func:`reading_paused`) the pong that
    would let the next ping go may be unread: the wait goes on, and ends that long after
    the reader is back (``resumed``, monotonic) at the earliest."""

    def __init__(self) -> None:
        super().__init__()
        self.unsent = 0
        self.wire: Any = None  # the simple_websocket connection, while writes may go direct
        self.direct = 0  # packets written through (tests and benchmarks)
        self.partial = 0  # of them, those whose rest was queued
        self.last_direct = 0.0  # time.monotonic() of the last one
        self.reading_paused = False
        self.resumed = 0.0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """``Queue.get``; a wait with a timeout ends that long after the last packet
        queued or written through, whichever came last."""
        if not block or timeout is None:
            return super().get(block, timeout)
        wait = timeout
        while True:
            try:
                return super().get(True, wait)
            except queue.Empty:
                if self.reading_paused:
                    wait = timeout
                    continue
                wait = max(self.last_direct, self.resumed) + timeout - time.monotonic()
                if wait <= 0:
                    raise

    def _put(self, item: Any) -> None:
        if item is not None:  # None: python-engineio's "stop" to the writer
            self.unsent += 1
        super()._put(item)

    def written(self) -> None:
        """The writer thread wrote (or failed to write) one packet it took."""
        with self.mutex:
            self.unsent -= 1

    def send(self, pkt: Any) -> bool:
        """Write ``pkt`` to the websocket now if nothing is ahead of it: True if it was
        written, or its frame begun and the rest queued first; False to queue it."""
        with self.not_full:
            wire = self.wire
            if wire is None or self.unsent or not wire.connected:
                return False
            data = pkt.encode()
            frame = wire.ws.send(Message(data=data) if isinstance(data, bytes)
                                 else TextMessage(data=str(data)))  # as simple-websocket
            try:
                sent = wire.sock.send(frame, socket_module.MSG_DONTWAIT)
            except OSError:  # full (EAGAIN), or gone: the writer meets it and closes
                sent = 0
            self.direct += 1
            self.last_direct = time.monotonic()
            if sent < len(frame):
                self.partial += 1
                self._put(_Frame(frame[sent:]))  # Queue.put's own steps, under its lock
                self.unfinished_tasks += 1
                self.not_empty.notify()
            return True


_engineio_send = engineio_socket_module.Socket.send


def _send(socket: Any, pkt: Any) -> None:
    """``Socket.send`` (4.15.1: checks the ping timeout, queues the packet for the
    writer thread, logs it), writing through when the socket's queue allows it."""
    packets = socket.queue
    if not isinstance(packets, WireQueue) or packets.wire is None:
        _engineio_send(socket, pkt)
        return
    if not socket.check_ping_timeout():
        return
    if not packets.send(pkt):
        packets.put(pkt)
    socket.server.logger.info("%s: Sending packet %s data %s", socket.sid,
                              engineio_packet.packet_names[pkt.packet_type],
                              pkt.data if not isinstance(pkt.data, bytes) else "<binary>")


def _writable_without_blocking(sock: Any) -> bool:
    """Whether a non-blocking ``send`` can be tried on ``sock``: a plain socket in
    blocking mode (a timeout makes Python wait for it to be writable first; TLS refuses
    flags)."""
    return (isinstance(sock, socket_module.socket) and not isinstance(sock, ssl.SSLSocket)
            and sock.gettimeout() is None)


def write_through(eio: engineio.Server) -> None:
    """Write each packet for a websocket straight to it from the thread that sends it,
    when nothing is ahead of it, instead of waking the socket's writer thread.

    python-engineio 4.15.1 (threading mode) queues every packet (``Socket.send``), and a
    writer thread per websocket takes it and writes it (``_websocket_handler``'s
    ``writer``): every line delivered to every watcher was a thread wake and a hand-over
    of the interpreter's lock, about a third of the web process's CPU with 100 runs x 3
    watchers (docs/performance.md, "Sockets per process"). Here each socket's queue is a
    :class:`WireQueue` (``eio.create_queue``, what ``BaseSocket.__init__`` makes it
    with), which writes through while it is empty and its writer is idle.

    Only for a socket opened as a websocket (``transport=websocket``, what the page
    does first: static/app.js), never one upgraded from polling: a polling request may
    have taken packets the queue counts as unsent. The websocket is the class
    python-engineio wraps each in (``eio._async["websocket"]``, ``SimpleWebSocketWSGI``:
    its ``app`` is the bound ``Socket._websocket_handler``, ``ws`` the simple-websocket
    connection with ``sock`` and its wsproto ``ws``, ``send`` what the writer writes
    with). If these change, :func:`require_internals` names them, or packets take
    python-engineio's way again (tests/web/test_write_through.py fails)."""
    base = eio._async["websocket"]
    if base is None or eio.async_mode != "threading":
        return

    class WriteThroughWebSocket(base):  # type: ignore[misc, valid-type]
        packets: WireQueue | None = None

        def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
            handler: Any = self.app  # type: ignore[has-type]
            socket: Any = getattr(handler, "__self__", None)
            packets = getattr(socket, "queue", None)
            if isinstance(packets, WireQueue) and not socket.connected:  # no polling first
                def run(ws: Any) -> Any:
                    if _writable_without_blocking(getattr(self.ws, "sock", None)):
                        self.packets = packets
                        packets.wire = self.ws
                    try:
                        return handler(ws)
                    finally:
                        packets.wire = None
                self.app = run
            return super().__call__(environ, start_response)

        def send(self, message: Any) -> Any:
            try:
                if isinstance(message, _Frame):
                    if not self.ws.connected:
                        raise OSError("the websocket is closed")
                    self.ws.sock.sendall(message.data)
                    return None
                return super().send(message)
            finally:
                if self.packets is not None:
                    self.packets.written()

    eio._async = {**eio._async, "websocket": WriteThroughWebSocket}
    eio.create_queue = WireQueue
    engineio_socket_module.Socket.send = _send


# --- The message queue's Redis client ---------------------------------------------------

#: Connections the message queue's client opens at most; a publish waits for a free one
#: (up to :data:`QUEUE_WAIT_SECONDS`) instead of failing.
QUEUE_MAX_CONNECTIONS = 100
QUEUE_WAIT_SECONDS = 5.0


def redis_manager(url: str, *, channel: str, write_only: bool) -> socketio.RedisManager:
    """python-socketio's Redis manager (the message queue between web processes) on a
    client whose pool *waits* for a free connection. python-socketio makes its client
    with ``redis.Redis.from_url``, whose pool (redis-py 8: 100 connections) raises
    "Too many connections" when every one is in use: 1,000 run threads of a scheduler
    round announcing their runs at once did (280 "Cannot publish to redis... retrying"
    in one round, each making a new client and pool; a second failure drops the event,
    docs/performance.md "Schedules"). The store's client waits the same way
    (store/redis.py). Internal: ``RedisManager._redis_connect`` (5.18.1) is what makes
    the client, ``redis``, ``pubsub`` and ``connected`` what it sets; a sentinel URL
    keeps python-socketio's own client."""
    import redis  # bound once restore_redis has run (web/socketio_imports.py)

    class WaitingRedisManager(socketio.RedisManager):
        def _redis_connect(self) -> None:
            if "sentinel" in self.redis_url.split(":", 1)[0]:
                super()._redis_connect()
                return
            self.redis = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
                self.redis_url, max_connections=QUEUE_MAX_CONNECTIONS,
                timeout=QUEUE_WAIT_SECONDS))
            self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            self.connected = True

    return WaitingRedisManager(url, channel=channel, write_only=write_only)


# --- Pings -----------------------------------------------------------------------------

class Pinger:
    """The pings of every Engine.IO socket of one server, sent by one thread.

    python-engineio 4.15.1 (threading mode) starts a thread for each ping: after each
    pong, ``Socket.schedule_ping`` starts ``_send_ping``, which sleeps ``ping_interval``
    and sends a PING. That is a fourth thread for every open socket, made anew every
    25 s (1,000 idle sockets: 4,000 threads; docs/performance.md, "Sockets per
    process"). Here the same schedule is a heap: a socket's ping is due
    ``ping_interval`` after its last pong (or its handshake), and is sent then unless
    the socket is closing or closed, ``last_ping`` set as ``_send_ping`` sets it (the
    server's ping-timeout check reads it). Sockets are held weakly: a closed socket
    that is gone costs nothing.
    """

    def __init__(self) -> None:
        self._due: list[tuple[float, int, weakref.ref[Any]]] = []
        self._count = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, socket: Any) -> None:
        """Ping ``socket`` in ``socket.server.ping_interval`` seconds."""
        due = time.monotonic() + socket.server.ping_interval
        with self._wake:
            heapq.heappush(self._due, (due, next(self._count), weakref.ref(socket)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="flask-realtime-pinger")
                self._thread.start()
            if self._due[0][2]() is socket:  # the new earliest: the thread waits less
                self._wake.notify()

    def pending(self) -> int:
        """How many pings are scheduled (tests)."""
        with self._wake:
            return len(self._due)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                while not self._due or self._due[0][0] > now:
                    self._wake.wait(self._due[0][0] - now if self._due else None)
                    now = time.monotonic()
                ready = []
                while self._due and self._due[0][0] <= now:
                    ready.append(heapq.heappop(self._due)[2]())
            for socket in ready:
                if socket is None or socket.closing or socket.closed:
                    continue
                try:
                    socket.last_ping = time.time()
                    socket.send(engineio_packet.Packet(engineio_packet.PING))
                except Exception:  # one socket's trouble ends no other's pings
                    socket.server.logger.exception("could not ping %s", socket.sid)


_engineio_schedule_ping = engineio_socket_module.Socket.schedule_ping


def _schedule_ping(socket: Any) -> None:
    """``Socket.schedule_ping`` (5.18.1/4.15.1: called at the handshake and at each
    pong; only schedules when the last ping's cycle is over, ``last_ping`` set)."""
    pinger = getattr(socket.server, "flask_realtime_pinger", None)
    if pinger is None:
        _engineio_schedule_ping(socket)
    elif socket.last_ping:
        socket.last_ping = None
        pinger.schedule(socket)


_engineio_check_ping_timeout = engineio_socket_module.Socket.check_ping_timeout


def _check_ping_timeout(socket: Any) -> bool:
    """``Socket.check_ping_timeout`` (4.15.1: closes the socket and answers False when
    its ping is older than ``ping_timeout``), except while the thread reading the
    socket is held elsewhere (:func:`reading_paused`): the client's pong may be there,
    unread, behind the frames the server has not taken yet."""
    if getattr(socket, "flask_realtime_unread_since", None) is not None and not socket.closed:
        return True
    return bool(_engineio_check_ping_timeout(socket))


@contextlib.contextmanager
def reading_paused(eio: engineio.Server, sid: str) -> Iterator[None]:
    """While the thread that reads socket ``sid`` waits here instead of reading (its
    client sent events faster than they are handled: web/packets.py), the time does not
    count towards the socket's ping timeout: a pong sent meanwhile is only read after.
    The wait is added to an outstanding ping's start (``last_ping``), and the writer's
    wait for the next packet starts again (:class:`WireQueue`), so a client that really
    stopped answering is still closed, that much later."""
    socket = engineio_sockets(eio).get(sid)
    if socket is None:
        yield
        return
    packets = socket.queue if isinstance(socket.queue, WireQueue) else None
    began = time.time()
    socket.flask_realtime_unread_since = began
    if packets is not None:
        packets.reading_paused = True
    try:
        yield
    finally:
        if packets is not None:
            packets.resumed = time.monotonic()
            packets.reading_paused = False
        socket.flask_realtime_unread_since = None
        sent = socket.last_ping  # a ping sent before the wait, or during it
        if sent:
            socket.last_ping = sent + time.time() - max(began, sent)


def share_pings(eio: engineio.Server) -> Pinger:
    """Send the pings of ``eio``'s sockets from one :class:`Pinger` thread instead of a
    thread each, and let :func:`reading_paused` hold a socket's ping timeout. Other
    Engine.IO servers of the process keep python-engineio's way."""
    pinger = Pinger()
    eio.flask_realtime_pinger = pinger
    engineio_socket_module.Socket.schedule_ping = _schedule_ping
    engineio_socket_module.Socket.check_ping_timeout = _check_ping_timeout
    return pinger


def emit_many(server: socketio.Server, packets: Sequence[tuple[str, Any, str]], *,
              namespace: str = "/") -> int:
    """Emit each ``(event, data, room)``, in order, as ``server.emit(event, data,
    to=room, namespace=namespace)`` does: to this process's sockets in the room and,
    through the message queue, to every other process's. Through a Redis queue
    (:func:`redis_manager`) the publishes of all of them are one pipelined request
    instead of one request each (a scheduler round's 2,000 state events:
    web/announcer.py). Without a queue it is ``server.emit`` each. Payloads are JSON,
    never bytes, as everything this server sends (``PacketBase``: no walk of each
    payload for them).

    5.18.1: ``PubSubManager.emit`` builds the queue's message as below, hands it to
    ``_handle_emit`` for this process's sockets and to ``_publish`` (``redis.publish``
    of ``json.dumps(message)``, tried twice, on ``channel``); every process's listener
    skips the messages carrying its own ``host_id``. If the message's form changes,
    the other processes' sockets stop hearing these events
    (tests/redis/test_scale_out.py, tests/web/test_announcer.py).

    Returns how many packets this process's sockets were sent: the rooms' sizes
    (``Manager.rooms[namespace][room]``, 5.18.1: a mapping of the room's sids)."""
    manager: Any = server.manager
    rooms = manager.rooms.get(namespace, {})
    reached = sum(len(rooms[room]) for _, _, room in packets if room in rooms)
    if not isinstance(manager, socketio.RedisManager):
        for event, data, room in packets:
            server.emit(event, data, to=room, namespace=namespace)
        return reached
    messages = []
    for event, data, room in packets:
        message = {"method": "emit", "event": event, "data": [data], "binary": False,
                   "namespace": namespace, "room": room, "skip_sid": None,
                   "callback": None, "host_id": manager.host_id}
        manager._handle_emit(message)
        messages.append(manager.json.dumps(message))
    if messages:
        _publish_all(manager, messages)
    return reached


def _publish_all(manager: Any, messages: list[str]) -> None:
    """``RedisManager._publish`` of each message, pipelined; tried twice, logged and
    dropped as python-socketio does when Redis stays away."""
    for retries_left in (1, 0):
        try:
            if not manager.connected:
                manager._redis_connect()
            pipe = manager.redis.pipeline(transaction=False)
            for message in messages:
                pipe.publish(manager.channel, message)
            pipe.execute()
            return
        except Exception as exc:
            manager.connected = False
            if not retries_left:
                manager._get_logger().error(
                    "Cannot publish %d events to redis... giving up (%s)", len(messages), exc)


# --- The check -------------------------------------------------------------------------

def _probe_socket(eio: engineio.Server) -> Any:
    """An Engine.IO socket that is never registered (its constructor has no effect)."""
    return engineio_socket_module.Socket(eio, "flask-realtime-probe")


def _wrapper_as_written() -> bool:
    """Whether python-engineio's threading websocket wrapper keeps its handler as
    ``app`` and its simple-websocket connection as ``ws`` (:func:`write_through`)."""
    from engineio.async_drivers import _websocket_wsgi

    wrapper = _websocket_wsgi.SimpleWebSocketWSGI
    return ("self.app = handler" in inspect.getsource(wrapper.__init__)
            and "self.ws = " in inspect.getsource(wrapper.__call__)
            and callable(wrapper.send))


def missing_internals(server: socketio.Server) -> list[str]:
    """What this module uses that ``server``'s libraries no longer have (empty: all)."""
    eio: Any = getattr(server, "eio", None)
    cls = type(server)  # the class's methods: the hooks below replace the instance's
    checks: list[tuple[str, Callable[[], bool]]] = [
        ("socketio.Server._handle_eio_message", lambda: callable(cls._handle_eio_message)),
        ("socketio.Server._handle_event_internal(server, sid, eio_sid, data, namespace, id)",
         lambda: list(inspect.signature(cls._handle_event_internal).parameters) == [
             "self", "server", "sid", "eio_sid", "data", "namespace", "id"]),
        ("socketio.Server._send_packet", lambda: callable(cls._send_packet)),
        ("socketio.Server.packet_class",
         lambda: issubclass(server.packet_class, socketio_packet.Packet)),
        ("socketio.Server.async_handlers", lambda: hasattr(server, "async_handlers")),
        ("socketio.Server.manager.is_connected", lambda: callable(server.manager.is_connected)),
        ("socketio.Server.manager.eio_sid_from_sid",
         lambda: callable(server.manager.eio_sid_from_sid)),
        ("socketio.packet.Packet.data_is_binary",
         lambda: callable(socketio_packet.Packet.data_is_binary)),
        ("socketio.Server.eio", lambda: isinstance(eio, engineio.Server)),
        ("engineio.Server.sockets", lambda: isinstance(eio.sockets, dict)),
        ("engineio.Server.handlers with python-socketio's 'message' and 'connect'",
         lambda: {"message", "connect"} <= set(eio.handlers)),
        ("engineio.Server._async['websocket']", lambda: "websocket" in eio._async),
        ("engineio.Server.reason.SERVER_DISCONNECT",
         lambda: bool(eio.reason.SERVER_DISCONNECT)),
        ("engineio.Server.max_http_buffer_size", lambda: max_http_buffer_size(eio) > 0),
        ("engineio.payload.Payload.max_decode_packets", lambda: max_decode_packets() > 0),
        ("engineio.socket.Socket.queue and .closed",
         lambda: (lambda probe: hasattr(probe.queue, "qsize") and probe.closed is False)(
             _probe_socket(eio))),
        ("socketio.RedisManager._redis_connect",
         lambda: callable(socketio.RedisManager._redis_connect)),
        ("socketio.PubSubManager._handle_emit(message), .host_id, .channel, .json",
         lambda: list(inspect.signature(socketio.PubSubManager._handle_emit).parameters) == [
             "self", "message"] and all(f"self.{name} =" in inspect.getsource(
                 socketio.PubSubManager.__init__) for name in ("host_id", "channel", "json"))),
        ("engineio.socket.Socket.schedule_ping, ._send_ping, .last_ping, .closing",
         lambda: callable(_engineio_schedule_ping) and callable(
             engineio_socket_module.Socket._send_ping) and all(
                 hasattr(_probe_socket(eio), name) for name in ("last_ping", "closing"))),
        ("engineio.Server.create_queue, made each socket's queue (BaseSocket.__init__)",
         lambda: callable(eio.create_queue) and "self.server.create_queue()" in
         inspect.getsource(engineio_socket_module.Socket.__mro__[1].__init__)),
        ("engineio.socket.Socket.check_ping_timeout, reading .last_ping and .closed",
         lambda: callable(_engineio_check_ping_timeout) and all(
             f"self.{name}" in inspect.getsource(_engineio_check_ping_timeout)
             for name in ("last_ping", "closed"))),
        ("engineio's websocket wrapper: .app (the socket's handler), .ws, .send",
         lambda: _wrapper_as_written()),
        ("engineio.socket.Socket.close(wait=..., reason=...)",
         lambda: {"wait", "reason"} <= set(inspect.signature(
             engineio_socket_module.Socket.close).parameters)),
    ]
    missing = []
    for name, present in checks:
        try:
            ok = present()
        except Exception:  # an attribute gone, a signature that cannot be read: missing
            ok = False
        if not ok:
            missing.append(name)
    return missing


def require_internals(server: socketio.Server) -> None:
    """Raise a RuntimeError naming this module when :func:`missing_internals` is not
    empty: the installed python-socketio/python-engineio changed what it relies on."""
    missing = missing_internals(server)
    if missing:
        raise RuntimeError(
            "The installed python-socketio/python-engineio lack what "
            f"flask_realtime/web/socketio_internals.py uses ({', '.join(missing)}); it was "
            f"written against python-socketio {WRITTEN_AGAINST['python-socketio']} and "
            f"python-engineio {WRITTEN_AGAINST['python-engineio']}: install those "
            "versions, or update that module for the new ones.")
