"""The client's own transport (aiohttp's connections under httpx's API) on real sockets:
what the scripted-Webex tests cannot show, since they replace the transport.

A connection that cannot be made, or that Webex drops mid-answer, is "could not reach
Webex" and retried like an outage, never a traceback from the HTTP library; and the
default transport is the aiohttp one whose CPU cost docs/performance.md measures.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from httpx_aiohttp import AiohttpTransport

from flask_realtime.webex.client import WebexAccess, WebexApiError, static_token
from flask_realtime.webex.simulator import SimulatorHandle
from tests.processes import free_port


def quick(base: str) -> WebexAccess:
    """A client that gives up after half a second of trouble."""
    return WebexAccess(base, static_token("t"), retry_for=0.5, backoff=0.05, max_backoff=0.1)


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """A server that reads each request and closes the connection without an answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                accepted.append(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", accepted
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
    listener.close()
    thread.join(5)


def test_a_refused_connection_is_could_not_reach_webex_after_retries(
        run: Callable[..., Any]) -> None:
    client = quick(f"http://127.0.0.1:{free_port()}/v1")

    async def call() -> None:
        async with client:
            await client.get("people/me")

    with pytest.raises(WebexApiError) as caught:
        run(call())
    assert caught.value.status == 0
    assert "could not reach Webex" in str(caught.value)
    assert client.retried >= 1  # retried as an outage before giving up


def test_a_connection_dropped_before_the_answer_is_retried_then_reported(
        run: Callable[..., Any], dropping_server: tuple[str, list[int]]) -> None:
    base, accepted = dropping_server
    client = quick(base)

    async def call() -> None:
        async with client:
            await client.get("people/me")

    with pytest.raises(WebexApiError, match="could not reach Webex"):
        run(call())
    assert len(accepted) >= 2  # the first attempt and at least one retry reached it


def test_the_default_transport_is_aiohttp_and_pages_come_through_it(
        run: Callable[..., Any], sim: SimulatorHandle) -> None:
    client = WebexAccess(sim.base_url, static_token(sim.token_for("user1@example.com")))

    async def rooms() -> tuple[int, Any]:
        async with client:
            found = [room async for room in client.list_rooms()]
            http, _ = client._http()
            return len(found), http._transport

    count, transport = run(rooms())
    user = sim.dataset.by_email["user1@example.com"]
    assert count == len(sim.dataset.rooms_of(user.id, "id")) > 0
    assert isinstance(transport, AiohttpTransport)
