"""The product as deployed: Chromium -> nginx -> two web processes -> Redis -> RQ workers.

One user session through nginx: log in (demo mode), run space_stats, reload mid-run,
stop a run, lose the web process serving the page; the output is always whole.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import held_lines, start_job, wait_js, wait_state
from tests.conftest import wait_for

pytestmark = pytest.mark.browser


def log_lines(page: Any, base: str, run_id: str) -> list[str]:
    response = page.request.get(f"{base}/api/runs/{run_id}/log?download=0")
    assert response.ok
    return response.text().splitlines()  # type: ignore[no-any-return]


def serving_process(stack: dict[str, Any]) -> dict[str, Any]:
    """The web process holding the page's websocket (nginx keeps one connection to it)."""
    established: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "01":  # ESTABLISHED
                established[port] = established.get(port, 0) + 1
    webs = [p for p in stack["stack"].load()["processes"] if p["name"].startswith("web")
            and p["name"][3:].isdigit()]
    ports = dict(zip([p["name"] for p in webs], stack["webs"], strict=True))
    busy = [p for p in webs if established.get(ports[p["name"]])]
    assert len(busy) == 1, f"expected one web process with connections, got {busy}"
    return busy[0]


def test_the_deployed_stack_end_to_end(stack: dict[str, Any], page: Any) -> None:
    base = stack["url"]
    page.goto(base)
    page.click("#login-button")  # demo mode: the simulator approves at once
    page.wait_for_selector("#conn.conn-connected")
    assert "user1@example.com" in page.text_content(".user")

    # space_stats on an RQ worker, watched through nginx; reload mid-run.
    run_id = start_job(page, "space_stats", concurrency=2)
    wait_js(page, "window.flaskRealtime.session.lastSeq >= 3", timeout=30)
    page.reload()
    wait_js(page, f"window.flaskRealtime.session && window.flaskRealtime.session.runId"
                  f" === {run_id!r}", timeout=15)
    wait_state(page, "succeeded", timeout=60_000)
    wait_for(lambda: len(held_lines(page)) == len(log_lines(page, base, run_id)), timeout=10)
    assert held_lines(page) == log_lines(page, base, run_id)  # nothing missing or doubled
    assert any("spaces," in line for line in held_lines(page))
    page.wait_for_selector("#result table")

    # Stop a second run.
    start_job(page, "countdown", n=1000, delay=0.05)
    wait_state(page, "running", timeout=20_000)
    page.click("#stop-btn")
    if page.locator("#stop-dialog[open]").count():
        page.click("#stop-dialog button[value=confirm], #stop-dialog .danger")
    wait_state(page, "stopped", timeout=20_000)

    # Kill the web process serving the page: it reconnects through the other one and
    # resumes by seq while the job goes on on its worker.
    n = 150
    run_id = start_job(page, "countdown", n=n, delay=0.03)
    wait_js(page, "window.flaskRealtime.session.lastSeq >= 20", timeout=20)
    victim = serving_process(stack)
    connects = page.evaluate("window.flaskRealtime.stats.connects")
    os.killpg(victim["pid"], signal.SIGKILL)
    wait_js(page, f"window.flaskRealtime.stats.connects > {connects}", timeout=30)
    page.wait_for_selector("#conn.conn-connected")
    wait_state(page, "succeeded", timeout=30_000)
    expected = [str(i) for i in range(n, 0, -1)] + ["Liftoff!"]
    wait_for(lambda: held_lines(page) == expected, timeout=10)
    assert log_lines(page, base, run_id) == expected
