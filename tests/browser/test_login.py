"""Login in the browser (issue 4): log in with Webex (the simulator), run space_stats,
see its output, log out, and the page asks to log in again."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_realtime.webex.simulator import SimulatorConfig

from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(spaces=12, messages=600, latency_ms=5)


@pytest.fixture
def app(demo_app: Flask) -> Flask:
    return demo_app


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
