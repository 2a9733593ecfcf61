"""The async client against the simulator: paging, 429, retries, errors, token refresh."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flask_realtime.webex.client import WebexAccess, WebexApiError, static_token
from flask_realtime.webex.simulator import SimulatorConfig, SimulatorHandle, start_simulator

USER = "user1@example.com"


def access(sim: SimulatorHandle, **options: Any) -> WebexAccess:
    return WebexAccess(sim.base_url, static_token(sim.token_for(USER)), **options)


def test_listing_follows_every_next_link(sim: SimulatorHandle, run: Callable[..., Any]) -> None:
    truth = sim.dataset.ground_truth(USER)
    biggest = max(truth, key=lambda r: r["messages"])
    assert biggest["messages"] > 250  # several pages of 100

    async def scan() -> tuple[list[str], list[int], int]:
        async with access(sim) as webex:
            rooms = [room.id async for room in webex.list_rooms()]
            sizes = [len(page) async for page in webex.pages(
                "messages", roomId=biggest["id"], max=100)]
            return rooms, sizes, webex.requests_sent

    rooms, sizes, sent = run(scan())
    assert rooms == [r["id"] for r in truth]
    assert sum(sizes) == biggest["messages"] and max(sizes) == 100
    assert sent == 1 + len(sizes)


def test_messages_come_newest_first_and_before_filters(
        sim: SimulatorHandle, run: Callable[..., Any]) -> None:
    room = max(sim.dataset.ground_truth(USER), key=lambda r: r["messages"])

    async def read() -> tuple[list[str], list[str]]:
        async with access(sim) as webex:
            every = [m.created async for m in webex.list_messages(room["id"])]
            middle = every[len(every) // 2]
            older = [m.created async for m in webex.list_messages(room["id"], before=middle)]
            return every, older

    every, older = run(read())
    assert every == sorted(every, reverse=True)
    assert every[0] == room["newest"] and every[-1] == room["oldest"]
    assert older and all(created < every[len(every) // 2] for created in older)


@pytest.fixture
def limited_sim() -> Iterator[SimulatorHandle]:
    handle = start_simulator(SimulatorConfig(spaces=3, messages=30, rate_limit=5))
    yield handle
    handle.stop()


def test_429_waits_retry_after_then_succeeds(limited_sim: SimulatorHandle,
                                             run: Callable[..., Any]) -> None:
    sim = limited_sim

    async def burst() -> tuple[float, int]:
        async with access(sim, concurrency=10) as webex:
            started = time.monotonic()
            for _ in range(8):  # the limit is 5 per second
                await webex.me()
            return time.monotonic() - started, webex.rate_limited

    elapsed, limited = run(burst())
    assert limited >= 1
    assert elapsed >= 1.0  # Retry-After: 1 was honoured, not hammered
    assert sim.simulator.limiter.max_per_second() <= 5


def test_server_errors_are_retried(sim: SimulatorHandle, run: Callable[..., Any]) -> None:
    sim.fail_next(503, 500)

    async def me() -> tuple[str, int]:
        async with access(sim, backoff=0.01) as webex:
            person = await webex.me()
            return person.emails[0], webex.requests_sent

    assert run(me()) == (USER, 3)


def test_errors_carry_status_message_and_tracking_id(sim: SimulatorHandle,
                                                     run: Callable[..., Any]) -> None:
    async def missing() -> None:
        async with access(sim) as webex:
            await webex.get_room("not-a-room")

    with pytest.raises(WebexApiError) as caught:
        run(missing())
    error = caught.value
    assert error.status == 404 and "could not be found" in error.message
    assert error.tracking_id and error.tracking_id.endswith("-SIM")
    assert error.tracking_id in str(error)


def test_a_401_asks_the_provider_for_a_fresh_token_once(
        sim: SimulatorHandle, run: Callable[..., Any]) -> None:
    asked: list[bool] = []
    good = sim.token_for(USER)

    async def provider(force_refresh: bool = False) -> str:
        asked.append(force_refresh)
        return good if force_refresh else "expired-token"

    async def me() -> str:
        async with WebexAccess(sim.base_url, provider) as webex:
            return (await webex.me()).emails[0]

    assert run(me()) == USER
    assert asked == [False, True]


def test_a_token_refused_twice_is_an_error_not_a_loop(sim: SimulatorHandle,
                                                      run: Callable[..., Any]) -> None:
    async def me() -> None:
        async with WebexAccess(sim.base_url, static_token("revoked")) as webex:
            await webex.me()

    with pytest.raises(WebexApiError) as caught:
        run(me())
    assert caught.value.status == 401


def test_a_space_the_user_is_not_in_is_404(sim: SimulatorHandle,
                                           run: Callable[..., Any]) -> None:
    theirs = {r["id"] for r in sim.dataset.ground_truth("user2@example.com")}
    mine = {r["id"] for r in sim.dataset.ground_truth(USER)}
    not_mine = next(iter(theirs - mine), None)
    if not_mine is None:  # user1 is in every generated space: make one without them
        token2 = sim.token_for("user2@example.com")

        async def create() -> str:
            async with WebexAccess(sim.base_url, static_token(token2)) as webex:
                return (await webex.create_room("user2 only")).id

        not_mine = run(create())

    async def read() -> None:
        async with access(sim) as webex:
            async for _ in webex.list_messages(not_mine):
                pass

    with pytest.raises(WebexApiError) as caught:
        run(read())
    assert caught.value.status == 404
