"""permessage-deflate on the websocket (``WEBSOCKET_COMPRESSION``, docs/configuration.md):
off by default, so a browser's offer is not taken up and each socket saves its
compressor's memory; on, the offer is accepted and the output arrives compressed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from tests.conftest import LiveServer


async def extensions_agreed(url: str) -> tuple[str | None, str]:
    """Open the console's websocket offering permessage-deflate, as browsers do: the
    extensions the server agreed to, and its Engine.IO open packet (still answered)."""
    async with websockets.connect(
            url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
            compression="deflate", origin=websockets.Origin(url)) as ws:
        opened = str(await asyncio.wait_for(ws.recv(), 10))
        return ws.response.headers.get("Sec-WebSocket-Extensions"), opened


def test_a_websocket_is_opened_uncompressed_by_default(live_server: LiveServer) -> None:
    agreed, opened = asyncio.run(extensions_agreed(live_server.url))
    assert agreed is None
    assert opened.startswith("0{")


@pytest.mark.parametrize("app_config", [{
    "TESTING": True, "SECRET_KEY": "test-secret-key", "WEBSOCKET_COMPRESSION": True}])
def test_with_compression_on_the_browsers_offer_is_accepted(
        live_server: LiveServer, app_config: dict[str, Any]) -> None:
    agreed, opened = asyncio.run(extensions_agreed(live_server.url))
    assert agreed is not None and agreed.startswith("permessage-deflate")
    assert opened.startswith("0{")
