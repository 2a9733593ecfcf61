"""space_stats's charts on its run's page (issue 20, item 7): in demo mode, with
matplotlib installed (the test extra), the run shows its bar chart of the largest
spaces and its timeline as pictures, and its table below them."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_realtime.webex.simulator import SimulatorConfig

from .conftest import ARTIFACTS
from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(spaces=30, messages=3000)


@pytest.fixture
def app(demo_app: Flask) -> Flask:
    return demo_app


def test_space_stats_shows_its_charts_above_its_table(page: Any, live_server: Any) -> None:
    pytest.importorskip("matplotlib")
    page.goto(f"{live_server.url}/login?login_hint=user1")
    page.wait_for_selector("#conn.conn-connected")
    page.wait_for_selector("#job-select option", state="attached")
    start_job(page, "space_stats")
    wait_state(page, "succeeded", timeout=60_000)
    page.wait_for_selector("#files-pictures img[alt='messages-per-space.png']")
    page.wait_for_selector("#files-pictures img[alt='activity.png']")
    wait_js(page, "[...document.querySelectorAll('#files-pictures img')]"
                  ".every(i => i.complete && i.naturalWidth > 600)")
    page.wait_for_selector("#result-body table")
    assert page.locator("#result-body tbody tr").count() >= 20
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#files").screenshot(path=str(ARTIFACTS / "space_stats_charts.png"))
