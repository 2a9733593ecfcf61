"""A restart of ``flask-realtime run`` under an open page (issue 15): on the SQLite
store, the same page (its cookie, no new login) shows both runs afterwards, the one
that finished and the one the restart interrupted, each with its whole output."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_realtime.store.sqlite import INTERRUPTED
from tests.processes import ROOT, WebProcess

from .conftest import ARTIFACTS
from .helpers import held_lines, start_job, wait_js, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebProcess]:
    """The README's first command: demo mode (login against the built-in Webex
    simulator), the SQLite store in an instance folder of the test's own."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SECRET_KEY")}
    env.update({"PYTHONPATH": str(ROOT), "FLASK_REALTIME_INSTANCE_PATH": str(tmp_path / "i"),
                "FLASK_REALTIME_WEBEX_ENV_FILE": '""',
                "FLASK_REALTIME_JOBS": "tests.jobs_for_tests"})
    process = WebProcess(env, tmp_path / "web.log", demo=True).start()
    yield process
    process.kill(signal.SIGTERM)


def open_run(page: Any, run_id: str) -> None:
    page.click(f"#runs-body tr[data-run-id='{run_id}'] button.link")
    wait_js(page, f"window.flaskRealtime.session.runId === {run_id!r}")


def test_both_runs_survive_a_restart_under_the_same_page_without_a_new_login(
        page: Any, web: WebProcess) -> None:
    page.goto(web.url)
    page.click("#login-button")  # demo mode: the simulator logs in at once
    page.wait_for_selector("#conn.conn-connected")
    page.wait_for_selector("#job-select option", state="attached")
    user = page.text_content(".user")

    done = start_job(page, "numbers", n=300, every=100, pause=0)
    wait_state(page, "succeeded")
    going = start_job(page, "numbers", n=1_000_000, every=100, pause=0.05)
    wait_js(page, "window.flaskRealtime.session.lines.length >= 500")
    web.kill()  # the process dies mid-run (kill -9: no goodbye)
    page.wait_for_selector("#conn:not(.conn-connected)")
    web.start()  # same port, same instance folder

    page.wait_for_selector("#conn.conn-connected", timeout=30_000)  # it came back by itself
    assert page.text_content(".user") == user and not page.is_visible("#login-button")
    page.wait_for_selector(f"#runs-body tr[data-run-id='{going}'] .state-failed")
    page.wait_for_selector(f"#runs-body tr[data-run-id='{done}'] .state-succeeded")

    open_run(page, done)
    wait_js(page, "window.flaskRealtime.session.lines.length === 300")
    assert held_lines(page) == [str(i) for i in range(1, 301)]

    open_run(page, going)
    wait_state(page, "failed")
    wait_js(page, f"window.flaskRealtime.session.lines.text.includes({INTERRUPTED!r})")
    lines = held_lines(page)
    assert lines[-1] == INTERRUPTED
    assert lines[:-1] == [str(i) for i in range(1, len(lines))]  # from 1, no gap
    assert len(lines) > 500
    assert INTERRUPTED in page.text_content("#run-error")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "restart_interrupted_run.png"))
