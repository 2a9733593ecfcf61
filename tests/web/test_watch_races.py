"""A socket that closes right after ``watch`` costs delivery nothing (docs/reliability.md, 13.10).

The watch can be handled after the socket's disconnect; it must be dropped then, never
leave a dead sid among the run's watchers, and never cost another watcher a line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from tests.conftest import LiveServer, Watcher, wait_for
from tests.hardening.rawclient import RawClient

CYCLES = 200
LINES = 20_000


def watchers_of(server: LiveServer, run_id: str) -> set[str]:
    runs = server.app.extensions["flask_realtime"].delivery._runs
    watchers = runs.get(run_id)
    return set() if watchers is None else watchers.live | set(watchers.behind)


def test_watch_then_close_at_once_leaves_no_dead_watcher_and_loses_no_line(
        connect: Callable[..., Watcher], live_server: LiveServer,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    other = connect()
    run_id = other.call("start", {"job": "numbers", "params": {
        "n": LINES, "every": 100, "pause": 0.01}})["run_id"]
    for _ in range(CYCLES):
        raw = RawClient(live_server.url)
        raw.send("421" + json.dumps(["watch", {"run_id": run_id, "after": 0}]))
        raw.ws.shutdown()  # gone at once, without a close frame: the watch may land later

    wait_for(lambda: other.state_of(run_id) == "succeeded", timeout=60)
    wait_for(lambda: len(other.texts(run_id)) == LINES, timeout=20)
    assert other.texts(run_id) == [str(i) for i in range(1, LINES + 1)]
    alive = {other.client.get_sid("/")}
    wait_for(lambda: watchers_of(live_server, run_id) == alive, timeout=10)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert other.errors == []
