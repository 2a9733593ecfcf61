"""How output is shown: as text only, in colour, windowed, searchable."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .helpers import dom_nodes, drawn_lines, held_lines, next_frame, start_job, wait_js, wait_state

pytestmark = pytest.mark.browser


def test_hostile_output_and_titles_render_as_text(open_page: Any, page: Any) -> None:
    page = open_page()
    page.evaluate("window.__pwned = 0")
    start_job(page, "ui_hostile")
    wait_state(page, "succeeded")
    page.wait_for_selector("#result:not([hidden])")
    lines = drawn_lines(page)
    assert lines[0] == '<img src=x onerror="window.__pwned=1;alert(1)">'
    assert lines[1] == "click me (osc-8 link)"  # the OSC-8 link: its text, not a link
    assert lines[2] == "</script><script>window.__pwned=3;alert(3)</script>"
    assert lines[3] == "<b>bold?</b> &amp; &lt;not an entity&gt;"
    assert lines[4] == "<img src=x onerror=alert(5)>"
    title = "<b>x</b><script>window.__pwned=4;alert(4)</script>"
    assert page.text_content("#run-title") == title
    assert title in page.text_content("#runs-body")
    assert page.text_content("#result-body") == '"<img src=x onerror=alert(6)>"'
    page.wait_for_timeout(300)  # give an injected onerror handler time to fire
    assert page.evaluate("window.__pwned") == 0
    for selector in ("img", "script", "a:not(#download-link)", "b"):
        assert page.locator(f"main {selector}").count() == 0, selector
    # The fixture also fails the test on any dialog (alert) or CSP violation.


def test_ansi_styles_become_classes_and_carriage_return_overwrites(
    open_page: Any, page: Any,
) -> None:
    page = open_page()
    start_job(page, "ui_colours", steps=30)
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.session.lines.text.includes('after progress')")
    assert drawn_lines(page) == [
        "red plain bold green",
        "orange256 truecolor",
        "under italic inverse",
        "cleared? cursor moved",
        "progress 30/30",  # thirty \r updates, one line
        "after progress",
    ]
    spans = page.eval_on_selector_all(
        "#output .line span",
        "ss => ss.map(s => [s.textContent, s.className, s.style.color])")
    assert ["red", "a-fg1", ""] in spans
    assert ["bold green", "a-fg2 a-b", ""] in spans
    assert ["orange256", "", "rgb(255, 135, 0)"] in spans
    assert ["truecolor", "", "rgb(10, 20, 30)"] in spans
    assert ["under", "a-u", ""] in spans
    assert ["italic", "a-i", ""] in spans
    assert ["inverse", "a-ifg a-ibg", ""] in spans
    colour = page.eval_on_selector(
        "#output .a-fg1", "s => getComputedStyle(s).color")
    assert colour not in ("", "rgb(0, 0, 0)")

    page.check("#show-times")
    next_frame(page)
    stamps = page.eval_on_selector_all("#output .ts", "ts => ts.map(t => t.textContent)")
    assert len(stamps) == 6
    assert all(len(s) == len("12:34:56.789") and s[2] == ":" for s in stamps), stamps


def test_search_highlights_and_steps_through_matches(open_page: Any, page: Any) -> None:
    page = open_page()
    start_job(page, "ui_words", n=400)
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.session.lines.length === 400")
    page.fill("#search", "NEEDLE")
    page.press("#search", "Enter")
    page.wait_for_selector("#search-count:has-text('1 of 8')")
    next_frame(page)
    current = page.locator("#output mark.hl.current")
    assert current.text_content() == "needle"
    assert current.locator("xpath=..").text_content() == "line 50 needle"
    assert current.is_visible()
    page.press("#search", "Enter")
    page.wait_for_selector("#search-count:has-text('2 of 8')")
    next_frame(page)
    assert page.locator("#output mark.hl.current >> xpath=..").text_content() == "line 100 needle"
    page.click("#search-prev")
    page.click("#search-prev")
    page.wait_for_selector("#search-count:has-text('8 of 8')")
    next_frame(page)
    assert page.locator("#output mark.hl.current >> xpath=..").text_content() == "line 400 needle"
    assert page.locator("#output mark.hl").count() >= 1
    page.press("#search", "Escape")
    wait_js(page, "document.querySelector('#search-count').textContent === ''")
    next_frame(page)
    assert page.locator("#output mark").count() == 0


def test_million_lines_keep_the_dom_small_and_show_the_last_line(
    open_page: Any, page: Any,
) -> None:
    page = open_page()
    start_job(page, "flood", lines=1_000_000, width=30)
    most = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        most = max(most, dom_nodes(page))
        done = page.evaluate(
            "window.flaskRealtime.stats.renderedSeq >= 1000000")
        if done:
            break
        page.wait_for_timeout(250)
    wait_state(page, "succeeded", timeout=30_000)
    wait_js(page, "window.flaskRealtime.stats.renderedSeq >= 1000000")
    most = max(most, dom_nodes(page))
    assert most < 5000, most
    held = page.evaluate("window.flaskRealtime.session.lines.length")
    assert held <= 200_000 * 1.125
    last = page.locator("#output .line").last
    assert last.text_content() == "01000000 " + "x" * 21
    box, pane = last.bounding_box(), page.locator("#output").bounding_box()
    assert pane["y"] <= box["y"] and box["y"] + box["height"] <= pane["y"] + pane["height"] + 1
    assert page.is_hidden("#jump-end")


def test_scrolling_back_fetches_older_lines_then_jump_to_end(open_page: Any, page: Any) -> None:
    page = open_page("?cap=1000")
    start_job(page, "ui_numbers", n=5000)
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.stats.renderedSeq >= 5000")
    first = int(held_lines(page)[0])
    assert first > 1  # the window holds the newest lines only
    page.hover("#output")
    for _ in range(40):  # each scroll to the top brings up to cap/2 older lines
        page.mouse.wheel(0, -100_000)
        next_frame(page)  # the scroll event comes with the next frame
        wait_js(page, "!window.flaskRealtime.session.loadingOlder")
        next_frame(page)
        if held_lines(page)[0] == "1":
            break
    lines = held_lines(page)
    assert lines[0] == "1"
    assert lines == [str(i) for i in range(1, len(lines) + 1)]  # contiguous, no repeats
    page.mouse.wheel(0, -100_000)
    assert drawn_lines(page)[0] == "1"
    page.wait_for_selector("#jump-end:not([hidden])")
    page.click("#jump-end")
    wait_js(
        page, "() => { const r = [...document.querySelectorAll('#output .line')];"
        " return r.length && r[r.length - 1].textContent === '5000'; }")
    assert page.is_hidden("#jump-end")
