"""The small things of issue 18: hints, contrast, Jump to end, the job picker, defaults."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

CONTRAST = """sel => {
    const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
        .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
        .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
    const style = getComputedStyle(document.querySelector(sel));
    const [a, b] = [lum(rgb(style.color)), lum(rgb(style.backgroundColor))];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def test_the_empty_state_hint_is_visible(open_page: Any) -> None:
    page = open_page()
    hit = page.eval_on_selector("#output-empty", """p => {
        const r = p.getBoundingClientRect();
        p.style.pointerEvents = 'auto';  // it lets clicks through: hit-test it for a moment
        const top = document.elementFromPoint(r.left + 30, r.top + 20);
        p.style.pointerEvents = '';
        return p.contains(top) && getComputedStyle(p).visibility === 'visible';
    }""")
    assert hit, "the hint is covered by the output pane"


def test_an_empty_run_list_says_what_to_do(open_page: Any, page: Any) -> None:
    open_page()
    page.wait_for_selector("#runs-message:has-text('No runs yet: pick a job and press Start.')")
    start_job(page, "ui_numbers", n=1)
    wait_state(page, "succeeded")
    wait_js(page, "document.getElementById('runs-message').textContent === ''")
    page.select_option("#filter-state", "failed")
    page.wait_for_selector("#runs-message:has-text('No runs match these filters.')")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_primary_buttons_have_enough_contrast(open_page: Any, page: Any, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    open_page()
    for selector in ("#start-btn", "#jump-end"):
        ratio = page.evaluate(CONTRAST, selector)
        assert ratio >= 4.5, f"{selector} in {scheme}: {ratio:.2f}:1"


def test_jump_to_end_covers_no_line_and_needs_lines(open_page: Any, page: Any) -> None:
    open_page()
    page.hover("#output")
    page.mouse.wheel(0, -300)  # on the empty pane: nothing to jump to
    page.wait_for_timeout(100)
    assert page.is_hidden("#jump-end")
    start_job(page, "ui_numbers", n=400)
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.session.lines.length === 400")
    page.hover("#output")
    page.mouse.wheel(0, -600)
    page.wait_for_selector("#jump-end", state="visible")
    button, pane = (page.eval_on_selector(s, "e => e.getBoundingClientRect().toJSON()")
                    for s in ("#jump-end", "#output"))
    assert button["top"] >= pane["bottom"] or button["left"] >= pane["right"], (button, pane)
    page.click("#jump-end")
    page.wait_for_selector("#jump-end", state="hidden")


def test_the_toolbar_has_no_empty_gap(open_page: Any) -> None:
    page = open_page()
    assert page.eval_on_selector("#search-count", "e => e.getBoundingClientRect().width") == 0


def test_job_descriptions_show_backticks_as_code(open_page: Any, page: Any) -> None:
    open_page()
    page.select_option("#job-select", "ui_numbers")
    assert page.text_content("#job-description") == "Print 1..n, one per line, delay seconds apart."
    code = page.eval_on_selector_all(
        "#job-description code",
        "cs => cs.map(c => [c.textContent, [...c.childNodes].every(n => n.nodeType === 3)])")
    assert code == [["delay", True]]


def test_the_job_picker_groups_remembers_and_filters(open_page: Any, page: Any) -> None:
    open_page()
    groups = page.eval_on_selector_all(
        "#job-select optgroup", "gs => gs.map(g => [g.label, [...g.children].map(o => o.value)])")
    assert [label for label, _ in groups] == ["Built-in", "Webex", "Your jobs"]
    assert "countdown" in groups[0][1]
    assert "space_stats" in groups[1][1]
    assert "ui_numbers" in groups[2][1]
    page.select_option("#job-select", "ui_words")
    page.reload()
    page.wait_for_selector("#param-n")
    assert page.input_value("#job-select") == "ui_words"

    page.fill("#job-filter", "colo")
    shown = page.eval_on_selector_all(
        "#job-select option", "os => os.filter(o => !o.hidden).map(o => o.value)")
    assert shown == ["ui_colours"]
    assert page.input_value("#job-select") == "ui_colours"
    assert page.is_visible("#param-steps")
    page.fill("#job-filter", "no such job")
    assert "No job matches" in page.text_content("#job-filter-message")
    page.fill("#job-filter", "")
    every_job = sum(len(members) for _, members in groups)
    assert page.locator("#job-select option:not([hidden])").count() == every_job


def test_an_empty_number_field_shows_and_says_its_default(open_page: Any, page: Any) -> None:
    open_page()
    page.select_option("#job-select", "countdown")
    assert page.is_hidden("#param-n-default")
    page.fill("#param-n", "")
    assert page.get_attribute("#param-n", "placeholder") == "10"
    assert page.text_content("#param-n-default") == "Empty: the default, 10, is used."
    assert page.is_visible("#param-n-default")
    assert "param-n-default" in page.get_attribute("#param-n", "aria-describedby")
    page.fill("#param-delay", "0")
    page.click("#start-btn")
    wait_state(page, "succeeded")
    assert "n=10" in page.text_content("#run-params")


def test_a_stopped_run_says_what_its_result_is(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "countdown", n=100, delay=0.1)
    wait_js(page, "window.flaskRealtime.session.lines.length >= 3")
    page.click("#stop-btn")
    wait_state(page, "stopped")
    page.wait_for_selector("#result", state="visible")
    assert re.search(r"stopped", page.text_content("#result-heading"))
    assert "stopped before it finished" in page.text_content("#result-note")
