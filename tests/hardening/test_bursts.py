"""One socket's burst of events is bounded work (docs/reliability.md, 13.5).

Real Redis, real RQ worker, two logged-in users. One user's socket sends 3,000 ``watch``
and 3,000 ``stop`` frames as fast as it can: the process gains only a few threads (a
bounded pool serves every connection's events, one thread keeps every stop's
deadline), the burst goes at the pace its events are handled, and the other user's
requests answer as usual meanwhile. An event that finds no room in time is refused.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_realtime.web import packets
from flask_realtime.web.app import apply_switch_interval, create_app
from flask_realtime.web.auth import configure_demo
from tests.auth.conftest import Browser, simulator, simulator_options  # noqa: F401
from tests.conftest import LiveServer, start_server, wait_for
from tests.hardening.rawclient import RawClient
from tests.redis.conftest import ROOT, Process, processes, stack_env, worker  # noqa: F401

FRAMES = 3_000
#: Threads the burst may add to the process (pool, deadline thread, forcing): before the
#: fix it added one per event in flight, hundreds.
MAX_NEW_THREADS = 30
#: The other user's requests made while all is quiet, before the burst.
SAMPLES = 300


@pytest.fixture
def demo_on_redis(redis_url: str, simulator: Any, tmp_path: Path,  # noqa: F811
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A server in demo mode on Redis whose runs go to RQ workers, as in production."""
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "SECRET_KEY": "shared-test-secret",
                      "REDIS_URL": redis_url, "RUNNER": "rq", "JOBS": "tests.jobs_for_tests",
                      "WEBEX_ENV_FILE": "", "STOP_GRACE_SECONDS": 30})
    configure_demo(app, simulator)
    interval = sys.getswitchinterval()
    apply_switch_interval(app)  # as `flask-realtime run` and web/wsgi.py do
    server = start_server(app)
    yield server
    server.stop()
    sys.setswitchinterval(interval)


@pytest.fixture
def two_users(demo_on_redis: LiveServer) -> Iterator[tuple[Browser, Browser]]:
    attacker, victim = Browser(demo_on_redis.url), Browser(demo_on_redis.url)
    attacker.login("user1")
    victim.login("user2")
    yield attacker, victim
    attacker.close()
    victim.close()


class Sampler:
    """The victim's requests and the process's thread count, sampled until stopped."""

    def __init__(self, victim: Browser) -> None:
        self.victim = victim
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.most_threads = threading.active_count()
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._requests, daemon=True),
                         threading.Thread(target=self._count, daemon=True)]

    def __enter__(self) -> Sampler:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(10)

    def _requests(self) -> None:
        while not self._done.is_set():
            began = time.perf_counter()
            status = self.victim.http.get("/api/runs").status_code
            self.latencies.append(time.perf_counter() - began)
            self.statuses.append(status)

    def _count(self) -> None:
        while not self._done.wait(0.002):
            self.most_threads = max(self.most_threads, threading.active_count())


