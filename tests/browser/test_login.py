"""Login in the browser (issue 4): log in with Webex (the simulator), run space_stats,
see its output, log out, and the page asks to log in again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_realtime.web.app import create_app
from flask_realtime.web.auth import configure_demo
from flask_realtime.webex.simulator import SimulatorConfig, start_simulator

from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture
def simulator() -> Iterator[Any]:
    handle = start_simulator(SimulatorConfig(spaces=12, messages=600, latency_ms=5))
    yield handle
    handle.stop()


@pytest.fixture
def app(app_config: dict[str, Any], simulator: Any, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({**app_config, "WEBEX_ENV_FILE": ""})
    configure_demo(app, simulator)
    return app


def test_login_run_space_stats_logout(page: Any, live_server: Any, simulator: Any) -> None:
    page.goto(live_server.url)
    assert page.is_visible("#login-button")
    assert "Demo mode" in page.text_content("body")
    page.click("#login-button")
    page.wait_for_selector("#conn.conn-connected")
    assert page.text_content(".user") == "user1@example.com"

    start_job(page, "space_stats")
    wait_state(page, "succeeded", timeout=30_000)
    truth = simulator.dataset.ground_truth("user1@example.com")
    wait_js(page, "window.flaskRealtime.session.lines.text.some("
                  "t => t.includes('spaces,') && t.includes('messages'))")
    page.wait_for_selector("#result table")
    assert page.locator("#result table tbody tr").count() == len(truth)

    page.click("#logout-button")
    page.wait_for_selector("#login-button")
    assert "You are logged out" in page.text_content("body")
    page.goto(live_server.url)  # the old session is gone for good
    assert page.is_visible("#login-button")
