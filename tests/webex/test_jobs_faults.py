"""The Webex jobs against a simulator that misbehaves as Webex does: 403 and deleted
spaces, outages, 423, rate limits, short-lived tokens, odd next links; partial
failures and Stop in the test-space jobs, and re-running them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import wcwidth

from flask_realtime.core.jobs import RunContext
from flask_realtime.webex.client import WebexAccess, WebexLoginError, static_token
from flask_realtime.webex.jobs import (
    TEST_SPACE_PREFIX,
    _print_table,
    clean_up_test_spaces,
    create_test_spaces,
    space_stats,
)
from flask_realtime.webex.simulator import SimulatorConfig, SimulatorHandle, start_simulator

USER = "user1@example.com"


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(spaces=24, messages=2400)


def context(sim: SimulatorHandle, provider: Any = None, **options: Any) -> RunContext:
    webex = WebexAccess(sim.base_url, provider or static_token(sim.token_for(USER)),
                        **options)
    return RunContext("run-1", USER, {"webex": webex})


def job(work: Any) -> tuple[Any, list[str]]:
    """Run a job coroutine; its result and printed lines."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        result = asyncio.run(work)
    return result, output.getvalue().splitlines()


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def started(config: SimulatorConfig) -> Iterator[SimulatorHandle]:
    handle = start_simulator(config)
    yield handle
    handle.stop()


# -- space_stats ---------------------------------------------------------------------------
@pytest.fixture
def faulty_sim() -> Iterator[SimulatorHandle]:
    yield from started(SimulatorConfig(spaces=24, messages=2400, forbidden_spaces=2,
                                       vanishing_spaces=1))


def test_unreadable_spaces_are_rows_saying_why_and_the_rest_is_counted(
        faulty_sim: SimulatorHandle) -> None:
    sim = faulty_sim
    truth, unreadable = sim.dataset.ground_truth(USER), sim.dataset.unreadable(USER)
    assert sorted(unreadable.values()) == [403, 403, 404]
    result, lines = job(space_stats(lambda: True, context(sim), concurrency=8))
    assert [r["id"] for r in result] == [r["id"] for r in truth]  # every space, in order
    for row in result:
        status = unreadable.get(row["id"])
        if status is None:
            assert row == {**by_id(truth)[row["id"]], "error": None}
        else:
            assert row["messages"] is None and row["error"].startswith(f"{status} ")
            assert "[trackingId " in row["error"]
    assert any(r["error"] and r["error"].startswith("403 Failed to get activity")
               for r in result)
    assert f"warning: 3 of {len(truth)} spaces could not be read" in "\n".join(lines)
    assert lines[-1].endswith("; 3 could not be read")


def test_a_room_list_that_keeps_failing_fails_the_run() -> None:
    config = SimulatorConfig(spaces=3, messages=30, outage_seconds=60)
    with start_simulator(config) as sim, pytest.raises(
            RuntimeError, match="Could not list your Webex spaces"):
        job(space_stats(lambda: True, context(sim, retry_for=0.5, backoff=0.05)))


def test_an_outage_mid_scan_costs_time_not_the_scan() -> None:
    config = SimulatorConfig(spaces=24, messages=2400, latency_ms=5, outage_seconds=1.5,
                             outage_after_requests=6)
    with start_simulator(config) as sim:
        truth = sim.dataset.ground_truth(USER)
        webex_context = context(sim)
        result, lines = job(space_stats(lambda: True, webex_context, concurrency=8))
        answered_503 = webex_context.services["webex"].retried
    assert result == truth
    pauses = [line for line in lines if line.startswith("Webex asked us to wait")]
    assert 1 <= len(pauses) <= 3 and answered_503 > len(pauses)  # a line per pause


def test_a_429_is_not_burst_into_again() -> None:
    # The old client bursting back in after every pause: 118 of 219 requests got 429.
    config = SimulatorConfig(spaces=100, messages=400, rate_limit=20, latency_ms=20)
    with start_simulator(config) as sim:
        truth = sim.dataset.ground_truth(USER)
        webex_context = context(sim)
        result, _ = job(space_stats(lambda: True, webex_context, concurrency=32))
        webex = webex_context.services["webex"]
    assert result == truth
    assert webex.rate_limited * 2 < webex.requests_sent, (webex.rate_limited,
                                                          webex.requests_sent)


