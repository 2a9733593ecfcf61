"""The client under what real Webex does: long Retry-After, outages, 423, rate limits,
expiring tokens, odd next links. Against a scripted Webex (``httpx.MockTransport``)
and a fake clock, so a 60 s pause costs no time and its length can be checked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from flask_realtime.webex.client import WebexAccess, WebexApiError, WebexLoginError, static_token
from flask_realtime.webex.slots import PrioritySlots

BASE = "https://webex.invalid/v1"


class FakeClock:
    """The client's clock and sleep: waiting moves the time on at once, and is noted."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.waits: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep_until(self, deadline: float) -> None:
        if deadline > self.time:
            self.waits.append(round(deadline - self.time, 3))
            self.time = deadline
        await asyncio.sleep(0)


Handler = Callable[[httpx.Request], Any]


def webex(answer: Handler, clock: FakeClock, notices: list[str] | None = None,
          **options: Any) -> WebexAccess:
    client = WebexAccess(BASE, options.pop("provider", static_token("t")),
                         transport=httpx.MockTransport(answer), clock=clock, **options)
    if notices is not None:
        client.notify = notices.append
    return client


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"path": request.url.path})


def test_a_60_s_retry_after_is_waited_in_full_and_said_once(run: Callable[..., Any]) -> None:
    clock, notices, sent = FakeClock(), list[str](), list[float]()

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(clock.time)
        if clock.time < 1060:
            return httpx.Response(429, headers={"Retry-After": "60"}, json={})
        return ok(request)

    async def burst() -> list[Any]:
        async with webex(answer, clock, notices) as client:
            return await asyncio.gather(*(client.get(f"people/{n}") for n in range(10)))

    assert len(run(burst())) == 10
    assert clock.waits == [60]
    assert len(notices) == 1 and notices[0].startswith("Webex asked us to wait 60 s")


def test_a_retry_after_above_the_cap_is_waited_for_the_cap_300_s_by_default(
        run: Callable[..., Any]) -> None:
    clock, notices = FakeClock(), list[str]()
    answers = iter([httpx.Response(429, headers={"Retry-After": "3600"}, json={})])

    async def me() -> Any:
        async with webex(lambda r: next(answers, None) or ok(r), clock, notices) as client:
            return await client.get("people/me")

    assert run(me()) == {"path": "/v1/people/me"}
    assert clock.waits == [300]
    assert "3600 s" in notices[0] and "300 s" in notices[0]


@pytest.mark.parametrize("status", [423, 503])
def test_423_and_503_with_retry_after_are_waited_not_final(
        run: Callable[..., Any], status: int) -> None:
    clock = FakeClock()
    answers = iter([httpx.Response(status, headers={"Retry-After": "30"}, json={})])

    async def me() -> Any:
        async with webex(lambda r: next(answers, None) or ok(r), clock) as client:
            return await client.get("people/me")

    assert run(me()) == {"path": "/v1/people/me"}
    assert clock.waits == [30]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_sixty_seconds_of_errors_anywhere_are_survived_with_one_line_per_pause(
        run: Callable[..., Any], status: int) -> None:
    clock, notices, sent = FakeClock(), list[str](), list[float]()

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(clock.time)
        if clock.time < 1060:  # a minute of trouble, no Retry-After
            return httpx.Response(status, json={"message": "down"})
        return ok(request)

    async def burst() -> list[Any]:
        async with webex(answer, clock, notices) as client:
            return await asyncio.gather(*(client.get(f"rooms/{n}") for n in range(20)))

    assert len(run(burst())) == 20
    assert len(notices) == len(clock.waits) < 20  # one line per pause, not per request
    assert clock.waits[:4] == sorted(clock.waits[:4])  # growing pauses
    during = [t for t in sent if t < 1060]
    assert len(during) < 20 + 2 * len(clock.waits)  # probing, not hammering


