"""An async Webex REST client on httpx, for jobs that scan hundreds of spaces at once.

What it takes care of, so that jobs don't:

* **Paging.** Listing is an async iterator that asks for the documented maximum page
  size and follows ``Link: <…>; rel="next"`` until there is none.
* **Bounded concurrency.** At most ``concurrency`` requests are in flight per client,
  however many tasks use it.
* **429.** Webex says how long to wait in ``Retry-After``; the client waits that long
  (capped) and retries, and holds back every other request of the client meanwhile,
  so a burst does not keep hitting the limit.
* **5xx and connection errors.** Bounded retries with exponential backoff.
* **Tokens.** The access token comes from a provider callable, asked again every
  ``token_ttl`` seconds (to pick up a renewal made before expiry) and with
  ``force_refresh=True`` after a 401 (once per request; one renewal for requests
  refused together), so a login layer can renew it.
* **Errors** raise :class:`WebexApiError` with the status, Webex's message and its
  ``trackingId`` (what Webex support asks for).

TLS certificates are verified (httpx's default). The httpx client is created in the
event loop that first uses it and closed by :meth:`WebexAccess.aclose` (or ``async with``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from .models import Membership, Message, Person, Room
from .slots import PrioritySlots

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://webexapis.com/v1"

#: ``await provider(force_refresh)``: a valid access token; ``True`` after a 401.
TokenProvider = Callable[[bool], Awaitable[str]]

#: Connections kept open between requests, whatever the concurrency (see ``_http``).
MAX_KEEPALIVE = 32

#: Largest page each list endpoint serves (a larger ``max`` is cut to this by Webex).
MAX_PAGE = {"rooms": 1000, "messages": 1000, "memberships": 1000, "people": 1000}


class WebexApiError(Exception):
    """Webex refused a request; ``tracking_id`` identifies it to Webex support."""

    def __init__(self, status: int, message: str, tracking_id: str | None,
                 method: str = "", url: str = "") -> None:
        self.status = status
        self.message = message
        self.tracking_id = tracking_id
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method else ""
        tracking = f" [trackingId {tracking_id}]" if tracking_id else ""
        super().__init__(f"Webex answered {status}{where}: {message}{tracking}")


def static_token(token: str) -> TokenProvider:
    """A provider for a fixed token (scripts, tests, the simulator's tokens)."""

    async def provide(force_refresh: bool = False) -> str:
        return token

    return provide


class WebexAccess:
    """Webex API access for one user, shared by the tasks of one job."""

    def __init__(
        self, base_url: str = DEFAULT_BASE_URL, token_provider: TokenProvider | None = None, *,
        concurrency: int = 32, timeout: float = 30.0, max_retries: int = 5,
        max_retry_after: float = 60.0, backoff: float = 0.5, token_ttl: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if token_provider is None:
            raise ValueError("WebexAccess needs a token provider (see static_token).")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.token_provider = token_provider
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.backoff = backoff
        self.token_ttl = token_ttl
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._slots: PrioritySlots | None = None
        self._paused_until = 0.0  # monotonic time before which no request is sent (429)
        self._token: str | None = None
        self._token_at = 0.0  # monotonic time the provider gave ``_token``
        self._token_lock: asyncio.Lock | None = None
        #: Requests sent and 429 answers seen: for benchmarks and tests.
        self.requests_sent = 0
        self.rate_limited = 0

    # -- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> WebexAccess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._slots = None
            self._token_lock = None  # asyncio locks belong to one event loop

    def _http(self) -> tuple[httpx.AsyncClient, PrioritySlots]:
        if self._client is None or self._slots is None:
            # httpcore 1.0's pool does work quadratic in its kept-alive connections on
            # every request (profiled: 64 of them doubled a 200-space scan); past 32,
            # opening a connection now and then is cheaper.
            limits = httpx.Limits(max_connections=self.concurrency,
                                  max_keepalive_connections=min(self.concurrency,
                                                                MAX_KEEPALIVE))
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits,
                                             transport=self._transport)
            self._slots = PrioritySlots(self.concurrency)
        return self._client, self._slots

    # -- requests ------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else (
            f"{self.base_url}/{path.lstrip('/')}")

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None, priority: int = 1) -> httpx.Response:
        """One API call with the retries described in the module docstring.

        ``priority`` orders requests waiting for a free slot (lower first).
        """
        client, slots = self._http()
        url = self.url(path)
        refreshed = False
        attempt = 0
        while True:
            await self._wait_for_pause()
            token = await self._current_token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            await slots.acquire(priority)
            try:
                await self._wait_for_pause()
                self.requests_sent += 1
                response = await client.request(method, url, params=params, json=json,
                                                headers=headers)
            except httpx.TransportError as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise WebexApiError(0, f"could not reach Webex: {exc}", None, method,
                                        url) from exc
                await asyncio.sleep(self._backoff(attempt))
                continue
            finally:
                slots.release()
            status = response.status_code
            if status < 400:
                return response
            if status == 401 and not refreshed:
                refreshed = True
                await self._renew_token(refused=token)
                continue
            if status == 429:
                self.rate_limited += 1
                attempt += 1
                if attempt > self.max_retries:
                    raise _error(response, method, url)
                self._pause(self._retry_after(response, attempt))
                continue
            if status >= 500:
                attempt += 1
                if attempt > self.max_retries:
                    raise _error(response, method, url)
                await asyncio.sleep(max(self._backoff(attempt),
                                        self._retry_after(response, attempt, default=0)))
                continue
            raise _error(response, method, url)

    async def _current_token(self) -> str:
        """The provider's token, asked again every ``token_ttl`` seconds: often enough to
        pick up a renewal the login layer made before expiry, rarely enough to cost
        nothing per request."""
        if self._token is None or time.monotonic() - self._token_at > self.token_ttl:
            async with self._lock():
                if self._token is None or time.monotonic() - self._token_at > self.token_ttl:
                    self._token = await self.token_provider(False)
                    self._token_at = time.monotonic()
        return self._token

    async def _renew_token(self, refused: str) -> None:
        """After a 401: one forced renewal, however many requests were refused at once."""
        async with self._lock():
            if self._token in (None, refused):
                self._token = await self.token_provider(True)
                self._token_at = time.monotonic()

    def _lock(self) -> asyncio.Lock:
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        return self._token_lock

    def _retry_after(self, response: httpx.Response, attempt: int,
                     default: float | None = None) -> float:
        value = response.headers.get("Retry-After", "")
        try:
            seconds = float(value)
        except ValueError:
            seconds = self._backoff(attempt) if default is None else default
        return min(max(seconds, 0.0), self.max_retry_after)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff * 2 ** (attempt - 1), 30.0) * (0.5 + random.random() / 2))

    def _pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def _wait_for_pause(self) -> None:
        while (delay := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.request("GET", path, params=_clean(params))).json()

    async def pages(self, path: str, **params: Any) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of a list endpoint, following ``rel="next"`` links."""
        resource = path.strip("/").split("/")[0]
        params = _clean(params)
        params.setdefault("max", MAX_PAGE.get(resource, 100))
        url: str | None = self.url(path)
        query: dict[str, Any] | None = params
        priority = 1
        while url is not None:
            response = await self.request("GET", url, params=query, priority=priority)
            priority = 0  # a next page goes before other lists' first pages
            items = response.json().get("items", [])
            yield items if isinstance(items, list) else []
            nxt = response.links.get("next", {}).get("url")
            url, query = (nxt, None) if nxt else (None, None)

    async def items(self, path: str, **params: Any) -> AsyncIterator[dict[str, Any]]:
        async for page in self.pages(path, **params):
            for item in page:
                yield item

    # -- typed helpers ---------------------------------------------------------------------
    async def me(self) -> Person:
        return Person.from_json(await self.get("people/me"))

    async def list_people(self, *, email: str | None = None,
                          display_name: str | None = None) -> AsyncIterator[Person]:
        async for item in self.items("people", email=email, displayName=display_name):
            yield Person.from_json(item)

    async def list_rooms(self, *, type: str | None = None) -> AsyncIterator[Room]:
        async for item in self.items("rooms", type=type):
            yield Room.from_json(item)

    async def get_room(self, room_id: str) -> Room:
        return Room.from_json(await self.get(f"rooms/{room_id}"))

    async def create_room(self, title: str) -> Room:
        response = await self.request("POST", "rooms", json={"title": title})
        return Room.from_json(response.json())

    async def delete_room(self, room_id: str) -> None:
        await self.request("DELETE", f"rooms/{room_id}")

    async def list_messages(self, room_id: str, *, before: str | None = None,
                            before_message: str | None = None) -> AsyncIterator[Message]:
        """Newest first, as Webex returns them."""
        async for item in self.items("messages", roomId=room_id, before=before,
                                     beforeMessage=before_message):
            yield Message.from_json(item)

    async def message_pages(self, room_id: str) -> AsyncIterator[list[Message]]:
        async for page in self.pages("messages", roomId=room_id):
            yield [Message.from_json(item) for item in page]

    async def create_message(self, room_id: str, text: str | None = None, *,
                             markdown: str | None = None) -> Message:
        body = _clean({"roomId": room_id, "text": text, "markdown": markdown})
        return Message.from_json((await self.request("POST", "messages", json=body)).json())

    async def list_memberships(self, *, room_id: str | None = None,
                               person_email: str | None = None) -> AsyncIterator[Membership]:
        async for item in self.items("memberships", roomId=room_id, personEmail=person_email):
            yield Membership.from_json(item)

    async def create_membership(self, room_id: str, person_email: str,
                                is_moderator: bool = False) -> Membership:
        response = await self.request("POST", "memberships", json={
            "roomId": room_id, "personEmail": person_email, "isModerator": is_moderator})
        return Membership.from_json(response.json())


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _error(response: httpx.Response, method: str, url: str) -> WebexApiError:
    message, tracking = response.reason_phrase, response.headers.get("TrackingID")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or message)
        tracking = str(body.get("trackingId") or tracking or "") or None
    return WebexApiError(response.status_code, message, tracking, method, url.split("?")[0])
