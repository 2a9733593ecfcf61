"""The simulator's HTTP layer: aiohttp's server, on an event loop in a thread of its own.

Why asyncio: the simulator's latency must be a wait that costs nothing
(``asyncio.sleep``), so that hundreds of connections in flight, each waiting its
50 ms, need no thread each; and one event loop answers them in the order their waits
end. aiohttp speaks the protocol (keep-alive, chunked bodies, limits, refusing a header
that holds CR or LF); the simulator sees a :class:`Request` and answers a
:class:`Reply`, plain values that its endpoints and the tests build without aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

MAX_LINE = 64 * 1024  # the request line and each header (a long redirect_uri, a long link)
MAX_BODY = 16 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str  # percent-decoded
    query: dict[str, str]  # the first value of each name, as Flask's ``request.args.get``
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def base_url(self) -> str:
        """This request's URL without the query, as the client addressed it."""
        return f"http://{self.headers.get('host', 'localhost')}{self.path}"

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"

    def response(self) -> web.Response:
        """The aiohttp response. aiohttp refuses, when it writes the head, a header name
        or value holding CR or LF (written, it would end the header and start another)."""
        headers = dict(self.headers)
        if self.body:
            headers.setdefault("Content-Type", self.content_type)
        return web.Response(status=self.status, body=self.body, headers=headers)


Handler = Callable[[Request], Awaitable[Reply]]


class HttpServer:
    """Serves ``handler`` on ``host:port`` (0: a free port) from its own thread.

    ``handler`` may be replaced while it runs (a test holding one request back wraps
    it): each request looks it up anew.
    """

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        # The loop runs in its own thread from the start, and the listener is opened
        # there: the calling thread may have a running loop of its own (Playwright's
        # sync API does), and a second loop cannot run in the same thread.
        self._thread = threading.Thread(target=self.loop.run_forever, name="webex-simulator",
                                        daemon=True)
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._start(host, port),
                                                        self.loop).result(10)
        self.host, self.port = self._runner.addresses[0][:2]

    async def _start(self, host: str, port: int) -> web.AppRunner:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{path:.*}", self._serve)
        # No access log (a line per request would drown a benchmark), no signal
        # handlers (this is not the main thread), and a short shutdown: stop() ends
        # requests still waiting their latency instead of waiting for them.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2,
                               max_line_size=MAX_LINE, max_field_size=MAX_LINE)
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=1024).start()
        return runner

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        query: dict[str, str] = {}
        for name, value in request.query.items():
            query.setdefault(name, value)
        simple = Request(request.method, request.path, query,
                         {name.lower(): value for name, value in request.headers.items()},
                         await request.read())
        try:
            response = (await self.handler(simple)).response()
            # Written here, not by aiohttp after we return: a header it refuses (CR or
            # LF) then fails this request with a 500 that says why, where aiohttp
            # itself would drop the connection without an answer.
            await response.prepare(request)
        except Exception as exc:  # a simulator bug: say so, as Webex says "500"
            return _simulator_error(exc)
        return response

    def stop(self) -> None:
        """Close the listener and every connection, then end the thread."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop)
        with contextlib.suppress(Exception):
            future.result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def _simulator_error(exc: Exception) -> web.Response:
    return Reply(500, json.dumps({"message": f"simulator error: {exc}"}).encode()).response()
