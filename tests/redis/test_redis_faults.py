"""Redis itself goes away: killed, restarted, stopped for a while
(docs/reliability.md, requirements 13 and 14)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import WebProcess, finished, run_state
from tests.redis_server import RedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own: it gets killed."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(own_redis: RedisServer) -> str:
    return own_redis.url


def test_kill_9_redis_and_restart_keeps_runs_output_and_sessions(
        own_redis: RedisServer, web: Callable[..., WebProcess],
        client: Callable[[str], Watcher]) -> None:
    a = web()
    browser = httpx.Client(base_url=a.url)
    csrf = _csrf_token(browser.get("/").text)  # made and kept in this session
    run_id = client(a.url).call("start", {"job": "countdown", "params": {
        "n": 20, "delay": 0}})["run_id"]
    before = finished(a.url, run_id)
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    # appendfsync everysec: a write is in the AOF file (the OS's cache) at once, fsynced
    # within a second; a kill -9 of redis-server alone loses nothing that reached the file.
    wait_for(lambda: b'"succeeded"' in _aof(own_redis) and csrf.encode() in _aof(own_redis))
    own_redis.kill()
    own_redis.start()
    wait_for(lambda: httpx.get(f"{a.url}/healthz").json()["status"] == "ok", timeout=15)
    assert run_state(a.url, run_id) == before
    assert httpx.get(f"{a.url}/api/runs/{run_id}/log").text == log
    assert _csrf_token(browser.get("/").text) == csrf  # the same session, read back


def _csrf_token(page: str) -> str:
    found = re.search(r'data-csrf-token="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def _aof(server: RedisServer) -> bytes:
    return b"".join(f.read_bytes() for f in server.dir.rglob("*.aof*") if f.is_file())


def test_redis_away_for_seconds_mid_run_loses_no_line(
        own_redis: RedisServer, web: Callable[..., WebProcess],
        client: Callable[[str], Watcher]) -> None:
    a = web()
    run_id = client(a.url).call("start", {"job": "numbers", "params": {
        "n": 3000, "every": 100, "pause": 0.05}})["run_id"]
    wait_for(lambda: run_state(a.url, run_id)["lines"] >= 200)
    own_redis.stop()
    started = time.monotonic()
    health = httpx.get(f"{a.url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    refused = httpx.get(f"{a.url}/api/runs", timeout=10)
    assert refused.status_code == 503 and "try again" in refused.json()["error"]
    assert time.monotonic() - started < 5  # answered quickly, nothing hangs
    assert httpx.get(a.url, timeout=10).status_code == 200  # the page still serves
    wait_for(lambda: time.monotonic() - started > 3, timeout=10)  # the outage lasts 3 s
    own_redis.start()
    run = finished(a.url, run_id, timeout=60)
    assert run["state"] == "succeeded", run
    lines = httpx.get(f"{a.url}/api/runs/{run_id}/log").text.splitlines()
    assert lines == [str(i) for i in range(1, 3001)]
