"""Line numbers and links to a line or a range (issue 18): `#run=<id>&line=120-140`."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import next_frame, start_job, wait_js, wait_py, wait_state

pytestmark = pytest.mark.browser

PICKED = "[...document.querySelectorAll('#output .line.picked')].map(r => Number(r.dataset.n))"
# The picked rows that lie inside the pane's visible box.
PICKED_IN_VIEW = """() => { const pane = document.getElementById('output').getBoundingClientRect();
    return [...document.querySelectorAll('#output .line.picked')].filter(r => {
        const b = r.getBoundingClientRect(); return b.top >= pane.top && b.bottom <= pane.bottom;
    }).map(r => Number(r.dataset.n)); }"""


def finished_run(page: Any, n: int) -> str:
    run_id = start_job(page, "ui_words", n=n)
    wait_state(page, "succeeded")
    wait_js(page, f"window.flaskRealtime.session.lastSeq >= {n}")
    return run_id


def test_line_numbers_are_in_a_gutter_that_copying_leaves_out(open_page: Any, page: Any) -> None:
    open_page()
    finished_run(page, 5)
    next_frame(page)
    numbers = page.eval_on_selector_all(
        "#output .line", "rows => rows.map(r => getComputedStyle(r, '::before').content)")
    assert numbers == ['"1"', '"2"', '"3"', '"4"', '"5"']
    selected = page.evaluate("""() => {
        const range = document.createRange();
        range.selectNodeContents(document.querySelector('#output .output-rows'));
        getSelection().removeAllRanges(); getSelection().addRange(range);
        return getSelection().toString(); }""")
    assert selected.split("\n")[:2] == ["line 1 hay", "line 2 hay"]


def test_a_link_to_a_range_scrolls_there_and_highlights_it(open_page: Any, page: Any,
                                                          live_server: Any) -> None:
    open_page()
    run_id = finished_run(page, 2000)
    page.goto(f"{live_server.url}/#run={run_id}&line=1200-1210")
    wait_js(page, f"({PICKED_IN_VIEW})().length === 11")
    assert page.evaluate(PICKED_IN_VIEW) == list(range(1200, 1211))
    assert page.is_hidden("#jump-end") is False  # the view left the end: it can go back


def test_a_link_to_lines_only_the_server_has_fetches_them(open_page: Any, page: Any,
                                                         live_server: Any) -> None:
    open_page("?cap=1000")
    run_id = finished_run(page, 5000)
    # This page holds the newest 500 lines of a 5,000-line run: line 120 is not among them.
    page.goto(f"{live_server.url}/?cap=1000#run={run_id}")
    wait_js(page, "window.flaskRealtime.session.lines.firstSeq() > 4000")
    page.evaluate(f"location.hash = '#run={run_id}&line=120-140'")
    wait_js(page, f"({PICKED_IN_VIEW})().length === 21")
    assert page.evaluate(PICKED_IN_VIEW)[0] == 120
    assert page.evaluate("window.flaskRealtime.session.lines.firstSeq()") < 120
    # And straight from a fresh load of the link.
    page.goto(f"{live_server.url}/?cap=1000#run={run_id}&line=130")
    wait_js(page, f"({PICKED_IN_VIEW})().length === 1")
    assert page.evaluate(PICKED) == [130]


class HeldOutput:
    """Passes the page's Socket.IO traffic through, holding the server's ``output``
    frames while ``holding``: the run's replay then comes only when :meth:`release` says."""

    def __init__(self, page: Any) -> None:
        self.holding = False
        self.frames: list[str] = []
        self.ws: Any = None
        page.route_web_socket("**/socket.io/**", self.route)

    def route(self, ws: Any) -> None:
        server = ws.connect_to_server()
        self.ws = ws

        def to_page(message: Any) -> None:
            if self.holding and isinstance(message, str) and message.startswith('42["output"'):
                self.frames.append(message)
            else:
                ws.send(message)

        server.on_message(to_page)
        ws.on_message(server.send)

    def release(self) -> None:
        self.holding = False
        frames, self.frames = self.frames, []
        for message in frames:
            self.ws.send(message)


