"""The page as a user drives it: start, stop, the form, the run list, old runs."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import drawn_lines, held_lines, start_job, wait_js, wait_py, wait_state

pytestmark = pytest.mark.browser


def test_start_countdown_see_lines_and_stop_with_escape(open_page: Any) -> None:
    page = open_page()
    page.select_option("#job-select", "countdown")
    page.fill("#param-n", "40")
    page.fill("#param-delay", "0.1")
    page.keyboard.press("Control+Enter")
    wait_js(page, "window.flaskRealtime.session !== null")
    wait_js(
        page, "window.flaskRealtime.session.lines.text.includes('37')")  # lines arrive live
    wait_state(page, "running")
    assert held_lines(page)[:3] == ["40", "39", "38"]
    page.locator("#output").focus()
    page.keyboard.press("Escape")
    wait_state(page, "stopped")
    assert "stopped" in page.text_content("#announcer")
    assert page.is_disabled("#stop-btn")
    row = page.locator("#runs-body tr.current")
    assert "stopped" in row.text_content()
    assert "n=40" in row.text_content()


def test_stopping_a_long_run_asks_first(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "countdown", n=100, delay=0.2)
    wait_state(page, "running")
    page.evaluate("() => { const real = Date.now; Date.now = () => real() + 15_000; }")
    page.keyboard.press("Escape")
    page.wait_for_selector("#stop-dialog[open]")
    page.click("#stop-dialog button[value=cancel]")
    assert page.locator("#run-state .state-running").count() == 1
    page.click("#stop-btn")
    page.click("#stop-dialog button[value=stop]")
    wait_state(page, "stopped")


def test_server_errors_show_next_to_fields(open_page: Any, page: Any) -> None:
    open_page()
    page.select_option("#job-select", "ui_hostile")
    page.fill("#param-note", "x" * 10_001)  # the server allows at most 10,000 characters
    page.click("#start-btn")
    page.wait_for_selector("#param-note-error:has-text('at most 10000 characters')")
    assert page.get_attribute("#param-note", "aria-invalid") == "true"
    assert page.is_enabled("#start-btn")
    assert page.evaluate("window.flaskRealtime.session") is None


def test_form_checks_values_and_remembers_them(open_page: Any, page: Any) -> None:
    open_page()
    page.select_option("#job-select", "countdown")
    page.fill("#param-n", "-5")
    page.click("#start-btn")
    assert page.text_content("#param-n-error") == "Must be at least 0."
    assert page.get_attribute("#param-n", "aria-invalid") == "true"
    assert page.evaluate("window.flaskRealtime.session") is None  # nothing started
    page.fill("#param-n", "2")
    page.fill("#param-delay", "0")
    page.click("#start-btn")
    wait_state(page, "succeeded")
    page.reload()
    page.wait_for_selector("#param-n")
    assert page.input_value("#job-select") == "countdown"
    assert page.input_value("#param-n") == "2"
    assert page.input_value("#param-delay") == "0"


def test_history_filter_and_old_run_with_result_table(open_page: Any, page: Any) -> None:
    open_page()
    table_run = start_job(page, "ui_table", rows=3)
    wait_state(page, "succeeded")
    start_job(page, "ui_numbers", n=5)
    wait_state(page, "succeeded")
    page.wait_for_selector("#runs-body tr >> nth=1")

    page.select_option("#filter-job", "ui_table")
    wait_js(page, "document.querySelectorAll('#runs-body tr').length === 1")
    assert "rows=3" in page.text_content("#runs-body")
    page.select_option("#filter-state", "failed")
    page.wait_for_selector("#runs-message:has-text('No runs match')")
    page.select_option("#filter-state", "succeeded")
    wait_js(page, "document.querySelectorAll('#runs-body tr').length === 1")

    page.click("#runs-body tr button.link")
    wait_js(page, f"window.flaskRealtime.session.runId === {table_run!r}")
    wait_js(page, "window.flaskRealtime.session.lines.length === 3")
    assert drawn_lines(page) == ["row 0", "row 1", "row 2"]
    page.wait_for_selector("#result table")
    headers = page.eval_on_selector_all("#result th", "ths => ths.map(t => t.textContent)")
    cells = page.eval_on_selector_all(
        "#result tbody tr", "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))")
    rows = [dict(zip(headers, row, strict=True)) for row in cells]
    assert rows == [
        {"name": "row 0", "value": "0", "ok": "true"},
        {"name": "row 1", "value": "1", "ok": "false"},
        {"name": "row 2", "value": "4", "ok": "true"},
    ]
    assert page.get_attribute("#download-link", "href") == f"/api/runs/{table_run}/log"


def test_a_run_started_while_the_list_loads_stays_listed(open_page: Any, page: Any) -> None:
    """The run list's answer can predate a run started just after the list was read (a
    reconnect reloads the list while a start is on its way): the run stays listed."""
    open_page()
    held: list[tuple[Any, Any]] = []
    page.route("**/api/runs?*", lambda route: held.append((route, route.fetch())))
    page.select_option("#filter-job", "ui_numbers")  # the list is read again, now
    wait_py(page, lambda: bool(held))
    run_id = start_job(page, "ui_numbers", n=3)
    wait_state(page, "succeeded")
    route, stale = held[0]
    route.fulfill(response=stale)  # the answer read before the run existed
    wait_js(page, "window.flaskRealtime.runList.pushed === null")
    assert page.eval_on_selector_all(
        "#runs-body tr", "trs => trs.map(tr => tr.dataset.runId)") == [run_id]


def test_demo_banner_shows_in_demo_mode(open_page: Any, page: Any, live_server: Any) -> None:
    open_page()
    assert page.is_hidden("#demo-banner")
    live_server.app.config["DEMO_MODE"] = True
    open_page()
    assert page.is_visible("#demo-banner")
