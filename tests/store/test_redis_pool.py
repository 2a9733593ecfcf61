"""The Redis store's connection pool (store/redis.py): with every connection in use, a
request waits for one to be free instead of failing (1,000 run threads at once)."""

from __future__ import annotations

import threading

from flask_realtime.core.runs import Run
from flask_realtime.store.redis import RedisStore


def test_a_request_waits_for_a_free_connection_instead_of_failing(redis_url: str) -> None:
    store = RedisStore(redis_url, listen=False, max_connections=2)
    try:
        store.create_run(Run(id="r1", job="j", title="J", user="u"))
        pool = store.redis.connection_pool
        held = [pool.get_connection() for _ in range(2)]  # every connection in use
        found: list[object] = []
        errors: list[BaseException] = []

        def read() -> None:
            try:
                found.append(store.get_run("r1"))
            except BaseException as exc:
                errors.append(exc)

        reader = threading.Thread(target=read)
        release = threading.Timer(0.3, lambda: pool.release(held.pop()))
        reader.start()
        release.start()
        reader.join(10)
        release.join(10)
        assert errors == [] and len(found) == 1
        assert isinstance(found[0], Run) and found[0].id == "r1"
        for connection in held:
            pool.release(connection)
    finally:
        store.close()
