"""``flask-realtime exec space_stats`` from a terminal: demo mode starts a simulator and
acts as the demo user (or ``--user``); ``--token`` acts on the Webex it is given."""

from __future__ import annotations

import subprocess
import sys

from flask_realtime.webex.simulator import SimulatorHandle
from tests.processes import ROOT


def exec_job(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flask_realtime.cli", "exec", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_exec_space_stats_in_demo_mode_acts_as_the_demo_user() -> None:
    done = exec_job("space_stats", "concurrency=8")
    assert done.returncode == 0, done.stderr
    assert "Demo mode: Webex is simulated at" in done.stderr
    assert "acting as user1@example.com" in done.stderr
    assert "[succeeded]" in done.stderr
    assert " spaces, " in done.stdout and " messages" in done.stdout


def test_exec_space_stats_takes_another_demo_user() -> None:
    done = exec_job("space_stats", "--user", "user2")
    assert done.returncode == 0, done.stderr
    assert "acting as user2@example.com" in done.stderr
    assert exec_job("space_stats", "--user", "nobody").returncode == 2


def test_exec_space_stats_with_a_token_uses_that_webex(sim: SimulatorHandle) -> None:
    truth = sim.dataset.ground_truth("user2@example.com")
    done = exec_job("space_stats", "--token", sim.token_for("user2@example.com"),
                    "--webex-url", sim.base_url)
    assert done.returncode == 0, done.stderr
    assert "Demo mode" not in done.stderr
    total = sum(r["messages"] for r in truth)
    assert f"{len(truth)} spaces, {total} messages" in done.stdout