@contextlib.contextmanager
def attacker_process(url: str, cookie: str, run_id: str) -> Iterator[subprocess.Popen[str]]:
    """The attacker, in a process of its own so that its CPU is not the server's: it
    connects, says ``ready``, and at ``go`` sends its burst (see :func:`attack`)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.hardening.test_bursts", url, cookie, run_id],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def read_acks(raw: RawClient, count: int) -> dict[int, Any]:
    """The next ``count`` acks, by ack id, whatever their order."""
    acks: dict[int, Any] = {}
    while len(acks) < count:
        message = raw.recv(30)
        assert message is not None, "the server closed the connection"
        if message.startswith("43"):
            digits = len(message) - len(message[2:].lstrip("0123456789"))
            acks[int(message[2:digits])] = json.loads(message[digits:])[0]
    return acks


def attack(url: str, cookie: str, run_id: str) -> None:
    """FRAMES ``watch`` then FRAMES ``stop`` events with ack ids, sent at once once told
    ``go`` on stdin; then every ack, printed as JSON."""
    raw = RawClient(url, cookie=cookie, timeout=30)
    frames = [json.dumps([event, {"run_id": run_id, "after": 0}])
              for event in ("watch", "stop") for _ in range(FRAMES)]
    frames = [f"42{ack_id}{frame}" for ack_id, frame in enumerate(frames, 1)]
    print("ready", flush=True)
    sys.stdin.readline()
    for frame in frames:
        raw.send(frame)
    print(json.dumps(list(read_acks(raw, len(frames)).values())), flush=True)


def test_a_burst_of_events_adds_few_threads_and_other_users_do_not_notice(
        demo_on_redis: LiveServer, two_users: tuple[Browser, Browser],
        worker: Callable[..., Process]) -> None:  # noqa: F811
    attacker, victim = two_users
    worker()
    raw = RawClient(demo_on_redis.url, cookie=attacker.cookie, timeout=30)
    run_id = raw.call("start", {"job": "stubborn", "params": {"seconds": 60}})["run_id"]
    wait_for(lambda: attacker.http.get(f"/api/runs/{run_id}").json()["state"] == "running",
             timeout=20)
    assert raw.call("stop", {"run_id": run_id}) == {"ok": True}  # stopping: 30 s of grace

    with attacker_process(demo_on_redis.url, str(attacker.cookie), run_id) as attack_:
        assert attack_.stdin is not None and attack_.stdout is not None
        with Sampler(victim) as quiet:
            wait_for(lambda: len(quiet.latencies) >= SAMPLES, timeout=30)
        assert set(quiet.statuses) == {200}, quiet.statuses
        baseline = threading.active_count()
        with Sampler(victim) as loud:
            attack_.stdin.write("go\n")
            attack_.stdin.flush()
            printed = attack_.stdout.readline()
    assert printed, "the attacker's process ended without its answers: its stderr says why"
    answers = json.loads(printed)

    assert loud.most_threads - baseline < MAX_NEW_THREADS, (baseline, loud.most_threads)
    # The other user is served all along, and only with 200s: before the pool, with a
    # thread per event, the session read as anonymous and the store as away (401, 503).
    # How much slower the answers get is a timing, which a unit test does not assert on
    # two shared cores (a p99 ratio moved from 0.4x to 14x between runs): the figures
    # are in docs/reliability.md, 13.5.
    assert len(loud.statuses) >= 20 and set(loud.statuses) == {200}, loud.statuses
    assert len(answers) == 2 * FRAMES and any(a.get("ok") for a in answers)
    assert {a["error"] for a in answers if not a.get("ok")} <= {packets.TOO_MANY_IN_FLIGHT}


def stuck_handlers(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch,
                   wait_seconds: float) -> threading.Event:
    """The handlers hang, as on a store that does not answer, until the event returned
    is set; an event waits ``wait_seconds`` for room in its connection's queue."""
    monkeypatch.setattr(packets._dispatcher, "wait_seconds", wait_seconds)
    service = live_server.app.extensions["flask_realtime"].service
    stuck = threading.Event()
    real_get = service.get
    monkeypatch.setattr(service, "get", lambda *a: stuck.wait(30) and real_get(*a))
    return stuck


def test_an_event_finding_no_room_in_time_is_refused_with_an_error_ack(
        live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    dispatcher = packets._dispatcher
    stuck = stuck_handlers(live_server, monkeypatch, 0.2)  # the connection's queue fills
    raw = RawClient(live_server.url)
    room = dispatcher.per_connection + dispatcher.max_waiting
    for ack_id in range(1, room + 2):
        raw.send(f"42{ack_id}" + json.dumps(["watch", {"run_id": "nope", "after": 0}]))
    assert raw.wait_ack(room + 1) == {"error": packets.TOO_MANY_IN_FLIGHT}
    stuck.set()
    answers = read_acks(raw, room)  # the queued ones, in any order
    assert sorted(answers) == list(range(1, room + 1))
    assert {a["error"] for a in answers.values()} == {"There is no run 'nope'."}


if __name__ == "__main__":  # the attacker's process (see attacker_process)
    attack(*sys.argv[1:4])
