"""axe-core on the login page and the console (issue 18): no serious or critical
violations, idle, running, with a result table, and in the dark theme."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from . import demo
from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

axe_sync = pytest.importorskip("axe_playwright_python.sync_playwright")


@pytest.fixture
def simulator() -> Iterator[Any]:
    with demo.simulator() as handle:
        yield handle


@pytest.fixture
def app(app_config: dict[str, Any], simulator: Any) -> Flask:
    return demo.demo_app(app_config, simulator)  # with login: the login page is checked too


def serious(page: Any) -> list[str]:
    """axe's serious and critical violations on the page as it is now, one line each."""
    results = axe_sync.Axe().run(page)  # evaluates axe.min.js (shipped in the package)
    found = []
    for v in results.response["violations"]:
        if v["impact"] not in ("serious", "critical"):
            continue
        for node in v["nodes"][:5]:
            why = "; ".join(check["message"] for check in node.get("any", []))
            found.append(f"{v['id']} ({v['impact']}) at {node['target']}: {why}")
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_login_page(page: Any, live_server: Any, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    page.goto(live_server.url)
    page.wait_for_selector("#login-button")
    assert serious(page) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_console_idle(page: Any, live_server: Any, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    demo.log_in(page, live_server.url)
    page.wait_for_selector("#runs-message:has-text('No runs yet')")
    assert serious(page) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_console_running(page: Any, live_server: Any, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    demo.log_in(page, live_server.url)
    start_job(page, "countdown", n=200, delay=0.1)
    wait_state(page, "running")
    wait_js(page, "window.flaskRealtime.session.lines.length >= 3")
    assert serious(page) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_console_with_a_result_table(page: Any, live_server: Any, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    demo.log_in(page, live_server.url)
    start_job(page, "ui_table", rows=5)
    wait_state(page, "succeeded")
    page.wait_for_selector("#result table")
    page.fill("#search", "row")  # highlighted matches too
    wait_js(page, "document.querySelectorAll('#output mark.hl').length > 0")
    assert serious(page) == []
