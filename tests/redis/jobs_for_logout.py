"""Jobs for the logout tests on Redis: a long job that keeps asking for its Webex token."""

from __future__ import annotations

import asyncio

from flask_realtime import Running, job
from flask_realtime.core.jobs import RunContext


@job
async def token_loop(running: Running, context: RunContext) -> None:
    """Ask for the Webex token again and again, as a long job calling Webex does."""
    webex = context.services["webex"]
    while running():
        await webex.token_provider(False)
        await asyncio.sleep(0.01)
