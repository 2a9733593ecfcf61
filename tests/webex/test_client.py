"""The async client against the simulator: paging, 429, retries, errors, token refresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from flask_realtime.webex.client import WebexAccess, WebexApiError, static_token
from flask_realtime.webex.simulator import SimulatorConfig, SimulatorHandle, start_simulator
from flask_realtime.webex.slots import PrioritySlots

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
    assert rooms == sorted(r["id"] for r in truth)  # asked for with sortBy=id
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


class RecordingTransport(httpx.AsyncHTTPTransport):
    """Notes when each request went out and when each answer (and its status) came."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []
        self.answers: list[tuple[float, int, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(time.monotonic())
        response = await super().handle_async_request(request)
        self.answers.append((time.monotonic(), response.status_code,
                             response.headers.get("Retry-After")))
        return response


def test_429_waits_retry_after_then_succeeds(limited_sim: SimulatorHandle,
                                             run: Callable[..., Any]) -> None:
    sim = limited_sim
    transport = RecordingTransport()

    async def burst() -> int:
        async with access(sim, concurrency=10, transport=transport) as webex:
            await asyncio.gather(*(webex.me() for _ in range(8)))  # the limit is 5 a second
            return webex.rate_limited

    assert run(burst()) >= 1
    limited = [(at, float(after or 0)) for at, status, after in transport.answers
               if status == 429]
    for answered, retry_after in limited:  # nothing went out before Retry-After was over
        assert retry_after >= 1
        assert not [t for t in transport.sent if answered < t < answered + retry_after]
    assert sim.simulator.limiter.max_per_second() <= 5


def test_slots_serve_waiters_by_priority_then_in_order(run: Callable[..., Any]) -> None:
    async def order() -> list[str]:
        slots = PrioritySlots(1)
        served: list[str] = []
        await slots.acquire(1)

        async def wait(name: str, priority: int) -> None:
            await slots.acquire(priority)
            served.append(name)
            slots.release()

        tasks = [asyncio.create_task(wait(n, p)) for n, p in
                 [("first-a", 1), ("first-b", 1), ("next", 0)]]
        await asyncio.sleep(0)  # let them queue
        slots.release()
        await asyncio.gather(*tasks)
        return served

    assert run(order()) == ["next", "first-a", "first-b"]


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


def test_requests_refused_at_once_renew_the_token_once(
        sim: SimulatorHandle, run: Callable[..., Any]) -> None:
    asked: list[bool] = []
    good = sim.token_for(USER)

    async def provider(force_refresh: bool = False) -> str:
        asked.append(force_refresh)
        await asyncio.sleep(0.01)  # a renewal takes a round trip
        return good if force_refresh else "expired-token"

    async def many() -> list[str]:
        async with WebexAccess(sim.base_url, provider) as webex:
            people = await asyncio.gather(*(webex.me() for _ in range(20)))
            return [p.emails[0] for p in people]

    assert run(many()) == [USER] * 20
    assert asked == [False, True]


def test_the_provider_is_asked_again_after_token_ttl(
        sim: SimulatorHandle, run: Callable[..., Any]) -> None:
    tokens = [sim.token_for(USER), sim.token_for(USER)]
    asked: list[bool] = []

    async def provider(force_refresh: bool = False) -> str:
        asked.append(force_refresh)
        return tokens[min(len(asked), 2) - 1]  # a renewal the login layer made meanwhile

    async def twice(ttl: float) -> None:
        async with WebexAccess(sim.base_url, provider, token_ttl=ttl) as webex:
            await webex.me()
            await webex.me()

    run(twice(ttl=60))
    assert asked == [False]
    asked.clear()
    run(twice(ttl=0))
    assert asked == [False, False]
