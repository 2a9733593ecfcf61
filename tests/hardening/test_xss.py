"""Output, titles and results cannot run script in the page (docs/reliability.md, requirement 11).

A job prints markup and terminal escape tricks and returns a table of markup; the
browser shows all of it as text. "No script ran" is shown three ways: a window flag
that every payload would set stays untouched, no dialog opens, and no element that
could run script or navigate (img, script, svg, iframe, a, h1) appears in the page;
the page fixture also fails on any CSP violation, so even a payload the CSP would
have blocked never got as far as being tried.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import browser, open_page, page, problems  # noqa: F401
from tests.browser.helpers import drawn_lines, held_lines, start_job, wait_state
from tests.conftest import LiveServer, wait_for
from tests.hardening.jobs_for_hardening import HOSTILE_OUTPUT, HOSTILE_TABLE

pytestmark = pytest.mark.browser

#: What each line of HOSTILE_OUTPUT shows: markup verbatim, escape sequences dropped.
SHOWN = [
    HOSTILE_OUTPUT[0], HOSTILE_OUTPUT[1], HOSTILE_OUTPUT[2], HOSTILE_OUTPUT[3],
    HOSTILE_OUTPUT[4], "osc8-link-text", "osc8-bel-link", "after-osc52", "after-title-0",
    "after-title-2", "concealed-secret visible", "black-on-black erase-line up-one",
    "after-dcs maybe-alt-screen", HOSTILE_OUTPUT[13], "<svg onload=alert(1)>",
]
ACTIVE = ("img", "script", "svg", "iframe", "a:not(#download-link):not(#result-csv)",
          "h1#hx-injected",
          "b", "u", "i")


def test_hostile_output_title_and_result_render_as_text(
    open_page: Any, page: Any,  # noqa: F811
) -> None:
    page = open_page()
    page.evaluate("window.__pwned = 0")
    title_before = page.title()
    start_job(page, "hx_hostile")
    wait_state(page, "succeeded")
    page.wait_for_selector("#result:not([hidden])")
    assert drawn_lines(page) == SHOWN
    assert held_lines(page)[:2] == HOSTILE_OUTPUT[:2]

    title = "<img src=x onerror=\"window.__pwned = 'title'\">Hostile"
    assert page.text_content("#run-title") == title
    assert title in page.text_content("#runs-body")

    headers = page.eval_on_selector_all("#result-body th", "c => c.map(x => x.textContent)")
    assert headers == list(HOSTILE_TABLE[0])
    cells = page.eval_on_selector_all("#result-body td", "c => c.map(x => x.textContent)")
    assert cells[:3] == [*HOSTILE_TABLE[0].values(), HOSTILE_TABLE[1]["<b>name</b>"]]
    assert cells[3] == '{"<i>nested</i>":"<u>x</u>"}'

    page.wait_for_timeout(300)  # the one wait: time for an injected onerror to fire
    assert page.evaluate("window.__pwned") == 0
    assert page.title() == title_before  # OSC 0/2 did not set the window title
    for selector in ACTIVE:
        assert page.locator(f"main {selector}").count() == 0, selector
    # The page fixture fails the test on any dialog (alert) or CSP violation.


def test_concealed_and_invisible_text_is_still_text(
    open_page: Any, page: Any,  # noqa: F811
) -> None:
    """SGR 8 (conceal) and black on black are drawn as styles; the text stays in the
    row, so it can be selected, copied and searched: output cannot hide from its reader."""
    page = open_page()
    start_job(page, "hx_hostile")
    wait_state(page, "succeeded")
    rows = page.eval_on_selector_all("#output .line", "r => r.map(x => x.textContent)")
    assert "concealed-secret visible" in rows
    assert "black-on-black erase-line up-one" in rows


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/jobs", "/no-such-page",
                                  "/healthz"])
def test_security_headers_on_every_kind_of_response(live_server: LiveServer, path: str) -> None:
    headers = httpx.get(live_server.url + path).headers
    policy = dict(part.strip().split(" ", 1) for part in
                  headers["Content-Security-Policy"].split(";") if part.strip())
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert "unsafe" not in headers["Content-Security-Policy"]
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer",
                                          "strict-origin-when-cross-origin")
    assert headers["X-Frame-Options"] == "DENY"


def test_the_page_cannot_be_framed(
    live_server: LiveServer, page: Any, problems: Any,  # noqa: F811
) -> None:
    """frame-ancestors 'none': another origin that frames the console gets nothing."""
    page.set_content(f'<iframe id="f" src="{live_server.url}/"></iframe>')
    refused = wait_for(lambda: [e for e in problems.errors if "frame-ancestors" in e])
    assert "has been blocked" in refused[0]
    problems.errors.remove(refused[0])  # the refusal is what this test wants to see
    assert page.frame_locator("#f").locator("#job-select").count() == 0
