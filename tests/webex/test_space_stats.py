"""space_stats called as the runner calls it: the result is the simulator's ground truth,
and Stop ends it within a second, mid-scan, with no request sent after."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from typing import Any

import pytest

from flask_realtime.core.jobs import RunContext
from flask_realtime.webex.client import WebexAccess, static_token
from flask_realtime.webex.jobs import TEST_SPACE_PREFIX, clean_up_test_spaces, space_stats
from flask_realtime.webex.simulator import SimulatorConfig, SimulatorHandle

USER = "user1@example.com"


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(spaces=60, messages=12_000, latency_ms=5)


def context(sim: SimulatorHandle) -> RunContext:
    return RunContext("run-1", USER, {"webex": WebexAccess(sim.base_url, static_token(
        sim.token_for(USER)))})


def test_space_stats_equals_the_ground_truth(sim: SimulatorHandle) -> None:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        result = asyncio.run(space_stats(lambda: True, context(sim), concurrency=8))
    truth = sim.dataset.ground_truth(USER)
    assert result == truth
    assert any(r["messages"] == 0 and r["oldest"] is None for r in truth)
    assert max(r["messages"] for r in truth) > 1000  # more than one page of 1,000
    lines = output.getvalue().splitlines()
    assert sum(line.startswith("[") for line in lines) == len(truth)  # one per space
    assert lines[-1] == f"{len(truth)} spaces, {sum(r['messages'] for r in truth)} messages"


def test_stop_mid_scan_ends_within_a_second_and_sends_nothing_more(
        sim: SimulatorHandle) -> None:
    sim.config.latency_ms = 400
    accepted = sim.simulator.limiter.accepted
    stop = [False]

    async def scan_then_stop() -> tuple[float, int, int]:
        task = asyncio.create_task(space_stats(lambda: not stop[0], context(sim),
                                               concurrency=4))
        while len(accepted) < 3:  # the room list, then message pages in flight
            await asyncio.wait([task], timeout=0.01)
            assert not task.done()
        stop[0] = True
        asked = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.monotonic() - asked
        sent = len(accepted)
        await asyncio.sleep(2 * sim.config.latency_ms / 1000)  # a window to see none arrive
        return took, sent, len(accepted)

    took, sent, later = asyncio.run(scan_then_stop())
    assert took < 1.0, f"stopped after {took:.2f}s"
    assert later == sent


def test_clean_up_deletes_only_marked_spaces(sim: SimulatorHandle) -> None:
    async def setup() -> None:
        async with WebexAccess(sim.base_url, static_token(sim.token_for(USER))) as webex:
            await webex.create_room(f"{TEST_SPACE_PREFIX} a")
            await webex.create_room(f"not {TEST_SPACE_PREFIX} b")

    asyncio.run(setup())
    before = {r["title"] for r in sim.dataset.ground_truth(USER)}
    with contextlib.redirect_stdout(io.StringIO()):
        dry: list[dict[str, Any]] = asyncio.run(clean_up_test_spaces(lambda: True,
                                                                     context(sim)))
        assert [r["title"] for r in dry] == [f"{TEST_SPACE_PREFIX} a"]
        assert {r["title"] for r in sim.dataset.ground_truth(USER)} == before
        done = asyncio.run(clean_up_test_spaces(lambda: True, context(sim), dry_run=False))
    assert [r["deleted"] for r in done] == [True]
    assert {r["title"] for r in sim.dataset.ground_truth(USER)} == before - {
        f"{TEST_SPACE_PREFIX} a"}


def test_space_stats_keeps_two_charts_when_matplotlib_is_installed(
        sim: SimulatorHandle) -> None:
    pytest.importorskip("matplotlib")  # the charts extra; the test extra installs it
    run = context(sim)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        rows = asyncio.run(space_stats(lambda: True, run, concurrency=8))
    listed = {a["name"]: a for a in run.artifacts.listing()}
    assert set(listed) == {"messages-per-space.png", "activity.png"}
    assert all(a["picture"] == "png" and a["size"] > 1000 for a in listed.values())
    assert "chart: messages-per-space.png" in output.getvalue().splitlines()
    from PIL import Image  # matplotlib's own dependency

    chart = run.artifacts.get("messages-per-space.png")
    assert chart is not None
    width, height = Image.open(io.BytesIO(chart)).size
    spaces = min(20, sum(1 for r in rows if r["messages"]))
    assert width >= 600 and height >= 100 + 25 * spaces  # a bar for each of the 20


def test_without_matplotlib_space_stats_says_charts_need_the_extra(
        sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_realtime.webex import charts

    monkeypatch.setattr(charts, "available", lambda: False)
    run = context(sim)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        result = asyncio.run(space_stats(lambda: True, run, concurrency=8))
    assert result == sim.dataset.ground_truth(USER)
    assert output.getvalue().splitlines().count(charts.NEEDS_EXTRA) == 1
    assert "pip install 'flask-realtime[charts]'" in charts.NEEDS_EXTRA
    assert run.artifacts.listing() == []


def test_the_timeline_counts_per_month_over_a_long_span() -> None:
    pytest.importorskip("matplotlib")
    from flask_realtime.webex import charts

    short = charts.activity({"2026-01-01": 3, "2026-01-03": 1, "bad": 9})
    long = charts.activity({"2024-01-01": 3, "2026-01-03": 1})
    assert short is not None and long is not None and short.kind == long.kind == "png"
    assert charts.activity({}) is None and charts.messages_per_space([{"messages": 0}]) is None


def test_a_chart_that_fails_to_draw_is_a_warning_and_the_table_stays(
        sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_realtime.webex import charts

    def broken(rows: Any) -> Any:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(charts, "available", lambda: True)
    monkeypatch.setattr(charts, "messages_per_space", broken)
    monkeypatch.setattr(charts, "activity", lambda days: None)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        result = asyncio.run(space_stats(lambda: True, context(sim), concurrency=8))
    assert result == sim.dataset.ground_truth(USER)
    assert ("warning: a chart could not be drawn (RuntimeError: no fonts); the table has "
            "the same figures.") in output.getvalue().splitlines()
