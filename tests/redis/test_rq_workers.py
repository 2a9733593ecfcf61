"""Jobs on RQ workers: output flows through Redis, stops are staged, lost workers noticed."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import httpx

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import Process, WebProcess, finished, run_state


def test_a_job_on_a_worker_streams_to_the_browser(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    w = worker()
    browser = client(a.url)
    run_id = browser.call("start", {"job": "numbers", "params": {
        "n": 2000, "every": 100, "pause": 0.01}})["run_id"]
    assert finished(a.url, run_id)["state"] == "succeeded", w.output()
    wait_for(lambda: browser.last_seq.get(run_id) == 2000)
    assert browser.texts(run_id) == [str(i) for i in range(1, 2001)]
    assert not browser.errors
    wait_for(lambda: browser.state_of(run_id) == "succeeded")  # announced by the worker


def test_a_failing_job_on_a_worker_keeps_its_traceback(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    worker()
    run_id = client(a.url).call("start", {"job": "fail", "params": {}})["run_id"]
    run = finished(a.url, run_id)
    assert run["state"] == "failed" and run["error"]
    assert "Traceback" in httpx.get(f"{a.url}/api/runs/{run_id}/log").text


def test_stop_on_a_worker_is_polite_first(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    worker()
    browser = client(a.url)
    run_id = browser.call("start", {"job": "countdown", "params": {
        "n": 1000, "delay": 0.05}})["run_id"]
    wait_for(lambda: run_state(a.url, run_id)["state"] == "running", timeout=20)
    browser.call("stop", {"run_id": run_id})
    assert finished(a.url, run_id, timeout=10)["state"] == "stopped"
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    assert "Stopped." in log and "process was ended" not in log


def test_a_job_ignoring_stop_is_ended_after_the_grace_period(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    w = worker()
    browser = client(a.url)
    run_id = browser.call("start", {"job": "stubborn", "params": {"seconds": 60}})["run_id"]
    wait_for(lambda: "not listening" in httpx.get(f"{a.url}/api/runs/{run_id}/log").text,
             timeout=20)
    browser.call("stop", {"run_id": run_id})
    assert run_state(a.url, run_id)["state"] == "stopping"  # grace period: 1 s here
    run = finished(a.url, run_id, timeout=15)
    assert run["state"] == "stopped", w.output()
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    assert "not listening" in log and "process was ended" in log
    assert "done sleeping" not in log
    # the worker survives the kill of its work-horse and takes the next job
    again = browser.call("start", {"job": "countdown", "params": {"n": 2, "delay": 0}})
    assert finished(a.url, again["run_id"])["state"] == "succeeded"


def test_a_stop_is_forced_even_when_the_process_that_took_it_dies(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a, b = web(FLASK_REALTIME_RUNNER="rq"), web(FLASK_REALTIME_RUNNER="rq")
    w = worker()
    browser = client(a.url)
    run_id = browser.call("start", {"job": "stubborn", "params": {"seconds": 60}})["run_id"]
    wait_for(lambda: "not listening" in httpx.get(f"{b.url}/api/runs/{run_id}/log").text,
             timeout=20)
    browser.call("stop", {"run_id": run_id})
    a.kill()  # SIGKILL within the grace period: its timer for the forced stop dies too
    run = finished(b.url, run_id, timeout=10)  # B's reaper finds the overdue stop
    assert run["state"] == "stopped", w.output()
    log = httpx.get(f"{b.url}/api/runs/{run_id}/log").text
    assert log.count("process was ended") == 1 and "done sleeping" not in log


def test_restarting_the_web_process_mid_run_loses_no_line(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    worker()
    first = client(a.url)
    # 9 s of pauses: the restart must fall inside the run even on a loaded machine
    # (with 4.5 s a restart at load 18 came after the run's end).
    run_id = first.call("start", {"job": "numbers", "params": {
        "n": 3000, "every": 100, "pause": 0.3}})["run_id"]
    wait_for(lambda: first.last_seq.get(run_id, 0) >= 200, timeout=20)
    seen = first.last_seq[run_id]
    first.close()
    a.restart()  # the job goes on in the worker meanwhile
    assert run_state(a.url, run_id)["state"] == "running"
    second = client(a.url)  # the page reconnects and resumes where it was
    second.last_seq[run_id] = seen
    second.call("watch", {"run_id": run_id, "after": seen})
    assert finished(a.url, run_id, timeout=30)["state"] == "succeeded"
    wait_for(lambda: second.last_seq.get(run_id) == 3000)
    assert first.texts(run_id)[:seen] + second.texts(run_id) == [
        str(i) for i in range(1, 3001)]
    assert not first.errors and not second.errors


def test_a_worker_killed_mid_job_fails_the_run_and_keeps_its_output(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    w = worker()
    run_id = client(a.url).call("start", {"job": "countdown", "params": {
        "n": 1000, "delay": 0.02}})["run_id"]
    wait_for(lambda: run_state(a.url, run_id)["lines"] >= 10, timeout=20)
    horses = w.children()
    assert horses, "the worker runs the job in a work-horse process"
    w.kill()  # SIGKILL the worker and its work-horse: the machine is gone
    for pid in horses:
        os.kill(pid, signal.SIGKILL)
    run = finished(a.url, run_id, timeout=12)
    assert run["state"] == "failed" and run["error"] == "executor lost"
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    assert log.startswith("1000\n999\n") and "was lost" in log


def test_a_run_with_no_worker_says_it_waits_and_runs_when_one_starts(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    run_id = client(a.url).call("start", {"job": "numbers", "params": {"n": 3}})["run_id"]
    wait_for(lambda: run_state(a.url, run_id)["lines"] == 1)
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    assert log.startswith("No worker is taking runs from the queue 'flask-realtime'")
    assert run_state(a.url, run_id)["state"] == "queued"
    worker()
    assert finished(a.url, run_id)["state"] == "succeeded"
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    assert log.splitlines()[1:] == ["1", "2", "3"]


def test_a_run_no_worker_took_within_the_queue_ttl_fails_and_never_runs(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq", FLASK_REALTIME_QUEUE_TTL_SECONDS="1")
    browser = client(a.url)
    run_id = browser.call("start", {"job": "numbers", "params": {"n": 3}})["run_id"]
    run = finished(a.url, run_id, timeout=20)
    assert run["state"] == "failed" and run["error"] == "dropped from the queue"
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    assert "dropped from the queue and will not run: no worker took it within 1 s" in log
    wait_for(lambda: browser.state_of(run_id) == "failed")  # the page is told
    worker()  # a worker that comes later does not run it
    later = browser.call("start", {"job": "numbers", "params": {"n": 3}})["run_id"]
    assert finished(a.url, later)["state"] == "succeeded"
    assert httpx.get(f"{a.url}/api/runs/{run_id}/log").text == log


def test_a_worker_without_the_job_fails_the_run_and_says_why(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a = web(FLASK_REALTIME_RUNNER="rq")
    worker(FLASK_REALTIME_JOBS="")  # set up unlike the web process
    run_id = client(a.url).call("start", {"job": "numbers", "params": {"n": 3}})["run_id"]
    run = finished(a.url, run_id, timeout=30)
    assert run["state"] == "failed" and "There is no job named 'numbers'" in run["error"]
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    assert "This worker cannot run the job: There is no job named 'numbers'" in log
    assert "FLASK_REALTIME_JOBS" in log
