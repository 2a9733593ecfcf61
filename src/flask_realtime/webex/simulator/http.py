"""A small HTTP/1.1 server on asyncio streams, run in a background thread.

Why not a WSGI server: the simulator's latency must be a wait that costs nothing
(``asyncio.sleep``), so that hundreds of connections in flight, each waiting its
50 ms, do not need hundreds of threads; and one event loop answers them in the order
their waits end. It speaks just what the Webex clients here send: keep-alive,
``Content-Length`` bodies, no chunked requests (answered 411), no TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
_HEADER_BREAK = re.compile(r"[\r\n\0]")


@dataclass
class Request:
    method: str
    path: str
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

    def encode(self, keep_alive: bool) -> bytes:
        """The reply as written on the wire. A header name or value holding CR, LF or NUL
        raises ValueError: written, it would end the header and start another."""
        for name, value in self.headers.items():
            if _HEADER_BREAK.search(name) or _HEADER_BREAK.search(value):
                raise ValueError(f"header {name!r} holds CR, LF or NUL: not written")
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {self.status} {reason}", f"Content-Length: {len(self.body)}",
                 f"Connection: {'keep-alive' if keep_alive else 'close'}"]
        if self.body:
            lines.append(f"Content-Type: {self.content_type}")
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        return head + self.body


Handler = Callable[[Request], Awaitable[Reply]]


class HttpServer:
    """Serves ``handler`` on ``host:port`` (0: a free port) from its own thread."""

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        # The loop runs in its own thread from the start, and the listener is opened
        # there: the calling thread may have a running loop of its own (Playwright's
        # sync API does), and a second loop cannot run in the same thread.
        self._thread = threading.Thread(target=self.loop.run_forever, name="webex-simulator",
                                        daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(asyncio.start_server(
            self._serve, host, port, backlog=1024, limit=MAX_HEAD), self.loop).result(10)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    def stop(self) -> None:
        """Close the listener and every connection, then end the thread."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._close(), self.loop)
        with contextlib.suppress(Exception):
            future.result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    async def _close(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if isinstance(request, Reply):  # malformed: answer and hang up
                    writer.write(request.encode(keep_alive=False))
                    await writer.drain()
                    return
                try:
                    reply = await self.handler(request)
                except Exception as exc:  # a simulator bug must not kill the connection
                    reply = Reply(500, json.dumps({"message": f"simulator error: {exc!r}"})
                                  .encode())
                keep_alive = request.headers.get("connection", "").lower() != "close"
                try:
                    data = reply.encode(keep_alive)
                except ValueError as exc:  # a header that would split: a simulator bug
                    data = Reply(500, json.dumps({"message": f"simulator error: {exc}"})
                                 .encode()).encode(keep_alive)
                writer.write(data)
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): ending normally spares asyncio's "Exception in callback" noise
        finally:
            self._writers.discard(writer)
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | Reply | None:
    """The next request on the connection; None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        return Reply(431)
    try:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
    except ValueError:
        return Reply(400)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Reply(411)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return Reply(400)
    if not 0 <= length <= MAX_BODY:
        return Reply(413)
    body = await reader.readexactly(length) if length else b""
    url = urlsplit(target)
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query.setdefault(name, value)
    return Request(method.upper(), unquote(url.path), query, headers, body)
