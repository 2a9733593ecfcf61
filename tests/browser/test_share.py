"""Share a run read-only (issue 18): the owner makes a link; another logged-in demo user
opens it in their own browser and sees the output live, with no Stop or Re-run."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from .conftest import ARTIFACTS
from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

SHOWN_LINES = "window.flaskRealtime.session && window.flaskRealtime.session.lastSeq"


@pytest.fixture
def app(demo_app: Flask) -> Flask:
    return demo_app


def _log_in(page: Any, url: str, user: str) -> None:
    page.goto(f"{url}/login?login_hint={user}")
    page.wait_for_selector("#conn.conn-connected")


def test_another_user_opens_the_link_and_watches_read_only(
        page: Any, browser: Any, live_server: Any) -> None:
    _log_in(page, live_server.url, "user1")
    page.wait_for_selector("#job-select option", state="attached")
    start_job(page, "ui_numbers", n=100_000, delay=0.02)
    wait_state(page, "running")
    page.click("#share-btn")
    page.wait_for_selector("#share-new:not([hidden])")
    url = page.input_value("#share-url")
    assert "#share=" in url and "Expires" in page.text_content("#share-expiry")
    assert page.locator("#share-list li button", has_text="Revoke").count() == 1

    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        viewer = other.new_page()
        _log_in(viewer, live_server.url, "user2")
        viewer.goto(url)
        viewer.wait_for_selector("#share-banner:not([hidden])")
        assert re.fullmatch(r"Shared by user1@example\.com — read-only",
                            viewer.text_content("#share-banner"))
        seen = wait_js(viewer, SHOWN_LINES)
        wait_js(viewer, f"{SHOWN_LINES} > {seen}")  # live: new lines keep coming
        for button in ("#stop-btn", "#rerun-btn", "#edit-run-btn", "#share-btn"):
            assert viewer.is_hidden(button), button
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(path=str(ARTIFACTS / "shared_view.png"))

        page.click("#share-list li button")  # Revoke
        page.wait_for_selector("#share-list:empty", state="attached")
        viewer.reload()
        viewer.wait_for_selector("#run-error:not([hidden])")
        assert "expired or was revoked" in viewer.text_content("#run-error")
    finally:
        other.close()
    page.click("#stop-btn")
    if page.is_visible("#stop-dialog"):  # a run this old asks first
        page.click("#stop-dialog button[value=stop]")
    wait_state(page, "stopped")
