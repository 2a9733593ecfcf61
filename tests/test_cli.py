"""The flask-realtime command, as a user types it: list jobs, run one in the terminal, serve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import WebProcess


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "FLASK_REALTIME_INSTANCE_PATH": str(tmp_path / "instance"),
            "FLASK_REALTIME_WEBEX_ENV_FILE": '""', "PYTHONUNBUFFERED": "1"}


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flask_realtime.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_jobs_lists_the_built_in_jobs_with_their_parameters(env: dict[str, str]) -> None:
    out = cli(env, "jobs").stdout
    assert "countdown(n=10, delay=1.0)" in out and "flood(" in out


def test_exec_runs_a_job_on_the_terminal(env: dict[str, str]) -> None:
    done = cli(env, "exec", "countdown", "n=3", "delay=0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3\n2\n1\nLiftoff!\n"
    assert "[succeeded]" in done.stderr


def test_exec_refuses_bad_parameters_before_running(env: dict[str, str]) -> None:
    done = cli(env, "exec", "countdown", "n=many")
    assert done.returncode == 2 and done.stdout == ""
    assert "error: n" in done.stderr


def test_exec_shows_a_failing_jobs_traceback(env: dict[str, str]) -> None:
    done = cli(env, "exec", "fail")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "[failed]" in done.stderr


def test_ctrl_c_stops_the_job(env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask_realtime.cli", "exec", "countdown", "n=1000",
         "delay=0.02"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "1000\n"  # it is running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "[stopped]" in err and "Liftoff!" not in out


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    process = WebProcess(env, tmp_path / "run.log", demo=True)
    yield process.start().url
    process.kill(signal.SIGTERM)


def test_run_serves_the_console_in_demo_mode(served: str) -> None:
    """The README's first command: no Webex integration, so a simulator stands in."""
    assert httpx.get(f"{served}/healthz").json()["status"] == "ok"
    page = httpx.get(served)
    assert page.status_code == 200 and 'id="login-button"' in page.text
    assert "Demo mode" in page.text
    with httpx.Client(base_url=served, follow_redirects=True) as browser:
        assert browser.get("/login").url.path == "/"  # the simulator approved the login
        console = browser.get("/").text
        assert 'data-user="user1@example.com"' in console and "logout-button" in console
        jobs = {j["name"] for j in browser.get("/api/jobs").json()["jobs"]}
        assert {"space_stats", "countdown"} <= jobs
