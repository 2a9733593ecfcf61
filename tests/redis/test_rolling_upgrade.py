"""SIGTERM on Redis: an RQ worker ends its run within the grace or fails it with its
output kept, and a rolling restart of two web processes and two workers loses no line
of a run a watcher streams (docs/deployment.md, "Rolling upgrades")."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import socketio

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import Process, WebProcess, finished, run_state

LINES = 1500


def test_a_worker_sigterm_fails_its_run_after_the_grace_and_keeps_its_output(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    busy = worker(FLASK_REALTIME_SHUTDOWN_GRACE_SECONDS="1")
    watcher = client(a.url)
    run_id = watcher.call("start", {"job": "gate"})["run_id"]
    wait_for(lambda: "waiting at the gate" in watcher.texts(run_id), timeout=20)
    assert busy.proc is not None
    t0 = time.monotonic()
    busy.proc.send_signal(signal.SIGTERM)
    busy.proc.wait(30)
    assert time.monotonic() - t0 < 1 + 1 + 5  # the grace, the stop grace, a margin
    run = finished(a.url, run_id)
    assert (run["state"], run["error"]) == ("failed", "The worker was shut down.")
    assert "waiting at the gate" in watcher.texts(run_id)


class FailoverWatcher:
    """A page behind nginx, without nginx: one python-socketio client at a time, and when
    its process closes it, a new one to the next URL that watches again ``after`` the
    last seq it has (docs/protocol.md). Records when each batch arrived."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.watcher = Watcher(socketio.Client(reconnection=False))
        self.arrivals: list[float] = []
        self.reconnects = 0
        self.run_id: str | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def on_output(self, batch: dict[str, Any]) -> None:
        self.arrivals.append(time.monotonic())
        self.watcher.on_output(batch)

    def _connect(self, url: str) -> socketio.Client:
        sio = socketio.Client(reconnection=False)
        sio.on("output", self.on_output)
        sio.connect(url, transports=["websocket"], wait_timeout=5)
        self.watcher.client = sio
        return sio

    def start(self, job: str, params: dict[str, Any]) -> str:
        self._connect(self.urls[0])
        self.run_id = str(self.watcher.call("start", {"job": job, "params": params})["run_id"])
        self._thread.start()
        return self.run_id

    def _follow(self) -> None:
        turn = 0
        while not self.done.is_set():
            if self.watcher.client.connected:
                time.sleep(0.02)
                continue
            turn += 1
            try:
                self._connect(self.urls[turn % len(self.urls)])
                after = self.watcher.last_seq.get(str(self.run_id), 0)
                reply = self.watcher.call("watch", {"run_id": self.run_id, "after": after})
                assert reply.get("ok"), reply
                self.reconnects += 1
            except Exception:
                with_client = self.watcher.client
                if with_client.connected:
                    with_client.disconnect()
                time.sleep(0.05)  # that process is down: the other one next

    def close(self) -> None:
        self.done.set()
        self._thread.join(5)
        if self.watcher.client.connected:
            self.watcher.close()


def restart_worker(old: Process, worker: Callable[..., Process]) -> Process:
    """A new worker first, then SIGTERM to the old one (its warm shutdown lets a run it
    holds finish within the grace), as an orchestrator replaces it."""
    new = worker()
    assert old.proc is not None
    old.proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):  # an idle one is gone at once: the
        old.proc.wait(5)  # next worker() then counts registrations without it
    return new


def test_a_rolling_restart_delivers_every_line_once_in_order(
        web: Callable[..., WebProcess], worker: Callable[..., Process]) -> None:
    env = {"FLASK_REALTIME_RUNNER": "rq", "FLASK_REALTIME_SHUTDOWN_GRACE_SECONDS": "60"}
    a, b = web(**env), web(**env)
    workers = [worker(**env), worker(**env)]
    follower = FailoverWatcher([a.url, b.url])
    try:
        # About 15 s: 1,500 lines, 0.1 s every 10.
        run_id = follower.start("numbers", {"n": LINES, "every": 10, "pause": 0.1})
        wait_for(lambda: run_state(a.url, run_id)["state"] == "running", timeout=20)
        for process in (a, b):  # one at a time, each back before the next goes
            wait_for(lambda: len(follower.watcher.texts(run_id)) > 0, timeout=20)
            process.restart()
        workers = [restart_worker(old, worker) for old in workers]
        run = finished(a.url, run_id, timeout=60)
        wait_for(lambda: len(follower.watcher.texts(run_id)) >= LINES, timeout=20)
    finally:
        follower.close()
    assert run["state"] == "succeeded"
    assert follower.watcher.errors == []
    assert follower.watcher.texts(run_id) == [str(i) for i in range(1, LINES + 1)]
    assert follower.reconnects >= 2
    gaps = [later - earlier for earlier, later
            in zip(follower.arrivals, follower.arrivals[1:], strict=False)]
    print(f"\nrolling restart: {follower.reconnects} reconnects, longest gap in delivery "
          f"{max(gaps):.2f} s")
