"""Moving between runs with the browser's history, and losing the server (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import start_server

from . import demo
from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

SHOWN = "window.flaskRealtime.session && window.flaskRealtime.session.runId"


def test_back_and_forward_move_between_runs(open_page: Any, page: Any) -> None:
    open_page()
    first = start_job(page, "ui_numbers", n=2)
    wait_state(page, "succeeded")
    second = start_job(page, "ui_numbers", n=3)
    wait_state(page, "succeeded")
    page.click(f"#runs-body tr[data-run-id='{first}'] button.link")
    wait_js(page, f"{SHOWN} === {first!r}")

    page.go_back()
    wait_js(page, f"{SHOWN} === {second!r}")
    page.go_back()
    wait_js(page, f"{SHOWN} === {first!r}")
    assert page.evaluate("location.hash") == f"#run={first}"
    page.go_back()  # before the first run was opened: the console with no run
    wait_js(page, "window.flaskRealtime.session === null")
    assert page.is_visible("#output-empty")
    assert page.text_content("#run-title") == "Output"
    page.go_forward()
    wait_js(page, f"{SHOWN} === {first!r}")
    page.go_forward()
    wait_js(page, f"{SHOWN} === {second!r}")
    wait_js(page, "window.flaskRealtime.session.lines.length === 3")
    wait_state(page, "succeeded")


def test_changing_the_fragment_opens_that_run(open_page: Any, page: Any) -> None:
    open_page()
    first = start_job(page, "ui_numbers", n=2)
    wait_state(page, "succeeded")
    start_job(page, "ui_numbers", n=3)
    wait_state(page, "succeeded")
    page.evaluate(f"location.hash = '#run={first}'")
    wait_js(page, f"{SHOWN} === {first!r}")
    wait_js(page, "window.flaskRealtime.session.lines.text.join() === '1,2'")
    assert page.locator("#runs-body tr.current").get_attribute("data-run-id") == first


@pytest.fixture
def own_server(app: Any) -> Iterator[Any]:
    """A server this test may stop (stopping twice is harmless): the page must cope with
    it going away."""
    server = start_server(app)
    yield server
    server.stop()


def test_while_disconnected_the_shown_run_state_is_unknown(page: Any, own_server: Any) -> None:
    page.goto(own_server.url)
    page.wait_for_selector("#conn.conn-connected")
    start_job(page, "countdown", n=600, delay=0.05)
    wait_state(page, "running")
    own_server.stop()
    page.evaluate("window.flaskRealtime.socket.io.engine.close()")  # the open socket dies too
    page.wait_for_selector("#conn:not(.conn-connected)")
    page.wait_for_selector("#run-state .state-unknown")
    assert page.locator("#run-state .state-running").count() == 0
    assert "stale" in page.get_attribute("#output-panel", "class")
    times = page.text_content("#run-times")
    page.wait_for_timeout(1500)  # a running duration would have ticked in this time
    assert page.text_content("#run-times") == times


@pytest.fixture
def simulator() -> Iterator[Any]:
    with demo.simulator() as handle:
        yield handle


def test_a_refused_connection_says_its_sentence_once(
        page: Any, app_config: dict[str, Any], simulator: Any) -> None:
    server = start_server(demo.demo_app(app_config, simulator))
    try:
        demo.log_in(page, server.url)
        page.context.clear_cookies()  # logged out, as after a restart with a new secret
        page.evaluate("window.flaskRealtime.socket.io.engine.close()")
        page.wait_for_selector("#conn.conn-disconnected")
        banner = page.text_content("#conn-message")
        assert page.is_visible("#conn-message")
        assert banner == "You are not logged in: reload the page and log in."
        assert banner.lower().count("reload") == 1
    finally:
        server.stop()
