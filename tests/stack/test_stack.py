"""The product as deployed: Chromium -> nginx -> two web processes -> Redis -> RQ workers.

One user session through nginx: log in (demo mode), run space_stats, reload mid-run,
stop a run, lose the web process serving the page; the output is always whole: the
page holds every seq once, in order, and the same text as the stored log.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import held_lines, start_job, wait_js, wait_state
from tests.conftest import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "stack"


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def api(page: Any, base: str, path: str) -> Any:
    response = page.request.get(f"{base}{path}")
    assert response.ok, (path, response.status)
    return response.json() if "json" in response.headers["content-type"] else response.text()


def stored_lines(page: Any, base: str, run_id: str) -> list[str]:
    text: str = api(page, base, f"/api/runs/{run_id}/log?download=0")
    return text.splitlines()


def stored_seqs(page: Any, base: str, run_id: str) -> list[int]:
    page_ = api(page, base, f"/api/runs/{run_id}/lines?after=0&limit=10000")
    return list(range(page_["first_seq"], page_["first_seq"] + len(page_["lines"])))


def held_seqs(page: Any) -> list[int]:
    return page.evaluate(  # type: ignore[no-any-return]
        "window.flaskRealtime.session.lines.seq.slice()")


def assert_whole(page: Any, base: str, run_id: str) -> None:
    """Nothing missing or doubled: the page holds exactly what the store holds."""
    wait_for(lambda: held_seqs(page) == stored_seqs(page, base, run_id), timeout=10)
    assert held_lines(page) == stored_lines(page, base, run_id)


def transport(page: Any) -> str:
    return page.evaluate(  # type: ignore[no-any-return]
        "window.flaskRealtime.socket.io.engine.transport.name")


def serving_process(stack: dict[str, Any]) -> dict[str, Any]:
    """The web process holding the page's websocket (nginx keeps one connection to it)."""
    established: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "01":  # ESTABLISHED
                established[port] = established.get(port, 0) + 1
    busy = [p for p in stack["stack"].processes("web") if established.get(p["port"])]
    assert len(busy) == 1, f"expected one web process with connections, got {busy}"
    return busy[0]


def test_the_deployed_stack_end_to_end(stack: dict[str, Any], page: Any) -> None:
    base = stack["url"]
    page.goto(base)
    page.click("#login-button")  # demo mode: the simulator approves at once
    page.wait_for_selector("#conn.conn-connected")
    assert "user1@example.com" in page.text_content(".user")
    assert transport(page) == "websocket"  # upgraded through nginx, under gunicorn

    # space_stats on an RQ worker, watched through nginx; reload mid-run.
    run_id = start_job(page, "space_stats", concurrency=2)
    wait_js(page, "window.flaskRealtime.session.lastSeq >= 3", timeout=30)
    screenshot(page, "1-space_stats-before-reload")
    page.reload()
    assert api(page, base, f"/api/runs/{run_id}")["state"] == "running"  # really mid-run
    wait_js(page, f"window.flaskRealtime.session && window.flaskRealtime.session.runId"
                  f" === {run_id!r}", timeout=15)
    wait_state(page, "succeeded", timeout=60_000)
    assert_whole(page, base, run_id)
    assert any("spaces," in line for line in held_lines(page))
    page.wait_for_selector("#result table")
    screenshot(page, "2-space_stats-done")

    # Stop a second run.
    stopped_id = start_job(page, "countdown", n=1000, delay=0.05)
    wait_state(page, "running", timeout=20_000)
    page.click("#stop-btn")
    if page.locator("#stop-dialog[open]").count():
        page.click("#stop-dialog button[value=confirm], #stop-dialog .danger")
    wait_state(page, "stopped", timeout=20_000)
    assert api(page, base, f"/api/runs/{stopped_id}")["state"] == "stopped"
    screenshot(page, "3-countdown-stopped")

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
    survivor = serving_process(stack)
    assert survivor["pid"] != victim["pid"]
    wait_state(page, "succeeded", timeout=30_000)
    expected = [str(i) for i in range(n, 0, -1)] + ["Liftoff!"]
    wait_for(lambda: held_lines(page) == expected, timeout=10)
    assert_whole(page, base, run_id)
    screenshot(page, "4-countdown-after-failover")

    # Left running: stopping the stack must end its work-horse too (the fixture checks).
    start_job(page, "countdown", n=1000, delay=0.05)
    wait_js(page, "window.flaskRealtime.session.lastSeq >= 1", timeout=20)
