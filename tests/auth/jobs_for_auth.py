"""Jobs for the login tests: they use the ``webex`` service a logged-in user's runs get."""

from __future__ import annotations

import asyncio
import threading

import httpx

from flask_realtime import Running, job
from flask_realtime.core.jobs import RunContext

#: Set by the test once the first access token has expired.
resume = threading.Event()


async def whoami(webex: object, token: str) -> str:
    base = str(webex.base_url).rstrip("/")  # type: ignore[attr-defined]
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base}/people/me",
                                    headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return str(response.json()["emails"][0])


@job
async def token_across_expiry(running: Running, context: RunContext) -> dict[str, object]:
    """Ask for a token, wait for the test (the token expires meanwhile), ask again."""
    webex = context.services["webex"]
    first = await webex.token_provider(False)
    print("first token works for", await whoami(webex, first))
    while running() and not resume.is_set():
        await asyncio.sleep(0.02)
    second = await webex.token_provider(False)
    print("second token works for", await whoami(webex, second))
    return {"renewed": first != second}


@job
async def webex_me(running: Running, context: RunContext) -> str:
    """Ask Webex who the run's user is, with a token from the provider."""
    webex = context.services["webex"]
    return await whoami(webex, await webex.token_provider(False))
