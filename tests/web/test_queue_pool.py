"""The message queue's Redis client (web/socketio_internals.py ``redis_manager``): with
every connection of its pool in use, a publish waits for a free one; python-socketio's
own client (redis-py's pool from a URL) raised "Too many connections", logged "Cannot
publish to redis... retrying", made a new client and pool, and dropped the event at a
second failure (1,000 run threads of a scheduler round announcing at once)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import redis
from flask_realtime.web.states import CHANNEL, QueueAnnouncer


@pytest.fixture
def app_config(redis_url: str) -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "REDIS_URL": redis_url,
            "WEBEX_ENV_FILE": "", "SCHEDULER": False}


def publish_with_every_connection_held(manager: Any, redis_url: str,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """Hold every connection of ``manager``'s pool, publish from another thread, free
    one connection: the event arrives, through the same client, with no error logged."""
    listener = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(manager.channel)
    listener.get_message(timeout=5)  # the subscription's confirmation
    manager.emit("state", {"run_id": "r0"}, namespace="/", to="someone")  # connected
    first = listener.get_message(timeout=10)
    assert first is not None and b"r0" in first["data"]
    client = manager.redis
    pool = client.connection_pool
    held = [pool.get_connection() for _ in range(pool.max_connections)]
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            manager.emit("state", {"run_id": "r1"}, namespace="/", to="someone")
        except BaseException as exc:
            errors.append(exc)

    caplog.set_level(logging.ERROR)
    sender = threading.Thread(target=publish)
    release = threading.Timer(0.3, lambda: pool.release(held.pop()))
    sender.start()
    release.start()
    try:
        message = listener.get_message(timeout=10)
        sender.join(10)
        release.join(10)
        assert errors == []
        assert not [r for r in caplog.records if "Cannot publish" in r.getMessage()]
        assert message is not None and b"r1" in message["data"]
        assert manager.redis is client  # not replaced by a new client and pool
    finally:
        for connection in held:
            pool.release(connection)
        listener.close()


def test_the_apps_queue_waits_for_a_free_connection(
        app: Any, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    try:
        manager = app.extensions["flask_realtime"].socketio.server.manager
        assert manager.channel == CHANNEL
        publish_with_every_connection_held(manager, redis_url, caplog)
    finally:
        app.extensions["flask_realtime"].close()


def test_a_workers_announcer_waits_for_a_free_connection(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    announcer = QueueAnnouncer(store=None, redis_url=redis_url)  # type: ignore[arg-type]
    publish_with_every_connection_held(announcer.queue, redis_url, caplog)
