"""A console with login on, against the Webex simulator (demo mode), for the browser
tests that need the login page, the Log out button or a refused connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask

from flask_realtime.web.app import create_app
from flask_realtime.web.auth import configure_demo
from flask_realtime.webex.simulator import SimulatorConfig, start_simulator


@contextmanager
def simulator() -> Iterator[Any]:
    """A small simulated Webex: a few spaces, fast answers."""
    handle = start_simulator(SimulatorConfig(spaces=3, messages=30, latency_ms=1))
    try:
        yield handle
    finally:
        handle.stop()


def demo_app(app_config: dict[str, Any], simulator: Any) -> Flask:
    """The app with login required, logging in against ``simulator``."""
    app = create_app({**app_config, "WEBEX_ENV_FILE": ""})
    configure_demo(app, simulator)
    return app


def log_in(page: Any, url: str) -> Any:
    """Open the console at ``url`` through the login page; return the page, connected."""
    page.goto(url)
    page.click("#login-button")
    page.wait_for_selector("#conn.conn-connected")
    page.wait_for_selector("#job-select option", state="attached")
    return page
