"""Re-run and Edit and run (issue 18): a finished run started again, or its values in the form."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

SHOWN = "window.flaskRealtime.session && window.flaskRealtime.session.runId"


def test_rerun_starts_the_same_job_with_the_same_params(open_page: Any, page: Any) -> None:
    open_page()
    first = start_job(page, "ui_numbers", n=3)
    wait_state(page, "succeeded")
    page.fill("#param-n", "50")  # the form changed since: Re-run takes the run's values
    page.click("#rerun-btn")
    wait_js(page, f"{SHOWN} && {SHOWN} !== {first!r}")
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.session.lastSeq === 3")
    assert page.text_content("#run-params") == "n=3, delay=0"
    assert page.locator("#runs-body tr").count() == 2


def test_rerun_is_offered_only_once_a_run_has_finished(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "ui_numbers", n=1000, delay=0.05)
    wait_state(page, "running")
    assert page.is_hidden("#rerun-btn") and page.is_visible("#edit-run-btn")
    page.click("#stop-btn")
    wait_state(page, "stopped")
    assert page.is_visible("#rerun-btn")


def test_edit_and_run_fills_the_form_with_the_runs_values(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "ui_numbers", n=7)
    wait_state(page, "succeeded")
    page.select_option("#job-select", "ui_words")
    page.click("#edit-run-btn")
    assert page.input_value("#job-select") == "ui_numbers"
    assert page.input_value("#param-n") == "7"
    assert page.evaluate("document.activeElement.id") == "param-n"
    page.fill("#param-n", "4")
    page.click("#start-btn")
    wait_js(page, "window.flaskRealtime.session.lastSeq === 4")
    assert page.text_content("#run-params") == "n=4, delay=0"