def test_a_request_gives_up_after_retry_for_seconds_of_errors(run: Callable[..., Any]) -> None:
    clock = FakeClock()

    async def me() -> Any:
        async with webex(lambda r: httpx.Response(503, json={"message": "down"}), clock,
                         retry_for=100) as client:
            return await client.get("people/me")

    with pytest.raises(WebexApiError) as caught:
        run(me())
    assert caught.value.status == 503
    assert 100 <= clock.time - 1000 <= 100 + 30


def test_after_a_429_concurrency_ramps_up_instead_of_bursting(run: Callable[..., Any]) -> None:
    clock = FakeClock()
    state = {"in_flight": 0, "limited": False}
    after: list[int] = []  # requests in flight as each one arrives after the 429

    async def answer(request: httpx.Request) -> httpx.Response:
        state["in_flight"] += 1
        try:
            if state["limited"]:
                after.append(state["in_flight"])
            await asyncio.sleep(0.002)  # a round trip, so that requests overlap
            if not state["limited"]:
                state["limited"] = True
                return httpx.Response(429, headers={"Retry-After": "1"}, json={})
            return ok(request)
        finally:
            state["in_flight"] -= 1

    async def scan() -> None:
        async with webex(answer, clock, concurrency=32) as client:
            await asyncio.gather(*(client.get(f"rooms/{n}") for n in range(400)))

    run(scan())
    assert max(after[:40]) <= 18  # about halved (then +1 a round), not all 32 at once
    assert max(after) > 16  # and back up


def test_slots_put_a_retry_before_requests_that_queued_after_it(
        run: Callable[..., Any]) -> None:
    async def order() -> list[str]:
        slots = PrioritySlots(1)
        served: list[str] = []
        first = await slots.acquire(1)

        async def wait(name: str, priority: int, ticket: int | None = None) -> None:
            await slots.acquire(priority, ticket)
            served.append(name)
            slots.release()

        tasks = [asyncio.create_task(wait(n, 1)) for n in ("later-a", "later-b")]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(wait("retry", 1, first)))
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        return served

    assert run(order()) == ["retry", "later-a", "later-b"]


def test_a_retried_request_keeps_its_place_in_the_queue(run: Callable[..., Any]) -> None:
    clock, sent = FakeClock(), []
    failed: set[int] = set()

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/v1/rooms/1" and not failed:
            failed.add(1)
            return httpx.Response(502, json={})
        return ok(request)

    async def three() -> None:
        async with webex(answer, clock, concurrency=1) as client:
            await asyncio.gather(*(client.get(f"rooms/{n}") for n in (1, 2, 3)))

    run(three())
    assert sent == ["/v1/rooms/1", "/v1/rooms/1", "/v1/rooms/2", "/v1/rooms/3"]


def test_tokens_that_expire_again_and_again_are_renewed_each_time(
        run: Callable[..., Any]) -> None:
    clock = FakeClock()
    issued = ["t0"]
    accepted: dict[str, int] = {}

    async def provider(force_refresh: bool = False) -> str:
        if force_refresh:
            await asyncio.sleep(0.001)  # a renewal takes a round trip
            issued.append(f"t{len(issued)}")
        return issued[-1]

    async def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        await asyncio.sleep(0.001)
        if token != issued[-1] or accepted.get(token, 0) >= 5:  # short-lived tokens
            return httpx.Response(401, json={"message": "expired"})
        accepted[token] = accepted.get(token, 0) + 1
        return ok(request)

    async def many() -> int:
        async with webex(answer, clock, provider=provider, concurrency=4) as client:
            await asyncio.gather(*(client.get(f"rooms/{n}") for n in range(60)))
            return client.requests_sent

    sent = run(many())
    assert len(issued) >= 12  # renewed again whenever the renewed token had expired too
    assert sent < 60 + 4 * len(issued)


