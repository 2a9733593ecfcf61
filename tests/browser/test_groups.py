"""Collapsible groups with durations (issue 18): `with group(title):` and `::group::` lines."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import drawn_lines, next_frame, start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

HEADS = """[...document.querySelectorAll('#output .group-head')].map(r => ({
    title: r.querySelector('.group-toggle').textContent,
    open: r.querySelector('.group-toggle').getAttribute('aria-expanded') === 'true',
    time: r.querySelector('.group-time').textContent }))"""


def heads(page: Any) -> dict[str, dict[str, Any]]:
    next_frame(page)
    return {h["title"]: h for h in page.evaluate(HEADS)}


def finished_groups(page: Any, state: str = "succeeded", **params: Any) -> None:
    """Run ``ui_groups`` and wait until it ended and its last line is in the page: the
    run's state and its output reach the page by two ways (the state announcement, the
    output's delivery), and either may come first."""
    start_job(page, "ui_groups", **params)
    wait_state(page, state)
    last = "after the groups" if state == "succeeded" else "deleting"
    wait_js(page, f"window.flaskRealtime.session.lines.text.includes('{last}')")
    if state != "succeeded":
        wait_js(page, "document.querySelector('#run-error:not([hidden])')")


def test_groups_are_folded_with_their_durations(open_page: Any, page: Any) -> None:
    open_page()
    finished_groups(page)
    shown = heads(page)
    assert list(shown) == ["Fetching rooms", "Deleting rooms", "Printed by a command"]
    assert not any(h["open"] for h in shown.values())
    seconds = float(shown["Fetching rooms"]["time"].removesuffix(" s"))
    assert seconds >= 0.3  # it slept 0.3 s inside the group
    assert drawn_lines(page)[0] == "before the groups"
    texts = drawn_lines(page)
    assert "room 0" not in texts and "command output" not in texts
    assert not any(t.startswith("::") for t in texts)  # no marker line shows as text


def test_clicking_a_group_opens_it_and_its_nested_group_stays_folded(open_page: Any,
                                                                    page: Any) -> None:
    open_page()
    finished_groups(page)
    page.click("#output .group-toggle:text('Fetching rooms')")
    wait_js(page, "[...document.querySelectorAll('#output .line')]"
                  ".some(r => r.textContent === 'room 29')")
    shown = heads(page)
    assert shown["Fetching rooms"]["open"] and not shown["Inner page"]["open"]
    assert page.evaluate("document.activeElement.textContent") == "Fetching rooms"
    page.keyboard.press("Enter")  # the toggle kept the focus: the keyboard folds it again
    wait_js(page, "![...document.querySelectorAll('#output .line')]"
                  ".some(r => r.textContent === 'room 29')")


def test_the_group_the_run_failed_in_is_open(open_page: Any, page: Any) -> None:
    open_page()
    finished_groups(page, state="failed", fail=True)
    shown = heads(page)
    assert shown["Deleting rooms"]["open"] and "failed" in shown["Deleting rooms"]["time"]
    assert not shown["Fetching rooms"]["open"]
    assert "deleting" in drawn_lines(page)


def test_search_finds_a_line_in_a_folded_group_and_opens_it(open_page: Any, page: Any) -> None:
    open_page()
    finished_groups(page)
    page.fill("#search", "command output")
    page.press("#search", "Enter")
    wait_js(page, "document.getElementById('search-count').textContent === '1 of 1'")
    wait_js(page, "[...document.querySelectorAll('#output .line')]"
                  ".some(r => r.textContent === 'command output' && r.querySelector('mark'))")
    assert heads(page)["Printed by a command"]["open"]


def test_a_link_to_a_line_in_a_folded_group_opens_it(open_page: Any, page: Any,
                                                     live_server: Any) -> None:
    open_page()
    finished_groups(page)
    run_id = page.evaluate("window.flaskRealtime.session.runId")
    page.goto(f"{live_server.url}/#run={run_id}&line=8")  # "room 5", inside the first group
    wait_js(page, "[...document.querySelectorAll('#output .line.picked')]"
                  ".map(r => r.textContent).join() === 'room 5'")
    assert heads(page)["Fetching rooms"]["open"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_group_rows_pass_the_axe_check(open_page: Any, page: Any, scheme: str) -> None:
    pytest.importorskip("axe_playwright_python.sync_playwright")
    from .test_a11y import serious

    page.emulate_media(color_scheme=scheme)
    open_page()
    finished_groups(page, state="failed", fail=True)  # folded, open and failed rows
    next_frame(page)
    assert serious(page) == []
