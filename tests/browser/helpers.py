"""What the browser tests do to the page, in one place."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_js(page: Any, expression: str, timeout: float = 15.0, arg: Any = None) -> Any:
    """Poll a JavaScript expression until it is truthy.

    Playwright's ``wait_for_function`` evaluates strings with ``eval``, which the
    page's Content-Security-Policy forbids; ``evaluate`` is not subject to it.
    """
    deadline = time.monotonic() + timeout
    problem = ""
    while True:
        try:
            value = page.evaluate(expression, arg)
        except Exception as exc:  # the page is (re)loading: its objects are not there yet
            value, problem = None, f" (last error: {exc})"
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {expression}{problem}")
        time.sleep(0.05)


def wait_py(page: Any, predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    """Poll a Python condition that Playwright's event handlers (routes, console) make
    true: they run only while this thread is inside a Playwright call."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s")
        page.wait_for_timeout(20)


def start_job(page: Any, job: str, **params: Any) -> str:
    """Pick ``job``, fill its fields, press Start; return the new run's id."""
    page.select_option("#job-select", job)
    for name, value in params.items():
        field = page.locator(f"#param-{name}")
        if isinstance(value, bool):
            field.set_checked(value)
        else:
            field.fill(str(value))
    before = page.evaluate("window.flaskRealtime.session && window.flaskRealtime.session.runId")
    page.click("#start-btn")
    wait_js(page, "prev => window.flaskRealtime.session"
            " && window.flaskRealtime.session.runId !== prev", arg=before)
    return page.evaluate("window.flaskRealtime.session.runId")  # type: ignore[no-any-return]


def wait_state(page: Any, state: str, timeout: float = 15_000) -> None:
    page.wait_for_selector(f"#run-state .state-{state}", timeout=timeout)


def held_lines(page: Any) -> list[str]:
    """Every line the page holds for the shown run (not only the rows drawn)."""
    return page.evaluate("window.flaskRealtime.session.lines.text.slice()")  # type: ignore[no-any-return]


def next_frame(page: Any) -> None:
    """Let the page draw what it has (it draws at most once per animation frame)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def drawn_lines(page: Any) -> list[str]:
    """The text of the rows in the DOM (the lines in and near the view)."""
    next_frame(page)
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#output .line", "rows => rows.map(r => r.textContent)")


def dom_nodes(page: Any) -> int:
    return page.evaluate(  # type: ignore[no-any-return]
        """() => { const w = document.createTreeWalker(document, NodeFilter.SHOW_ALL);
                   let n = 0; while (w.nextNode()) n++; return n; }""")
