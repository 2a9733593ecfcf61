"""space_stats's charts on its run's page (issue 20, item 7): in demo mode, with
matplotlib installed (the test extra), the run shows its bar chart of the largest
spaces and its timeline as pictures, and its table below them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_realtime.web.app import create_app
from flask_realtime.web.auth import configure_demo
from flask_realtime.webex.simulator import SimulatorConfig, start_simulator

from .conftest import ARTIFACTS
from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture
def simulator() -> Iterator[Any]:
    handle = start_simulator(SimulatorConfig(spaces=30, messages=3000))
    yield handle
    handle.stop()


@pytest.fixture
def app(app_config: dict[str, Any], simulator: Any, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({**app_config, "WEBEX_ENV_FILE": ""})
    configure_demo(app, simulator)
    return app


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
