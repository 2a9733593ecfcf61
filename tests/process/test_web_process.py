"""Through the web tier: a watcher sees what a process job's shell command printed."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from tests.conftest import Watcher, wait_for


@pytest.fixture
def app_config(tmp_path: Any) -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "STOP_GRACE_SECONDS": 0.5,
            "JOBS": "tests.process.jobs_for_process", "ISOLATION": "process"}


def test_a_watcher_sees_os_system_output_of_a_process_job(
        connect: Callable[..., Watcher]) -> None:
    w = connect()
    run_id = w.call("start", {"job": "default_isolation"})["run_id"]
    wait_for(lambda: w.state_of(run_id) == "succeeded")
    wait_for(lambda: w.texts(run_id) == ["from the shell"])
    assert w.errors == []


def test_the_http_api_gives_a_process_jobs_result(
        connect: Callable[..., Watcher], app: Flask) -> None:
    w = connect()
    run_id = w.call("start", {"job": "default_isolation"})["run_id"]
    wait_for(lambda: w.state_of(run_id) == "succeeded")
    run = app.test_client().get(f"/api/runs/{run_id}").get_json()
    assert run["state"] == "succeeded"
    assert isinstance(run["result"], int) and run["result"] != os.getpid()