def test_a_401_renews_once_for_all_waiting_requests(run: Callable[..., Any]) -> None:
    clock, asked = FakeClock(), []

    async def provider(force_refresh: bool = False) -> str:
        asked.append(force_refresh)
        await asyncio.sleep(0.001)
        return "new" if force_refresh else "old"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] != "Bearer new":
            return httpx.Response(401, json={"message": "expired"})
        return ok(request)

    async def many() -> None:
        async with webex(answer, clock, provider=provider, concurrency=8) as client:
            await asyncio.gather(*(client.get(f"rooms/{n}") for n in range(30)))

    run(many())
    assert asked == [False, True]


def test_an_unrenewable_login_ends_every_request_at_once_with_log_in_again(
        run: Callable[..., Any]) -> None:
    clock, sent = FakeClock(), []

    async def provider(force_refresh: bool = False) -> str:
        if force_refresh:
            raise RuntimeError("Webex refused to renew your access: log in again.")
        return "revoked"

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(401, json={"message": "The request requires a valid token."})

    async def many() -> None:
        async with webex(answer, clock, provider=provider, concurrency=4) as client:
            await asyncio.gather(*(client.get(f"rooms/{n}") for n in range(50)))

    with pytest.raises(WebexLoginError) as caught:
        run(many())
    assert "Log in again" in str(caught.value) and caught.value.status == 401
    assert len(sent) <= 4  # the first window's requests, not one per remaining space


def paged(request: httpx.Request, link: str) -> httpx.Response:
    """Page 1 links to ``link``; page 2 is the last."""
    if request.url.params.get("cursor") == "2":
        return httpx.Response(200, json={"items": [{"n": 2}]})
    return httpx.Response(200, json={"items": [{"n": 1}]}, headers={
        "Link": f'<{link}>; rel="next"'})


@pytest.mark.parametrize("link", [
    "/v1/messages?roomId=r&cursor=2&max=1000",          # relative to the host
    "messages?roomId=r&cursor=2&max=1000",              # relative to the path
    f"{BASE}/messages?roomId=r&cursor=2&max=null",      # max=null, as Webex sends at times
    f"{BASE}/messages?roomId=r&cursor=2",
])
def test_next_links_are_followed_whatever_their_form(run: Callable[..., Any],
                                                     link: str) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path != "/v1/messages" or request.url.params.get("max") in ("null", ""):
            return httpx.Response(400, json={"message": "bad request"})
        return paged(request, link)

    async def listing() -> list[Any]:
        async with webex(answer, FakeClock()) as client:
            return [item async for item in client.items("messages", roomId="r")]

    assert run(listing()) == [{"n": 1}, {"n": 2}]
    assert seen[1].startswith(f"{BASE}/messages?") and "max=1000" in seen[1]


def test_a_next_link_to_another_host_is_not_sent_the_token(run: Callable[..., Any]) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return paged(request, "https://elsewhere.invalid/v1/messages?cursor=2")

    async def listing() -> list[Any]:
        async with webex(answer, FakeClock()) as client:
            return [item async for item in client.items("messages", roomId="r")]

    with pytest.raises(WebexApiError, match=r"elsewhere\.invalid"):
        run(listing())
    assert seen == ["webex.invalid"]


def test_rooms_are_listed_sorted_by_id(run: Callable[..., Any]) -> None:
    asked: list[httpx.QueryParams] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params)
        return httpx.Response(200, json={"items": []})

    async def rooms() -> list[Any]:
        async with webex(answer, FakeClock()) as client:
            return [room async for room in client.list_rooms()]

    assert run(rooms()) == []
    assert asked[0]["sortBy"] == "id"


def test_httpx_request_lines_stay_out_of_a_runs_info_log(
        run: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    async def many() -> None:
        async with webex(ok, FakeClock()) as client:
            await asyncio.gather(*(client.get(f"rooms/{n}") for n in range(50)))

    with caplog.at_level(logging.INFO):
        run(many())
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(info) <= 1, [r.getMessage() for r in info]