def test_locked_spaces_are_waited_for_and_counted() -> None:
    config = SimulatorConfig(spaces=12, messages=600, locked_spaces=2, locked_times=2)
    with start_simulator(config) as sim:
        truth = sim.dataset.ground_truth(USER)
        result, _ = job(space_stats(lambda: True, context(sim), concurrency=8))
    assert result == truth


def test_relative_next_links_with_max_null_are_followed() -> None:
    config = SimulatorConfig(spaces=6, messages=6000, relative_next_links=True,
                             next_link_max_null=True)
    with start_simulator(config) as sim:
        truth = sim.dataset.ground_truth(USER)
        assert max(r["messages"] for r in truth) > 1000  # several pages
        result, _ = job(space_stats(lambda: True, context(sim)))
    assert result == truth


def test_tokens_expiring_mid_scan_are_renewed_and_the_scan_completes() -> None:
    config = SimulatorConfig(spaces=24, messages=2400, latency_ms=20)
    with start_simulator(config) as sim:
        renewals: list[bool] = []

        async def provider(force_refresh: bool = False) -> str:
            renewals.append(force_refresh)
            return sim.token_for(USER, lifetime=0.1)  # expires several times per scan

        truth = sim.dataset.ground_truth(USER)
        result, _ = job(space_stats(lambda: True, context(sim, provider), concurrency=2))
    assert result == truth
    assert renewals.count(True) >= 2


def test_an_unrenewable_login_fails_the_run_at_once_with_log_in_again(
        sim: SimulatorHandle) -> None:
    webex_context = context(sim, static_token("revoked"))
    with pytest.raises(WebexLoginError, match="Log in again"):
        job(space_stats(lambda: True, webex_context))
    assert webex_context.services["webex"].requests_sent == 1


def test_rows_lead_with_title_and_end_with_the_id(faulty_sim: SimulatorHandle) -> None:
    result, _ = job(space_stats(lambda: True, context(faulty_sim)))
    assert list(result[0]) == ["title", "type", "messages", "oldest", "newest", "error", "id"]


def test_rows_have_no_error_column_when_every_space_was_read(sim: SimulatorHandle) -> None:
    result, _ = job(space_stats(lambda: True, context(sim)))
    assert list(result[0]) == ["title", "type", "messages", "oldest", "newest", "id"]


def test_the_printed_table_keeps_its_columns_with_wide_titles_and_emoji() -> None:
    row = {"type": "group", "messages": 3, "oldest": "2019-01-07T09:00:00.000Z",
           "newest": "2019-01-08T09:00:00.000Z", "id": "x"}
    titles = ["東京 Design", "🚀 Rockets 🚀", "Café Zürich", "\u202eRTL override",
              "長い" * 40, "plain"]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        _print_table([{"title": t, **row} for t in titles])
    lines = [line for line in output.getvalue().splitlines() if line]
    assert len(lines) == 1 + len(titles)
    assert len({wcwidth.width(line) for line in lines[1:]}) == 1, lines  # aligned
    header = lines[0]
    assert all(wcwidth.width(line[:line.index("group")]) == wcwidth.width(
        header[:header.index("type")]) for line in lines[1:])
    assert "<U+202E>" in output.getvalue() and "\u202e" not in output.getvalue()


# -- create_test_spaces and clean_up_test_spaces -------------------------------------------
class Refusing(httpx.AsyncHTTPTransport):
    """The real simulator, except that requests about one space (found by its title
    when it is created) are answered 403 until ``heal()``."""

    def __init__(self, title_suffix: str = "", method: str = "") -> None:
        super().__init__()
        self.title_suffix, self.method = title_suffix, method
        self.refused_ids: set[str] = set()
        self.healed = False

    def heal(self) -> None:
        self.healed = True

    def refuse_room(self, room_id: str) -> None:
        self.refused_ids.add(room_id)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode() if request.method == "POST" else ""
        about = {request.url.params.get("roomId"), request.url.path.rsplit("/", 1)[-1],
                 json.loads(body).get("roomId") if body.startswith("{") else None}
        if not self.healed and about & self.refused_ids and (
                not self.method or request.method == self.method):
            return httpx.Response(403, json={"message": "Not allowed (test).",
                                             "trackingId": "TEST_1"})
        response = await super().handle_async_request(request)
        if request.url.path.endswith("/rooms") and request.method == "POST" and (
                self.title_suffix and json.loads(body)["title"].endswith(self.title_suffix)):
            await response.aread()
            self.refuse_room(response.json()["id"])
        return response


