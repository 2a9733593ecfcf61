"""``running()`` reads stop requests from the store on the job's own thread: while Redis is
away, that read must fail at once and seldom, so the job goes on at its own pace.

Before, each check went through the client's retries (0.3 s of backoff) every 0.25 s,
and a job polling ``running()`` ran at about half speed through an outage
(bench/faults.py: a 3,000-line run needed 1.5 s after Redis came back to finish).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_realtime.core.ports import StoreUnavailableError
from flask_realtime.core.runner import UNAVAILABLE_CHECK_SECONDS, StopSignal
from flask_realtime.store.redis import RedisStore
from tests.conftest import wait_for
from tests.redis_server import RedisServer


class HangUp:
    """A TCP listener that accepts each connection and closes it at once: to a client,
    a Redis that is going away. Counts the connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                self.accepted += 1
                conn.close()


@pytest.fixture
def hang_up() -> Iterator[HangUp]:
    server = HangUp()
    yield server
    server.listener.close()


def test_a_stop_check_makes_one_attempt_where_other_reads_retry(hang_up: HangUp) -> None:
    store = RedisStore(hang_up.url, listen=False)
    try:
        with pytest.raises(StoreUnavailableError):
            store.stop_requested("r1")
        assert hang_up.accepted == 1
        with pytest.raises(StoreUnavailableError):
            store.get_run("r1")  # the web tier's reads ride out a blip
        assert hang_up.accepted > 2
    finally:
        store.close()


def test_running_asks_an_absent_store_once_a_second_and_sees_the_stop_once_it_is_back(
        tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    store = RedisStore(redis.url, listen=False)
    asked: list[float] = []
    ask = store.stop_requested

    def counted(run_id: str) -> bool:
        asked.append(time.monotonic())
        return ask(run_id)

    store.stop_requested = counted  # type: ignore[method-assign]
    running = StopSignal(store, "r1", check_every=0.01)
    try:
        redis.stop()
        wait_for(lambda: not store.healthy())
        began = time.monotonic()
        while time.monotonic() - began < UNAVAILABLE_CHECK_SECONDS / 2:
            assert running()  # the job keeps going
        assert len(asked) == 1  # without the backoff: about fifty checks, each failing
        redis.start()
        store.request_stop("r1")
        wait_for(lambda: not running(), timeout=UNAVAILABLE_CHECK_SECONDS + 5, interval=0.01)
        assert asked[-1] - asked[0] >= UNAVAILABLE_CHECK_SECONDS
    finally:
        store.close()
        redis.stop()
