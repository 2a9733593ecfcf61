"""The flask-realtime command, as a user types it: list jobs, run one in the terminal, serve."""

from __future__ import annotations

import json
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
    assert done.stdout == "3\n2\n1\nLiftoff!\n0\n"  # the output, then the result
    assert "[succeeded] Result:" in done.stderr


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


# Startup errors: one sentence on stderr, exit status 2, no traceback, for every command.

FLASK_REALTIME = str(Path(sys.executable).parent / "flask-realtime")  # the console script

COMMANDS = [["run", "--no-demo", "--port", "0"], ["jobs"], ["exec", "countdown"], ["worker"]]


def one_sentence(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ")
    return done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_bad_setting_stops_every_command_with_a_sentence(env: dict[str, str],
                                                           command: list[str]) -> None:
    env["FLASK_REALTIME_RETENTION_LINES"] = "abc"
    assert "FLASK_REALTIME_RETENTION_LINES is 'abc', but it must be a whole number" in (
        one_sentence(cli(env, *command)))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_bad_job_module_stops_every_command_with_a_sentence(env: dict[str, str],
                                                              command: list[str]) -> None:
    env["FLASK_REALTIME_JOBS"] = "no_such_module"
    assert "Could not import job module 'no_such_module'" in one_sentence(cli(env, *command))


def test_a_job_module_that_raises_names_its_line(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import time\n\n1 / 0\n")
    env["FLASK_REALTIME_JOBS"] = str(tmp_path / "broken.py")
    assert "broken.py, line 3): ZeroDivisionError" in one_sentence(cli(env, "jobs"))


def test_two_jobs_with_one_name_stop_the_start_with_a_sentence(env: dict[str, str],
                                                                tmp_path: Path) -> None:
    (tmp_path / "twice.py").write_text(
        "from flask_realtime import Running, job\n"
        "@job(name='same')\ndef one(running: Running) -> None: ...\n"
        "@job(name='same')\ndef two(running: Running) -> None: ...\n")
    env["FLASK_REALTIME_JOBS"] = str(tmp_path / "twice.py")
    assert "two jobs are named 'same'" in one_sentence(cli(env, "jobs"))


def test_a_store_that_cannot_open_stops_the_start_with_a_sentence(env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "flask-realtime.sqlite3").write_text("not a database" * 100)
    assert "not a Flask-Realtime database" in one_sentence(
        cli(env, "run", "--no-demo", "--port", "0"))


def test_a_worker_without_redis_stops_with_a_sentence(env: dict[str, str]) -> None:
    env.pop("REDIS_URL", None)
    assert "Set REDIS_URL" in one_sentence(cli(env, "worker"))


@pytest.mark.parametrize("how", ["--debug", "FLASK_REALTIME_DEBUG"])
def test_debug_shows_the_traceback(env: dict[str, str], how: str) -> None:
    env["FLASK_REALTIME_RETENTION_LINES"] = "abc"
    if how == "FLASK_REALTIME_DEBUG":
        env[how] = "1"
    done = cli(env, *(["--debug"] if how == "--debug" else []), "jobs")
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "ConfigError: FLASK_REALTIME_RETENTION" in done.stderr


# The first job a newcomer writes (README.md, "A job"): a module beside them, loaded by
# name or by path through the console script, which puts no folder on the import path.

MY_JOBS = """
from flask_realtime import Running, job

@job
def countdown(running: Running) -> list[dict]:
    return [{"name": "a", "size": 1}, {"name": "longer name", "size": 22, "note": None},
            {"name": "名前", "size": 3, "note": {"k": 1}}]
"""


def console(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLASK_REALTIME, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("jobs", ["myjobs", "./myjobs.py"])
def test_a_job_module_in_the_working_directory_is_loaded(env: dict[str, str], tmp_path: Path,
                                                         jobs: str) -> None:
    (tmp_path / "myjobs.py").write_text(MY_JOBS)
    env["FLASK_REALTIME_JOBS"] = jobs
    done = console(env, tmp_path, "exec", "countdown")
    assert done.returncode == 0, done.stderr
    assert "Job 'countdown' from myjobs replaces the built-in job" in done.stderr


def test_exec_prints_a_table_result_as_aligned_text(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    (tmp_path / "myjobs.py").write_text(MY_JOBS)
    env["FLASK_REALTIME_JOBS"] = "myjobs"
    assert console(env, tmp_path, "exec", "countdown").stdout == (
        "name         size  note\n"
        "-----------  ----  --------\n"
        "a            1\n"
        "longer name  22\n"
        "名前         3     {\"k\": 1}\n")  # display width: 名前 takes 4 columns


def test_exec_json_prints_the_run_record_with_its_result(env: dict[str, str]) -> None:
    done = cli(env, "exec", "--json", "countdown", "n=2", "delay=0")
    record = json.loads(done.stdout)  # the job's output went to stderr
    assert (record["job"], record["state"], record["result"]) == ("countdown", "succeeded", 0)
    assert record["params"] == {"n": 2, "delay": 0.0} and record["lines"] == 3
    assert "Liftoff!" in done.stderr


def test_exec_of_an_unknown_job_points_to_the_jobs_command(env: dict[str, str]) -> None:
    done = cli(env, "exec", "nope")
    assert done.returncode == 2
    assert "There is no job named 'nope': `flask-realtime jobs` lists the jobs." in done.stderr