def test_a_link_followed_before_the_replay_came_still_fetches_the_lines(
        open_page: Any, page: Any) -> None:
    """The link is followed while the page holds none of the run yet (its replay from
    the newest lines is on its way): the lines before that replay are fetched all the same."""
    held = HeldOutput(page)
    open_page("?cap=1000")
    run_id = finished_run(page, 5000)
    held.holding = True
    page.reload()  # the run is watched again from its newest half-window: seq 4500
    wait_js(page, "window.flaskRealtime.session && window.flaskRealtime.session.lastSeq === 4500")
    wait_py(page, lambda: bool(held.frames))  # the replay came and is held
    assert page.evaluate("window.flaskRealtime.session.lines.length") == 0
    page.evaluate(f"location.hash = '#run={run_id}&line=120-140'")
    wait_js(page, "String(window.flaskRealtime.viewer.picked) === '120,140'")  # link taken
    held.release()  # the old replay (4501-5000) reaches the page after the link
    wait_js(page, f"({PICKED_IN_VIEW})().length === 21")
    assert page.evaluate(PICKED_IN_VIEW)[0] == 120
    assert page.evaluate("window.flaskRealtime.session.lines.firstSeq()") < 120


def test_a_link_past_what_the_window_can_take_from_the_replay_fetches_from_before_it(
        open_page: Any, page: Any) -> None:
    """A run watched from its first line (the one just started) whose lines have not come
    yet: the window could take only a cap's worth from there, so a link to line 3,000
    is fetched from before that line rather than waited for."""
    held = HeldOutput(page)
    open_page("?cap=1000")
    held.holding = True
    run_id = start_job(page, "ui_words", n=5000)
    wait_state(page, "succeeded")
    wait_py(page, lambda: bool(held.frames))
    assert page.evaluate("window.flaskRealtime.session.lines.length") == 0
    page.evaluate(f"location.hash = '#run={run_id}&line=3000'")
    wait_js(page, "String(window.flaskRealtime.viewer.picked) === '3000,3000'")  # link taken
    held.release()
    wait_js(page, f"({PICKED_IN_VIEW})().length === 1")
    assert page.evaluate(PICKED) == [3000]


def test_a_scroll_event_of_the_emptied_pane_does_not_trim_the_fetched_lines_away(
        open_page: Any, page: Any, live_server: Any) -> None:
    """Following the link empties the pane (its offset drops to 0, and the browser queues
    a scroll event for that); under load the fetched lines can come before that event is
    handled. It must not count as the reader at the pane's bottom: a fetch of what follows
    would trim lines 120-140 out of the capped window before they were shown."""
    held = HeldOutput(page)
    open_page("?cap=1000")
    run_id = finished_run(page, 5000)
    wait_js(page, "window.flaskRealtime.session.lines.firstSeq() > 4000")
    held.holding = True
    page.evaluate(f"location.hash = '#run={run_id}&line=120-140'")
    wait_js(page, "String(window.flaskRealtime.viewer.picked) === '120,140'")
    wait_js(page, "(r => r.scrollHeight <= r.clientHeight)(document.getElementById('output'))")
    # The queued scroll event, handled right after the first batch (same task, before a draw).
    page.evaluate("""() => { let done = false; window.flaskRealtime.socket.on('output', () => {
        if (done) return;
        done = true;
        document.getElementById('output').dispatchEvent(new Event('scroll'));
    }); }""")
    held.release()
    wait_js(page, f"({PICKED_IN_VIEW})().length === 21")
    assert page.evaluate("window.flaskRealtime.session.lines.firstSeq()") == 1


def test_clicking_line_numbers_makes_a_link(open_page: Any, page: Any) -> None:
    open_page()
    run_id = finished_run(page, 30)
    next_frame(page)

    def click_number(n: int, **kwargs: Any) -> None:
        row = page.locator(f"#output .line[data-n='{n}']")
        row.click(position={"x": 8, "y": 5}, **kwargs)

    click_number(5)
    wait_js(page, "location.hash.endsWith('&line=5')")
    click_number(8, modifiers=["Shift"])
    wait_js(page, f"location.hash === '#run={run_id}&line=5-8'")
    next_frame(page)
    assert page.evaluate(PICKED) == [5, 6, 7, 8]
    page.locator("#output .line[data-n='12']").click(position={"x": 200, "y": 5})
    next_frame(page)
    assert page.evaluate("location.hash") == f"#run={run_id}&line=5-8"  # text is not a number
