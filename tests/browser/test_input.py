"""Typing into a run from the page (docs/ui.md, "Input"): the input line shows the
job's prompt while it waits, Enter sends the line, End input sends end-of-file, and
what was typed shows in the output as a line of its own (``***`` for a password)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import drawn_lines, start_job, wait_js, wait_state

pytestmark = pytest.mark.browser


def test_a_name_typed_into_the_job_that_asks_for_it_gets_the_greeting(
        open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "greet")
    page.wait_for_selector("#input-line:not([hidden])")
    assert page.text_content("#input-prompt") == "Your name: "
    assert page.evaluate("document.activeElement.id") == "input-text"
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Enter")
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.session.lines.text.includes('Hello, Ada Lovelace!')")
    assert drawn_lines(page)[:3] == ["Your name: ", "Ada Lovelace", "Hello, Ada Lovelace!"]
    assert page.eval_on_selector_all(
        "#output .line.stdin", "rows => rows.map(r => r.textContent)") == ["Ada Lovelace"]
    assert page.is_hidden("#input-line")  # the run no longer waits


def test_end_input_sends_end_of_file(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "greet")
    page.wait_for_selector("#input-line:not([hidden])")
    page.click("#input-eof")
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.session.lines.text.includes('No name given.')")
    assert page.is_hidden("#input-line")


def test_a_password_is_typed_hidden_and_shown_masked(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "ui_secret")
    page.wait_for_selector("#input-line:not([hidden])")
    assert page.get_attribute("#input-text", "type") == "password"
    assert page.text_content("#input-prompt") == "Password: "
    page.fill("#input-text", "hunter2")
    page.press("#input-text", "Enter")
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.session.lines.text.includes('7 characters')")
    lines = page.evaluate("window.flaskRealtime.session.lines.text.slice()")
    assert "***" in lines and not any("hunter2" in line for line in lines)
    assert "hunter2" not in page.content()


def test_a_refused_line_says_why_and_stays_in_the_field(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "greet")
    page.wait_for_selector("#input-line:not([hidden])")
    too_long = "x" * (16 * 1024 + 1)  # INPUT_MAX_BYTES
    page.fill("#input-text", too_long)
    page.press("#input-text", "Enter")
    wait_js(page, "document.getElementById('input-message').textContent"
                  ".includes('INPUT_MAX_BYTES')")
    assert page.input_value("#input-text") == too_long  # nothing typed is lost
    page.fill("#input-text", "Ada")
    page.press("#input-text", "Enter")
    wait_state(page, "succeeded")
