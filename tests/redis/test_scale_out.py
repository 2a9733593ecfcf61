"""Two web processes on one Redis: watch anywhere, stop anywhere, lose a process safely."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import WebProcess, finished, run_state


def test_a_client_on_b_watches_live_a_run_started_on_a(
        web: Callable[..., WebProcess], client: Callable[[str], Watcher]) -> None:
    a, b = web(), web()
    starter, watcher = client(a.url), client(b.url)
    run_id = starter.call("start", {"job": "numbers", "params": {
        "n": 3000, "every": 100, "pause": 0.02}})["run_id"]
    wait_for(lambda: starter.last_seq.get(run_id, 0) >= 100)  # running, part printed
    assert watcher.call("watch", {"run_id": run_id, "after": 0})["ok"]
    assert finished(b.url, run_id)["state"] == "succeeded"
    wait_for(lambda: watcher.last_seq.get(run_id) == 3000)
    assert watcher.texts(run_id) == [str(i) for i in range(1, 3001)]
    assert not watcher.errors and not starter.errors
    wait_for(lambda: watcher.state_of(run_id) == "succeeded")  # through the message queue


def test_resume_on_the_other_process_from_the_last_seq(
        web: Callable[..., WebProcess], client: Callable[[str], Watcher]) -> None:
    a, b = web(), web()
    first = client(a.url)
    run_id = first.call("start", {"job": "numbers", "params": {
        "n": 2000, "every": 100, "pause": 0.02}})["run_id"]
    wait_for(lambda: first.last_seq.get(run_id, 0) >= 300)
    seen = first.last_seq[run_id]
    first.close()  # the browser moves to process B and says where it was
    second = client(b.url)
    second.last_seq[run_id] = seen
    second.call("watch", {"run_id": run_id, "after": seen})
    finished(b.url, run_id)
    wait_for(lambda: second.last_seq.get(run_id) == 2000)
    assert first.texts(run_id)[:seen] + second.texts(run_id) == [
        str(i) for i in range(1, 2001)]
    assert not second.errors


def test_stop_asked_on_b_stops_a_run_executing_on_a(
        web: Callable[..., WebProcess], client: Callable[[str], Watcher]) -> None:
    a, b = web(), web()
    run_id = client(a.url).call("start", {"job": "countdown", "params": {
        "n": 1000, "delay": 0.05}})["run_id"]
    wait_for(lambda: run_state(b.url, run_id)["state"] == "running")
    assert client(b.url).call("stop", {"run_id": run_id}) == {"ok": True}
    assert finished(a.url, run_id, timeout=10)["state"] == "stopped"
    log = httpx.get(f"{b.url}/api/runs/{run_id}/log").text
    assert "Stop requested." in log and "Liftoff!" not in log


def test_a_killed_web_process_fails_its_runs_within_ten_seconds(
        web: Callable[..., WebProcess], client: Callable[[str], Watcher]) -> None:
    a, b = web(), web()
    run_id = client(a.url).call("start", {"job": "countdown", "params": {
        "n": 1000, "delay": 0.02}})["run_id"]
    wait_for(lambda: run_state(b.url, run_id)["lines"] >= 10)
    a.kill()  # SIGKILL: no goodbye
    run = finished(b.url, run_id, timeout=10)
    assert run["state"] == "failed" and run["error"] == "executor lost"
    log = httpx.get(f"{b.url}/api/runs/{run_id}/log").text
    assert log.startswith("1000\n999\n") and "was lost" in log  # output so far is kept


def test_restarting_every_web_process_loses_nothing(
        web: Callable[..., WebProcess], client: Callable[[str], Watcher],
        redis_server: object) -> None:
    a = web()
    run_id = client(a.url).call("start", {"job": "countdown", "params": {
        "n": 5, "delay": 0}})["run_id"]
    before = finished(a.url, run_id)
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    a.restart()
    assert run_state(a.url, run_id) == before
    assert httpx.get(f"{a.url}/api/runs/{run_id}/log").text == log
