"""``/metrics`` (docs/deployment.md, "Metrics"): scraped from a real gunicorn in
multiprocess mode after a run, and from a server a Webex user logged in to."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families

from flask_realtime.config import ConfigError
from flask_realtime.web.app import create_app
from tests.auth.conftest import Browser, browser, simulator, simulator_options  # noqa: F401
from tests.conftest import LiveServer, Watcher, wait_for
from tests.processes import ROOT, free_port, wait_http

TOKEN = "metrics-token-4f1c2b9e7a"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
#: Every label the package's metrics have: none of them can hold a user.
LABELS = {"job", "state", "method", "status", "le"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The production entry point with metrics on: gunicorn, the package's settings
    module, one worker, PROMETHEUS_MULTIPROC_DIR set."""
    folder = tmp_path_factory.mktemp("metrics")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_REALTIME_", "PROMETHEUS_")) and k not in (
               "SECRET_KEY", "REDIS_URL", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI")}
    env.update(PYTHONPATH=str(ROOT), SECRET_KEY="k" * 40, PROMETHEUS_MULTIPROC_DIR=str(
        folder / "prometheus"), FLASK_REALTIME_METRICS="true",
        FLASK_REALTIME_METRICS_TOKEN=TOKEN, FLASK_REALTIME_LOGIN_REQUIRED="false",
        FLASK_REALTIME_JOBS="tests.jobs_for_tests", FLASK_REALTIME_WEBEX_ENV_FILE='""',
        FLASK_REALTIME_INSTANCE_PATH=str(folder / "instance"))
    port = free_port()
    log = folder / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:flask_realtime.web.gunicorn_conf",
             "-k", "gthread", "-w", "1", "--threads", "20", "-b", f"127.0.0.1:{port}",
             "flask_realtime.web.wsgi:app"], env=env, cwd=ROOT, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", proc=proc, log=log)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


def watched_run(url: str, job: str, params: dict[str, Any]) -> tuple[Watcher, str]:
    client = socketio.Client(reconnection=False)
    watcher = Watcher(client)
    client.on("output", watcher.on_output)
    client.on("state", watcher.states.append)
    client.on("states", watcher.states.extend)  # several changes at once
    client.connect(url, transports=["websocket"], wait_timeout=10)
    run_id = watcher.call("start", {"job": job, "params": params})["run_id"]
    watcher.call("watch", {"run_id": run_id, "after": 0})
    wait_for(lambda: watcher.state_of(run_id) == "succeeded", timeout=30)
    return watcher, run_id


def test_a_scrape_after_a_run_shows_its_counters(gunicorn: str) -> None:
    watcher, run_id = watched_run(gunicorn, "numbers", {"n": 300, "every": 100})
    try:
        wait_for(lambda: len(watcher.texts(run_id)) == 300)
        text = httpx.get(gunicorn + "/metrics", headers=BEARER).text
        assert value(text, "flask_realtime_runs_started_total", job="numbers") >= 1
        assert value(text, "flask_realtime_runs_finished_total", job="numbers",
                     state="succeeded") >= 1
        assert value(text, "flask_realtime_run_duration_seconds_count", job="numbers") >= 1
        assert value(text, "flask_realtime_lines_captured_total") >= 300
        assert value(text, "flask_realtime_lines_delivered_total") >= 300
        assert value(text, "flask_realtime_delivery_lag_seconds_count") >= 1
        assert value(text, "flask_realtime_store_call_seconds_count",
                     method="append_output") >= 1
        assert value(text, "flask_realtime_sockets") == 1
        assert value(text, "flask_realtime_watchers") == 1
    finally:
        watcher.close()


def test_without_the_token_the_answer_is_401(gunicorn: str) -> None:
    assert httpx.get(gunicorn + "/metrics").status_code == 401
    wrong = httpx.get(gunicorn + "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_are_off_unless_asked_for(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "s", "STORE": "memory"})
    assert app.test_client().get("/metrics", headers=BEARER).status_code == 404


def test_metrics_on_without_a_token_stop_the_start() -> None:
    with pytest.raises(ConfigError, match="METRICS_TOKEN is not set"):
        create_app({"TESTING": True, "SECRET_KEY": "s", "STORE": "memory", "METRICS": True})


@pytest.fixture
def app(simulator: Any, tmp_path: Any) -> Any:  # noqa: F811
    from flask_realtime.web.auth import configure_demo

    app = create_app({"TESTING": True, "SECRET_KEY": "s", "STORE": "memory",
                      "WEBEX_ENV_FILE": "", "METRICS": True, "METRICS_TOKEN": TOKEN,
                      "JOBS": "tests.jobs_for_tests"})
    configure_demo(app, simulator)
    return app


def test_no_label_names_a_user(live_server: LiveServer, simulator: Any,  # noqa: F811
                               browser: Callable[[], Browser]) -> None:  # noqa: F811
    from flask_realtime.webex.client import WebexAccess, static_token

    user = browser()
    user.login("user1")
    assert user.post("/api/runs", {"job": "numbers", "params": {"n": 10}}).status_code == 201

    async def me() -> None:  # a Webex request through the package's client
        async with WebexAccess(simulator.base_url, static_token(
                simulator.token_for("user1@example.com"))) as webex:
            await webex.me()

    asyncio.run(me())

    def scraped_after_the_run() -> str | None:
        text = httpx.get(live_server.url + "/metrics", headers=BEARER).text
        done = value(text, "flask_realtime_runs_finished_total", job="numbers",
                     state="succeeded")
        return text if done else None

    text = wait_for(scraped_after_the_run)
    assert value(text, "flask_realtime_webex_requests_total", status="200") >= 1
    labels = {name for family in text_string_to_metric_families(text)
              for s in family.samples for name in s.labels if s.name.startswith("flask_")}
    assert labels <= LABELS
    assert "user1" not in text and "example.com" not in text
