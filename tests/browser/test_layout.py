"""Phones and tablets (issue 18): one column, nothing wider than the screen, every
control reachable, the output first after Start, tables scrolling in their own box."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from . import demo
from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

SIZES = [pytest.param((390, 844), id="phone"), pytest.param((768, 1024), id="tablet")]

# Controls the user can reach: each visible one must lie within the page's width. Those
# in a table's own scrolling box (a result table's sort buttons) are reached by
# scrolling it; the box itself must fit (test_a_wide_result_table_scrolls_inside_its_box).
OUT_OF_WIDTH = """() => [...document.querySelectorAll('button, select, input, a[href], summary')]
    .filter(e => e.offsetParent !== null && e.type !== 'hidden')
    .filter(e => !e.closest('#result .table-wrap'))
    .map(e => [e.id || e.textContent.trim() || e.tagName, e.getBoundingClientRect()])
    .filter(([, r]) => r.width === 0 || r.left < 0 || r.right > innerWidth + 0.5)
    .map(([name, r]) => `${name}: ${Math.round(r.left)}..${Math.round(r.right)}`)"""


@pytest.fixture
def simulator() -> Iterator[Any]:
    with demo.simulator() as handle:
        yield handle


@pytest.fixture
def app(app_config: dict[str, Any], simulator: Any) -> Flask:
    return demo.demo_app(app_config, simulator)  # login on: the top bar has Log out


def fits_the_width(page: Any) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"
    assert page.evaluate(OUT_OF_WIDTH) == []


@pytest.mark.parametrize("size", SIZES)
def test_nothing_is_wider_than_the_screen_and_every_control_is_reachable(
        page: Any, live_server: Any, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    demo.log_in(page, live_server.url)
    fits_the_width(page)
    assert page.is_visible("#logout-button")
    start_job(page, "ui_table", rows=3)
    wait_state(page, "succeeded")
    page.wait_for_selector("#result table")
    fits_the_width(page)


@pytest.mark.parametrize("size", SIZES)
def test_after_start_the_output_is_in_view_with_its_whole_title(
        page: Any, live_server: Any, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    demo.log_in(page, live_server.url)
    start_job(page, "countdown", n=3, delay=0)
    wait_state(page, "succeeded")
    wait_js(page, "document.querySelectorAll('#output .line').length >= 4")
    top = page.evaluate("document.getElementById('output').getBoundingClientRect().top")
    assert 0 <= top < size[1] / 3, f"the output pane starts at {top} px"
    title = page.eval_on_selector(
        "#run-title", "h => [h.textContent, h.scrollWidth <= h.clientWidth + 1]")
    assert title == ["Countdown", True]


def test_a_wide_result_table_scrolls_inside_its_box(page: Any, live_server: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    demo.log_in(page, live_server.url)
    start_job(page, "ui_table", rows=2)
    wait_state(page, "succeeded")
    page.wait_for_selector("#result table")
    # Twelve columns of long words, as space_stats gives: rendered by the page's own code.
    page.evaluate("""async () => {
        const { renderResult } = await import('/static/result.js');
        const row = Object.fromEntries(Array.from({length: 12},
            (_, i) => [`column_number_${i}`, `a fairly long value ${i}`]));
        renderResult(document.getElementById('result-body'), [row, row]);
    }""")
    box = page.eval_on_selector("#result .table-wrap", """w => {
        const r = w.getBoundingClientRect();
        return {left: r.left, right: r.right, scrolls: w.scrollWidth > w.clientWidth,
                overflow: getComputedStyle(w).overflowX};
    }""")
    assert box["left"] >= 0 and box["right"] <= 390, box
    assert box["scrolls"] and box["overflow"] == "auto", box
    fits_the_width(page)
    page.eval_on_selector("#result .table-wrap", "w => { w.scrollLeft = w.scrollWidth; }")
    last = page.eval_on_selector("#result th:last-child", "th => th.getBoundingClientRect().right")
    assert last <= 390  # the last column can be scrolled to


def test_the_run_list_folds_away_on_a_phone(page: Any, live_server: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    demo.log_in(page, live_server.url)
    start_job(page, "ui_numbers", n=2)
    wait_state(page, "succeeded")
    assert page.is_visible("#runs-body tr")
    page.click("#runs-toggle")
    assert page.is_hidden("#runs-body tr")
    assert page.get_attribute("#runs-toggle", "aria-expanded") == "false"
    page.click("#runs-toggle")
    assert page.is_visible("#runs-body tr")


def test_a_tap_anywhere_on_a_row_opens_that_run(browser: Any, live_server: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                                  is_mobile=True, device_scale_factor=2)
    try:
        page = context.new_page()
        demo.log_in(page, live_server.url)
        first = start_job(page, "ui_numbers", n=2)
        wait_state(page, "succeeded")
        second = start_job(page, "ui_numbers", n=3)
        wait_state(page, "succeeded")
        fits_the_width(page)  # a mobile browser zooms out a page wider than the screen
        page.locator(f"#runs-body tr[data-run-id='{first}'] td.duration").tap()
        wait_js(page, f"window.flaskRealtime.session.runId === {first!r}")
        assert second != first
        page.screenshot(path=str(_artifacts() / "test_a_tap_anywhere_on_a_row_opens_that_run.png"))
    finally:
        context.close()


def _artifacts() -> Any:
    from .conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
