"""The client's loops end: a refused token, a listing and a Retry-After each have a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from flask_realtime.webex.client import WebexAccess, WebexLoginError, static_token
from flask_realtime.webex.simulator import SimulatorHandle

USER = "user1@example.com"


def test_a_refused_token_is_renewed_once_then_ends_with_log_in_again(
        sim: SimulatorHandle, run: Callable[..., Any]) -> None:
    asked: list[bool] = []

    async def provider(force_refresh: bool = False) -> str:
        asked.append(force_refresh)
        if len(asked) > 3:  # fail here rather than loop until the test's deadline
            raise AssertionError(f"the provider was asked {len(asked)} times")
        return "revoked"

    webex = WebexAccess(sim.base_url, provider)

    async def me() -> None:
        async with webex:
            await webex.me()

    with pytest.raises(WebexLoginError) as caught:
        run(me())
    assert caught.value.status == 401 and "Log in again" in str(caught.value)
    # The renewal gave the refused token back: sending it again would be refused too.
    assert asked == [False, True] and webex.requests_sent == 1


def test_each_next_page_continues_the_listing(
        sim: SimulatorHandle, run: Callable[..., Any]) -> None:
    room = max(sim.dataset.ground_truth(USER), key=lambda r: r["messages"])
    assert room["messages"] > 250  # several pages of 100

    async def ids() -> list[str]:
        seen: list[str] = []
        async with WebexAccess(sim.base_url, static_token(sim.token_for(USER))) as webex:
            async for page in webex.pages("messages", roomId=room["id"], max=100):
                seen += [message["id"] for message in page]
                if len(seen) > room["messages"]:  # more than there are: pages repeat
                    break
        return seen

    seen = run(ids())
    assert len(seen) == len(set(seen)) == room["messages"]


def test_a_long_retry_after_is_waited_only_max_retry_after(run: Callable[..., Any]) -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if len(sent) == 1:  # a server asking for an hour's pause
            return httpx.Response(429, headers={"Retry-After": "3600"}, json={})
        return httpx.Response(200, json={"id": "me"})

    async def me() -> Any:
        async with WebexAccess("https://webex.invalid/v1", static_token("t"),
                               max_retry_after=0.05,
                               transport=httpx.MockTransport(answer)) as webex:
            # 100 times the cap, and 1/720 of what the header asks for.
            return await asyncio.wait_for(webex.get("people/me"), timeout=5)

    assert run(me()) == {"id": "me"}
    assert sent == ["/v1/people/me"] * 2
