"""Graceful shutdown of ``flask-realtime run`` on SIGTERM (docs/deployment.md, "Graceful
shutdown"), with real processes on the SQLite store: runs get SHUTDOWN_GRACE_SECONDS to
end, those still going end ``failed`` with their output kept, starts during the grace
get a 503 sentence, and sockets are closed so that pages reconnect elsewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from flask_realtime.web.app import shutdown
from tests import jobs_for_tests
from tests.auth.conftest import Browser
from tests.conftest import LiveServer, wait_for
from tests.processes import ROOT, WebProcess, wait_http

SHUTDOWN_ERROR = "The server was shut down."
STOP_GRACE = 0.5


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Callable[..., WebProcess]]:
    """``web(grace)``: a ``flask-realtime run`` on SQLite with that shutdown grace."""
    started: list[WebProcess] = []

    def start(grace: float) -> WebProcess:
        env = {**os.environ, "FLASK_REALTIME_LOGIN_REQUIRED": "false",
               "FLASK_REALTIME_JOBS": "tests.jobs_for_tests",
               "FLASK_REALTIME_WEBEX_ENV_FILE": '""',
               "FLASK_REALTIME_INSTANCE_PATH": str(tmp_path / "instance"),
               "FLASK_REALTIME_SHUTDOWN_GRACE_SECONDS": str(grace),
               "FLASK_REALTIME_STOP_GRACE_SECONDS": str(STOP_GRACE),
               "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        process = WebProcess(env, tmp_path / f"web{len(started)}.log")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.kill()


def start_run(url: str, job: str, **params: Any) -> str:
    page = Browser(url)
    try:
        reply = page.post("/api/runs", {"job": job, "params": params})
    finally:
        page.close()
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def run_of(url: str, run_id: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/runs/{run_id}", timeout=5).json()  # type: ignore[no-any-return]


def texts(url: str, run_id: str) -> list[str]:
    reply = httpx.get(f"{url}/api/runs/{run_id}/lines", timeout=5).json()
    return [line["text"] for line in reply["lines"]]


def running(url: str, run_id: str, line: str) -> None:
    wait_for(lambda: run_of(url, run_id)["state"] == "running" and line in texts(url, run_id),
             timeout=15, interval=0.05)


def terminate(process: WebProcess) -> float:
    """SIGTERM, and the seconds until the process has exited."""
    assert process.proc is not None
    t0 = time.monotonic()
    process.proc.send_signal(signal.SIGTERM)
    process.proc.wait(60)
    return time.monotonic() - t0


def test_a_run_still_going_after_the_grace_is_failed_with_its_output_kept(
        web: Callable[..., WebProcess]) -> None:
    server = web(grace=1)
    run_id = start_run(server.url, "gate")  # asked to stop, it returns: too late all the same
    running(server.url, run_id, "waiting at the gate")
    took = terminate(server)
    assert took < 1 + STOP_GRACE + 5
    server.start()
    run = run_of(server.url, run_id)
    assert (run["state"], run["error"]) == ("failed", SHUTDOWN_ERROR)
    assert "waiting at the gate" in texts(server.url, run_id)


def test_a_job_ignoring_running_is_failed_once_the_grace_and_stop_grace_are_over(
        web: Callable[..., WebProcess]) -> None:
    server = web(grace=1)
    run_id = start_run(server.url, "stubborn", seconds=60)
    running(server.url, run_id, "not listening")
    took = terminate(server)
    assert took < 1 + STOP_GRACE + 5
    server.start()
    run = run_of(server.url, run_id)
    assert (run["state"], run["error"]) == ("failed", SHUTDOWN_ERROR)
    assert "not listening" in texts(server.url, run_id)


def test_a_run_ending_within_the_grace_succeeds_and_the_process_exits_then(
        web: Callable[..., WebProcess]) -> None:
    server = web(grace=30)
    run_id = start_run(server.url, "stubborn", seconds=1.5)  # ignores running(): ends by itself
    running(server.url, run_id, "not listening")
    took = terminate(server)
    assert took < 15  # not the whole grace: it exits once its runs have ended
    server.start()
    assert run_of(server.url, run_id)["state"] == "succeeded"
    assert "done sleeping" in texts(server.url, run_id)


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "LOGIN_REQUIRED": False,
            "JOBS": "tests.jobs_for_tests", "WEBEX_ENV_FILE": "", "STOP_GRACE_SECONDS": 0.5}


def test_a_start_during_the_grace_gets_503_with_a_sentence(live_server: LiveServer) -> None:
    """In this process (the signal's part, closing the listener, is the tests above')."""
    jobs_for_tests.gate_open.clear()  # other modules' tests leave the gate open
    run_id = start_run(live_server.url, "gate")
    running(live_server.url, run_id, "waiting at the gate")
    service = live_server.app.extensions["flask_realtime"].service
    ended: list[str] = []
    service.subscribe(lambda run: ended.append(run.state.value) if run.id == run_id else None)
    ending = threading.Thread(target=shutdown, args=(live_server.app, 30))
    ending.start()
    try:
        wait_for(lambda: service.closing)
        page = Browser(live_server.url)
        try:
            reply = page.post("/api/runs", {"job": "numbers", "params": {"n": 1}})
        finally:
            page.close()
    finally:
        jobs_for_tests.gate_open.set()
        ending.join(30)
        jobs_for_tests.gate_open.clear()
    assert reply.status_code == 503
    assert "shutting down" in reply.json()["error"]
    assert ended[-1] == "succeeded"  # the run going at the shutdown ended within the grace


def test_sockets_are_closed_at_sigterm_before_the_runs_end(
        web: Callable[..., WebProcess]) -> None:
    server = web(grace=5)
    run_id = start_run(server.url, "gate")
    running(server.url, run_id, "waiting at the gate")
    client = socketio.Client(reconnection=False)
    closed = threading.Event()
    client.on("disconnect", lambda *reason: closed.set())
    client.connect(server.url, transports=["websocket"], wait_timeout=10)
    try:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        assert closed.wait(3)  # well within the grace: the run is still going
        assert server.proc.poll() is None
    finally:
        client.disconnect()


def test_gunicorn_with_our_config_fails_a_run_still_going_after_the_grace(
        web: Callable[..., WebProcess], tmp_path: Path) -> None:
    reader = web(grace=1)  # the same instance folder, started again below to read the run
    reader.kill(signal.SIGTERM)
    assert reader.proc is not None
    env = {**reader.env, "FLASK_REALTIME_PRODUCTION": "false"}
    url = f"http://127.0.0.1:{reader.port}"
    log = tmp_path / "gunicorn.log"
    with log.open("ab") as out:
        gunicorn = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c",
             "python:flask_realtime.web.gunicorn_conf", "-k", "gthread", "-w", "1",
             "--threads", "20", "-b", f"127.0.0.1:{reader.port}",
             "flask_realtime.web.wsgi:app"], env=env, cwd=ROOT, stdout=out, stderr=out)
    try:
        wait_http(f"{url}/healthz", proc=gunicorn, log=log)
        run_id = start_run(url, "gate")
        running(url, run_id, "waiting at the gate")
        t0 = time.monotonic()
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(60)
        assert time.monotonic() - t0 < 1 + STOP_GRACE + 5
    finally:
        if gunicorn.poll() is None:
            gunicorn.kill()
    reader.start()
    run = run_of(reader.url, run_id)
    assert (run["state"], run["error"]) == ("failed", SHUTDOWN_ERROR)
    assert "waiting at the gate" in texts(reader.url, run_id)
