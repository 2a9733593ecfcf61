"""Connection loss: the page resumes by seq, so every line shows once, in order."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import drawn_lines, held_lines, start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

N = 4000


def test_lost_connections_resume_without_gaps_or_repeats(open_page: Any, page: Any) -> None:
    page = open_page()
    run_id = start_job(page, "ui_numbers", n=N, delay=0.001)
    wait_js(page, "window.flaskRealtime.session.lastSeq >= 300")

    # 1. The transport dies under the client: Socket.IO reconnects by itself.
    page.evaluate("window.flaskRealtime.socket.io.engine.close()")
    page.wait_for_selector("#conn.conn-connected")
    wait_js(page, "window.flaskRealtime.stats.connects >= 2")
    seen = page.evaluate("window.flaskRealtime.session.lastSeq")

    # 2. Offline for a while, lines keep coming on the server meanwhile.
    wait_js(page, f"window.flaskRealtime.session.lastSeq > {seen}")
    page.evaluate("window.flaskRealtime.socket.disconnect()")
    page.wait_for_selector("#conn.conn-disconnected")
    offline_at = page.evaluate("window.flaskRealtime.session.lastSeq")
    page.wait_for_timeout(2000)
    assert page.evaluate("window.flaskRealtime.session.lastSeq") == offline_at
    page.evaluate("window.flaskRealtime.socket.connect()")
    page.wait_for_selector("#conn.conn-connected")

    wait_state(page, "succeeded", timeout=30_000)
    wait_js(page, f"window.flaskRealtime.session.lastSeq >= {N}")
    expected = [str(i) for i in range(1, N + 1)]
    assert held_lines(page) == expected
    assert drawn_lines(page)[-1] == str(N)
    # Only one run was started, whatever was re-sent.
    assert page.locator("#runs-body tr").count() == 1

    # A reload rebuilds the whole output from the server.
    page.reload()
    wait_js(
        page, f"window.flaskRealtime.session && window.flaskRealtime.session.runId === {run_id!r}"
        f" && window.flaskRealtime.session.lastSeq >= {N}")
    assert held_lines(page) == expected
    wait_state(page, "succeeded")


def test_start_sent_while_offline_starts_once_on_reconnect(open_page: Any, page: Any) -> None:
    page = open_page()
    page.evaluate("window.flaskRealtime.socket.disconnect()")
    page.wait_for_selector("#conn.conn-disconnected")
    page.select_option("#job-select", "ui_numbers")
    page.fill("#param-n", "50")
    page.click("#start-btn")
    page.wait_for_timeout(300)
    assert page.evaluate("window.flaskRealtime.session") is None
    page.evaluate("window.flaskRealtime.socket.connect()")
    wait_state(page, "succeeded")
    wait_js(page, "window.flaskRealtime.session.lastSeq >= 50")
    assert held_lines(page) == [str(i) for i in range(1, 51)]
    assert page.locator("#runs-body tr").count() == 1
