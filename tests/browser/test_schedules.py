"""The Schedules view (static/schedules.js): a schedule made in the page shows its next five
times before it is saved, its runs appear in the run list marked with its name, and
Pause stops them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .helpers import wait_js

pytestmark = pytest.mark.browser

SCHEDULED_ROWS = "#runs-body tr:has(.run-schedule)"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "SCHEDULE_MIN_INTERVAL_SECONDS": 1, "SCHEDULE_TICK_SECONDS": 0.1}


def test_a_schedule_made_in_the_page_runs_and_pauses(open_page: Any, page: Any,
                                                     app: Any) -> None:
    open_page()
    page.select_option("#job-select", "ui_numbers")
    page.fill("#param-n", "2")
    page.click("#schedule-new")
    page.fill("#schedule-name", "twice a second")
    page.fill("#schedule-cron", "61 * * * *")
    page.wait_for_selector("#schedule-message:has-text('is not valid (bad minute)')")
    assert page.locator("#schedule-fires li").count() == 0
    page.check('input[name="schedule-kind"][value="interval"]')
    page.fill("#schedule-interval", "1")
    page.wait_for_selector("#schedule-fires li >> nth=4")
    assert page.is_hidden("#schedule-message")
    assert page.locator("#schedule-list li").count() == 0  # nothing saved by the preview
    page.click("#schedule-save")
    item = page.locator("#schedule-list li.schedule-item")
    item.wait_for()
    assert "every 1 s" in item.text_content()
    page.wait_for_selector(f"{SCHEDULED_ROWS} >> nth=1")  # two runs came, on their own
    assert "Scheduled: twice a second" in page.locator(SCHEDULED_ROWS).first.text_content()
    page.wait_for_selector("#schedule-list .schedule-last .badge")  # its last run's state
    item.locator("button", has_text="Pause").click()
    page.wait_for_selector("#schedule-list .schedule-item:has-text('paused')")
    wait_js(page, "[...window.flaskRealtime.runList.runs].every("
                  "r => ['succeeded', 'failed', 'stopped'].includes(r.state))")
    paused_at = page.locator(SCHEDULED_ROWS).count()
    page.reload()  # what the server kept, not what the page remembers
    page.wait_for_selector("#schedule-list .schedule-item:has-text('paused')")
    page.wait_for_selector("#schedule-list button:has-text('Resume')")
    # Paused: rounds of the scheduler a few intervals later start nothing.
    scheduler = app.extensions["flask_realtime"].system.scheduler
    for ahead in (2, 4, 6):
        scheduler.tick(now=time.time() + ahead)
    assert len([r for r in app.extensions["flask_realtime"].store.list_runs()
                if r.schedule_id]) == paused_at
    page.reload()
    page.wait_for_selector("#schedule-list .schedule-item:has-text('paused')")
    assert page.locator(SCHEDULED_ROWS).count() == paused_at


def test_a_schedule_that_paused_itself_shows_a_banner_until_resumed(
        open_page: Any, page: Any, app: Any) -> None:
    scheduler = app.extensions["flask_realtime"].system.scheduler
    logged_out = {"yes": True}
    scheduler.login_checks.append(lambda user, spec: (
        "your Webex login has expired or you logged out, and this job needs it."
        if logged_out["yes"] else None))
    open_page()
    page.select_option("#job-select", "ui_numbers")
    page.fill("#param-n", "1")
    page.click("#schedule-new")
    page.fill("#schedule-name", "<b>needs a login</b>")
    page.check('input[name="schedule-kind"][value="interval"]')
    page.fill("#schedule-interval", "1")
    page.wait_for_selector("#schedule-fires li >> nth=4")
    page.click("#schedule-save")
    banner = page.locator("#schedule-banner")
    banner.wait_for()
    assert "Schedule <b>needs a login</b>: Paused: the run due at" in banner.text_content()
    assert "Log in again, then resume the schedule." in banner.text_content()
    assert page.locator("#schedule-banner b").count() == 0  # text, never HTML
    assert page.locator(SCHEDULED_ROWS).count() == 0
    logged_out["yes"] = False
    page.locator("#schedule-list button", has_text="Resume").click()
    banner.wait_for(state="hidden")
    page.wait_for_selector(SCHEDULED_ROWS)


def test_the_schedules_panel_has_no_serious_accessibility_problem(
        open_page: Any, page: Any) -> None:
    from .test_a11y import serious

    open_page()
    page.select_option("#job-select", "ui_numbers")
    page.click("#schedule-new")
    page.fill("#schedule-name", "nightly")
    page.fill("#schedule-cron", "30 2 * * *")
    page.wait_for_selector("#schedule-fires li >> nth=4")
    page.click("#schedule-save")
    page.wait_for_selector("#schedule-list li.schedule-item")
    page.click("#schedule-new")
    page.fill("#schedule-cron", "nonsense")
    page.wait_for_selector("#schedule-message:not([hidden])")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert serious(page) == [], scheme