def test_test_spaces_a_failing_space_is_reported_and_a_rerun_finishes_it(
        sim: SimulatorHandle) -> None:
    refusing = Refusing(title_suffix="space 2")
    params = {"count": 3, "members": 2, "messages": 3}
    rows, lines = job(create_test_spaces(lambda: True, context(sim, transport=refusing),
                                         **params))
    assert [(r["title"], r["state"]) for r in rows] == [
        (f"{TEST_SPACE_PREFIX} space 1", "complete"), (f"{TEST_SPACE_PREFIX} space 2", "failed"),
        (f"{TEST_SPACE_PREFIX} space 3", "complete")]
    assert rows[1]["error"] == "403 Not allowed (test). [trackingId TEST_1]"
    assert any(line.startswith("warning: 1 of 3 spaces failed") for line in lines)
    again, _ = job(create_test_spaces(lambda: True, context(sim), **params))
    assert [r["state"] for r in again] == ["complete (resumed)"] * 3
    assert [r["id"] for r in again] == [r["id"] for r in rows]  # no second space 2
    made = [r for r in sim.dataset.ground_truth(USER) if r["title"].startswith(TEST_SPACE_PREFIX)]
    assert len(made) == 3 and all(r["messages"] == 3 for r in made)


def test_test_spaces_stop_reports_what_is_half_made_and_a_rerun_finishes_it() -> None:
    with start_simulator(SimulatorConfig(spaces=2, messages=10, latency_ms=60)) as sim:
        accepted = sim.simulator.limiter.accepted
        params = {"count": 3, "members": 1, "messages": 6}
        stop = [False]

        async def stop_midway() -> None:
            task = asyncio.ensure_future(create_test_spaces(lambda: not stop[0], context(sim),
                                                            **params))
            while len(accepted) < 8:  # the list, three spaces, some members and messages
                await asyncio.wait([task], timeout=0.01)
                assert not task.done()
            stop[0] = True
            with pytest.raises(asyncio.CancelledError):
                await task

        _, lines = job(stop_midway())
        half = [line for line in lines if line.startswith("stopped: ")]
        assert half and all("is half made" in line for line in half)
        assert lines[-1].startswith("Run create_test_spaces again")
        rows, _ = job(create_test_spaces(lambda: True, context(sim), **params))
        assert all(r["state"].startswith("complete") for r in rows)
        made = [r for r in sim.dataset.ground_truth(USER)
                if r["title"].startswith(TEST_SPACE_PREFIX)]
        assert len(made) == 3 and all(r["messages"] == 6 for r in made)  # nothing twice


def test_clean_up_reports_a_space_it_cannot_delete_and_a_rerun_deletes_it(
        sim: SimulatorHandle) -> None:
    job(create_test_spaces(lambda: True, context(sim), count=3, members=0, messages=0))
    stuck = next(r["id"] for r in sim.dataset.ground_truth(USER)
                 if r["title"] == f"{TEST_SPACE_PREFIX} space 2")
    refusing = Refusing(method="DELETE")
    refusing.refuse_room(stuck)
    rows, _ = job(clean_up_test_spaces(lambda: True, context(sim, transport=refusing),
                                           dry_run=False))
    assert sorted((r["deleted"], r["error"]) for r in rows) == [
        (False, "403 Not allowed (test). [trackingId TEST_1]"), (True, None), (True, None)]
    assert [r["id"] for r in sim.dataset.ground_truth(USER)
            if r["title"].startswith(TEST_SPACE_PREFIX)] == [stuck]
    again, _ = job(clean_up_test_spaces(lambda: True, context(sim), dry_run=False))
    assert [(r["id"], r["deleted"]) for r in again] == [(stuck, True)]


def test_clean_up_counts_a_space_deleted_meanwhile_as_deleted(sim: SimulatorHandle) -> None:
    job(create_test_spaces(lambda: True, context(sim), count=1, members=0, messages=0))
    room = next(r["id"] for r in sim.dataset.ground_truth(USER)
                if r["title"].startswith(TEST_SPACE_PREFIX))

    class DeletedMeanwhile(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "DELETE":
                sim.dataset.remove_room(room)  # someone else was quicker
            return await super().handle_async_request(request)

    rows, _ = job(clean_up_test_spaces(lambda: True, context(sim, transport=DeletedMeanwhile()),
                                       dry_run=False))
    assert [(r["id"], r["deleted"], r["error"]) for r in rows] == [(room, True, None)]
