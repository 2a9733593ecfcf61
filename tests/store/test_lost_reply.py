"""A reply lost on the wire after Redis appended: the batch sent again is stored once.

Redis stopping (or a network cut) between running the append script and delivering its
reply leaves the writer unable to know whether its lines were stored; redis-py sends the
script again on a new connection, and the pump sends the batch again later. A proxy in
front of the test's own Redis drops exactly one reply to make this happen for real.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from redis.backoff import NoBackoff
from redis.retry import Retry

import redis
from flask_realtime.core.ports import StoreUnavailableError
from flask_realtime.store.redis import _APPEND, RedisStore


class ReplyDroppingProxy:
    """Forwards TCP both ways; when armed, the next reply from Redis closes the connection
    instead of reaching the client (the command it answers has run)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.armed = threading.Event()
        self.dropped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.upstream)
                self._sockets += [client, server]
                threading.Thread(target=self._pipe, args=(client, server, False),
                                 daemon=True).start()
                threading.Thread(target=self._pipe, args=(server, client, True),
                                 daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65_536):
                if replies and self.armed.is_set():
                    self.armed.clear()
                    self.dropped.set()
                    break
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[ReplyDroppingProxy]:
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    made = ReplyDroppingProxy((host, int(port)))
    yield made
    made.close()


def test_redis_py_sending_the_append_again_stores_it_once(proxy: ReplyDroppingProxy) -> None:
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", listen=False)
    try:
        store.append_output("r1", [("stdout", "0", "\n")], 1)  # connected, script loaded
        proxy.armed.set()
        end = store.append_output("r1", [("stdout", str(i), "\n") for i in range(1, 101)], 2)
        assert proxy.dropped.is_set()  # the first reply did not arrive: redis-py retried
        assert end == store.output_end("r1") == 101
        texts = [text for _stream, text, _end in store.read_output("r1", 0).lines]
        assert texts == [str(i) for i in range(101)]
    finally:
        store.close()


def test_the_pump_sending_a_refused_batch_again_stores_it_once(
        proxy: ReplyDroppingProxy) -> None:
    """As the pump does: the call failed, so the same lines go again with newer ones."""
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", listen=False)
    # Without redis-py's own retry, the lost reply reaches the caller as it does when
    # Redis stays away longer than redis-py retries.
    store.redis = redis.Redis.from_url(store.url, retry=Retry(NoBackoff(), 0))
    store._append = store.redis.register_script(_APPEND)
    try:
        first = [("stdout", str(i), "\n") for i in range(50)]
        store.append_output("r2", first[:1], 1, writer="w", offset=0)
        proxy.armed.set()
        with pytest.raises(StoreUnavailableError):
            store.append_output("r2", first[1:], 1, writer="w", offset=1)
        assert proxy.dropped.is_set()
        more = first[1:] + [("stdout", str(i), "\n") for i in range(50, 80)]
        assert store.append_output("r2", more, 2, writer="w", offset=1) == 80
        texts = [text for _stream, text, _end in store.read_output("r2", 0).lines]
        assert texts == [str(i) for i in range(80)]
    finally:
        store.close()
