"""Playwright fixtures: Debian's Chromium against the live server of tests/conftest.py.

Each test gets a fresh browser context (empty localStorage). Page errors and CSP
violations fail the test; a screenshot of every test's page is kept in
``test-artifacts/browser/`` (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_realtime.web.app import create_app
from flask_realtime.web.auth import configure_demo
from flask_realtime.webex.simulator import SimulatorConfig, SimulatorHandle, start_simulator

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an
    event loop running in the main thread while it is open, and later tests that call
    ``asyncio.run`` would fail."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "JOBS": "tests.browser.jobs_for_tests"}


@pytest.fixture
def app(app: Any) -> Any:
    """Serve the page from ``flask_realtime/web/`` if the app looks for it elsewhere."""
    web = Path(__file__).resolve().parents[2] / "src" / "flask_realtime" / "web"
    if not (Path(app.root_path) / app.template_folder / "index.html").exists():
        app.template_folder = str(web / "templates")
    if not (Path(app.static_folder) / "app.js").exists():
        app.static_folder = str(web / "static")
    return app


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The simulated Webex of :func:`demo_app`; a module overrides it for other data."""
    return SimulatorConfig()


@pytest.fixture
def simulator(sim_config: SimulatorConfig) -> Iterator[SimulatorHandle]:
    handle = start_simulator(sim_config)
    yield handle
    handle.stop()


@pytest.fixture
def demo_settings() -> dict[str, Any]:
    """Settings of :func:`demo_app` over ``app_config``; a module overrides it."""
    return {}


@pytest.fixture
def demo_app(app_config: dict[str, Any], demo_settings: dict[str, Any],
             simulator: SimulatorHandle, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The console with login on against ``simulator`` (demo mode), in an instance
    folder of the test's own: a module that needs it makes it its ``app``."""
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({**app_config, "WEBEX_ENV_FILE": "", **demo_settings})
    configure_demo(app, simulator)
    return app


class PageProblems:
    """Script errors, CSP violations and dialogs seen by a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []

    def on_console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and re.search(r"Content.Security.Policy|Refused to", text):
            self.errors.append(f"CSP: {text}")

    def on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Any, problems: PageProblems, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda exc: problems.errors.append(f"page error: {exc}"))
    page.on("console", problems.on_console)
    page.on("dialog", problems.on_dialog)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    finally:
        context.close()
    assert not problems.errors, problems.errors
    assert not problems.dialogs, problems.dialogs


@pytest.fixture
def open_page(page: Any, live_server: Any) -> Any:
    """``open_page(query="")``: the console loaded, jobs listed, socket connected."""

    def open_(query: str = "", fragment: str = "") -> Any:
        page.goto(f"{live_server.url}/{query}{fragment}")
        page.wait_for_selector("#conn.conn-connected")
        page.wait_for_selector("#job-select option", state="attached")
        return page

    return open_

