"""Faults of the embedded setup: the web process is killed (kill -9) and started again.

The embedded default keeps runs and output in SQLite in the instance folder
(store/sqlite.py): a run going when the process was killed is there after the restart,
failed with "The server stopped while this run was going." and with its output
(docs/reliability.md, section 8). What this checks is that nothing is left half-alive:
the clients reconnect to the new process by themselves, catch up on the run from where
they were, and new runs work. The Redis setup's faults (worker, Redis and web process
killed, nothing finished lost) are tests/redis's.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import socketio

from flask_realtime.store.sqlite import INTERRUPTED
from tests.conftest import Watcher, wait_for
from tests.processes import ROOT, WebProcess


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebProcess]:
    """``flask-realtime run`` in a subprocess, as an operator runs it (embedded store)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "FLASK_REALTIME_INSTANCE_PATH": str(tmp_path / "instance"),
           "FLASK_REALTIME_LOGIN_REQUIRED": "false", "FLASK_REALTIME_WEBEX_ENV_FILE": '""',
           "FLASK_REALTIME_JOBS": "tests.jobs_for_tests"}
    env.pop("REDIS_URL", None)
    process = WebProcess(env, tmp_path / "web.log").start()
    yield process
    process.kill(signal.SIGTERM)


def test_kill_9_of_the_web_process_keeps_its_run_failed_and_clients_recover(
    web: WebProcess,
) -> None:
    client = socketio.Client(reconnection=True, reconnection_delay=0.1,
                             reconnection_delay_max=0.5)
    w = Watcher(client)
    client.on("output", w.on_output)
    client.on("state", w.states.append)
    client.on("states", w.states.extend)  # several changes at once
    client.connect(web.url, transports=["websocket"], wait_timeout=10)
    run_id = w.call("start", {"job": "numbers", "params": {"n": 10_000_000, "pause": 0.01}})[
        "run_id"]
    wait_for(lambda: len(w.lines.get(run_id, [])) >= 1_000)
    web.kill()
    killed_at = time.monotonic()
    wait_for(lambda: not client.connected, timeout=10)
    received = w.texts(run_id)  # nothing more can arrive: the process is gone
    t0 = time.monotonic()
    web.start()  # on the same port, the same instance folder
    restart = time.monotonic() - t0
    wait_for(lambda: client.connected, timeout=15)  # the client came back by itself
    recovered = time.monotonic() - killed_at

    record = httpx.get(f"{web.url}/api/runs/{run_id}").json()
    assert (record["state"], record["error"]) == ("failed", INTERRUPTED)
    assert [r["id"] for r in httpx.get(web.url + "/api/runs").json()["runs"]] == [run_id]
    assert w.call("watch", {"run_id": run_id, "after": w.last_seq[run_id]})["ok"]
    wait_for(lambda: w.texts(run_id)[-1:] == [INTERRUPTED], timeout=20)
    numbers = w.texts(run_id)[:-1]  # what the watcher had, then what it caught up on
    assert numbers == [str(i) for i in range(1, len(numbers) + 1)]
    assert len(numbers) >= len(received) and numbers[:len(received)] == received
    again = w.call("start", {"job": "numbers", "params": {"n": 500}})["run_id"]
    wait_for(lambda: len(w.lines.get(again, [])) == 500, timeout=20)
    assert w.texts(again) == [str(i) for i in range(1, 501)]
    assert w.errors == []
    print(f"\nembedded kill -9: restart took {restart:.2f}s; client reconnected "
          f"{recovered:.2f}s after the kill; run {run_id} kept as failed with "
          f"{len(numbers)} lines ({len(numbers) - len(received)} more than the watcher had)")
    w.close()
