"""The README's code, run as written: its job example saved as myjobs.py in a folder of
its own, and its commands typed there, only ``.venv/bin/`` pointing at this checkout's
virtualenv. The environment gives each process a free port and an instance folder of
the test's own, nothing else."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import ROOT, free_port, wait_http

README = (ROOT / "README.md").read_text()
VENV_BIN = f"{Path(sys.executable).parent}/"


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[str]:
    """The block's commands, their trailing comments removed."""
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


A_JOB = README.split("\n## A job\n", 1)[1].split("\n## ", 1)[0]
(JOB_MODULE,) = blocks(A_JOB, "python")
(SHELL,) = blocks(A_JOB, "sh")
RUN, EXEC, JOBS = (next(c for c in commands(SHELL) if f"flask-realtime {word}" in c)
                   for word in ("run", "exec", "jobs"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder holding only myjobs.py, as the README has the reader write it."""
    assert JOB_MODULE.startswith("# myjobs.py\n")
    (tmp_path / "myjobs.py").write_text(JOB_MODULE)
    return tmp_path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    outside = ("SECRET_KEY", "REDIS_URL", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI", "SCOPE")
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("FLASK_REALTIME_") and k not in outside}
    return {**clean, "FLASK_REALTIME_INSTANCE_PATH": str(tmp_path / "instance"),
            "PYTHONUNBUFFERED": "1"}


def typed(command: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command.replace(".venv/bin/", VENV_BIN)], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=60)


def test_the_first_command_is_bootstrap_then_run() -> None:
    """CI runs the README's second command; this one's text must stay what it is."""
    first = commands(blocks(README, "sh")[0])
    assert first == ["scripts/bootstrap && .venv/bin/flask-realtime run"]


@pytest.fixture
def served(folder: Path, env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "-c", RUN.replace(".venv/bin/", VENV_BIN)],
                                cwd=folder, env={**env, "FLASK_REALTIME_PORT": str(port)},
                                stdout=out, stderr=out, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", timeout=60, proc=proc, log=log)
        yield url, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)


def test_run_offers_the_example_jobs(served: tuple[str, Path]) -> None:
    url, log = served
    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as browser:
        assert browser.get("/login").url.path == "/"  # demo mode: the simulator logs us in
        jobs = {j["name"]: j for j in browser.get("/api/jobs").json()["jobs"]}
    assert jobs["countdown"]["title"] == "Count down"  # the example's, not the built-in
    assert [p["choices"] for p in jobs["fetch_all"]["params"]] == [["fast", "safe"]]
    assert "Job 'countdown' from myjobs replaces the built-in job" in log.read_text()
    assert "State kept in " in log.read_text()  # where the README says to look


def test_exec_runs_a_job_on_the_terminal(folder: Path, env: dict[str, str]) -> None:
    done = typed(EXEC, folder, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3\n2\n1\n"  # the example's countdown, not the built-in one
    assert "[succeeded]" in done.stderr


def test_jobs_lists_what_is_offered(folder: Path, env: dict[str, str]) -> None:
    done = typed(JOBS, folder, env)
    assert done.returncode == 0, done.stderr
    assert "countdown(n=10, delay=1.0)" in done.stdout and "space_stats(" in done.stdout
    assert "fetch_all(mode='safe')" in done.stdout  # the example module was loaded
