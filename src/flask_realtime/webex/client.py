"""An async Webex REST client on httpx, for jobs that scan hundreds of spaces at once.

Requests go through httpx's API on aiohttp's connection pool (httpx-aiohttp's
transport): on httpcore's pool a 200-space scan took two to three times the CPU
(docs/performance.md, Webex space statistics).

What it takes care of, so that jobs don't:

* **Paging.** Listing is an async iterator that asks for the documented maximum page
  size and follows ``Link: <…>; rel="next"`` until there is none: absolute or relative
  links, a ``max=null`` in them repaired, never a link to another host (it would get
  the token).
* **Bounded, adaptive concurrency.** At most ``concurrency`` requests are in flight per
  client, however many tasks use it; fewer after trouble (a congestion window: a 429
  halves it, then it grows by one per round of answers; a 5xx drops it to one probe,
  then it doubles per round back to where it was), so a scan never bursts into a limit
  it has just hit.
* **Pauses.** 429, and 503 or 423 with ``Retry-After``, hold back every request of the
  client for that long (up to ``max_retry_after``, 300 s); other 5xx and connection
  errors for an exponential, jittered backoff. One ``notify`` line per pause, not one
  per request. A request keeps retrying until it has seen ``retry_for`` seconds (300)
  of trouble, so an outage of a minute anywhere in a scan costs time, not the scan.
* **Order.** A retried request keeps its slot, or its place in the queue (the front of
  its priority class), instead of queueing behind requests that came after it.
* **Tokens.** The access token comes from a provider callable, asked again every
  ``token_ttl`` seconds (to pick up a renewal made before expiry) and with
  ``force_refresh=True`` after a 401: once for all the requests refused with that
  token, which then retry with the new one. A renewed token refused before it ever
  worked, or a provider that cannot renew, ends every request at once with
  :class:`WebexLoginError` ("Log in again"), instead of one 401 per remaining request.
* **Errors** raise :class:`WebexApiError` with the status, Webex's message and its
  ``trackingId`` (what Webex support asks for).
* **Logs.** httpx's INFO line per request goes to DEBUG for this client's requests;
  the client logs one INFO summary per ``LOG_EVERY`` requests instead.

TLS certificates are verified (httpx's default context, given to aiohttp). The httpx
client is created in the event loop that first uses it and closed by
:meth:`WebexAccess.aclose` (or ``async with``), which closes aiohttp's session too.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import functools
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import httpx
import orjson

from .models import Membership, Message, Person, Room
from .slots import PrioritySlots

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://webexapis.com/v1"

#: ``await provider(force_refresh)``: a valid access token; ``True`` after a 401.
TokenProvider = Callable[[bool], Awaitable[str]]

#: Largest page each list endpoint serves (a larger ``max`` is cut to this by Webex).
MAX_PAGE = {"rooms": 1000, "messages": 1000, "memberships": 1000, "people": 1000}

#: Statuses that mean "Webex is in trouble or busy: wait and try again".
RETRIED = frozenset({423, 429, 500, 502, 503, 504})

#: One INFO summary line per this many requests of a client.
LOG_EVERY = 1000

#: Set while this client's request is in httpx, whose INFO line per request then goes
#: to DEBUG (a scan of 2,000 spaces would otherwise print 2,000 lines into its run).
_IN_CLIENT: contextvars.ContextVar[bool] = contextvars.ContextVar("webex_in_client",
                                                                  default=False)

#: Called with the HTTP status of every answer from Webex (web/metrics.py sets it).
on_answer: Callable[[int], None] | None = None


class _QuietInClient(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and _IN_CLIENT.get():
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


logging.getLogger("httpx").addFilter(_QuietInClient())


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

    @property
    def reason(self) -> str:
        """Short, for a table cell: ``403 Failed to get activity [trackingId …]``."""
        tracking = f" [trackingId {self.tracking_id}]" if self.tracking_id else ""
        return f"{self.status} {self.message}{tracking}" if self.status else (
            f"{self.message}{tracking}")


class WebexLoginError(WebexApiError):
    """The login no longer works and cannot be renewed: only logging in again helps.

    Raised for every request of the client from then on, without sending it."""

    def __init__(self, reason: str) -> None:
        super().__init__(401, f"Webex no longer accepts this login ({reason}). "
                              "Log in again, then start the job again.", None)

    def __str__(self) -> str:
        return self.message


class Clock(Protocol):
    """Where the client reads the time and waits (a fake one in tests)."""

    def now(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(deadline - time.monotonic(), 0.0))


def static_token(token: str) -> TokenProvider:
    """A provider for a fixed token (scripts, tests, the simulator's tokens)."""

    async def provide(force_refresh: bool = False) -> str:
        return token

    return provide


class WebexAccess:
    """Webex API access for one user, shared by the tasks of one job.

    ``notify`` is called with one sentence per pause (by default a log warning; the
    jobs print it). ``requests_sent``, ``rate_limited`` and ``retried`` count requests
    for benchmarks and tests.
    """

    def __init__(
        self, base_url: str = DEFAULT_BASE_URL, token_provider: TokenProvider | None = None, *,
        concurrency: int = 32, timeout: float = 30.0, retry_for: float = 300.0,
        max_retry_after: float = 300.0, backoff: float = 0.5, max_backoff: float = 15.0,
        token_ttl: float = 30.0, transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        if token_provider is None:
            raise ValueError("WebexAccess needs a token provider (see static_token).")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.token_provider = token_provider
        self.concurrency = concurrency
        self.timeout = timeout
        self.retry_for = retry_for
        self.max_retry_after = max_retry_after
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.token_ttl = token_ttl
        self.notify: Callable[[str], None] = log.warning
        self._transport = transport
        self._clock: Clock = clock or MonotonicClock()
        self._client: httpx.AsyncClient | None = None
        self._slots: PrioritySlots | None = None
        self._origin = httpx.URL(self.base_url).copy_with(path="/", query=None)
        # Pauses and the congestion window (see the module docstring).
        self._paused_until = 0.0
        self._trouble_seq = 0  # requests sent when the last trouble was noted: answers
        # to those echo it (a sequence, not a time: a fake clock stands still)
        self._troubles = 0  # trouble noted since the last success: the backoff's exponent
        self._window = float(concurrency)
        self._target = float(concurrency)
        # Tokens.
        self._token: str | None = None
        self._token_at = 0.0  # clock time the provider gave ``_token``
        self._renewed = False  # ``_token`` came from a forced renewal…
        self._confirmed = False  # …and has been accepted at least once since
        self._login_error: str | None = None
        self._token_lock: asyncio.Lock | None = None
        self.requests_sent = 0
        self.rate_limited = 0
        self.retried = 0

    # -- in a job's own process (core/isolation.py) ----------------------------------------
    def for_child(self) -> tuple[Callable[[Callable[..., Any]], WebexAccess],
                                 dict[str, Callable[..., Any]]]:
        """This access split for a job in its own process: a factory the child calls
        with its ``call`` to this process, and the handler that answers it. The child's
        client asks this one's token provider for each token (``call("token",
        force_refresh)``), so renewals happen here and the child never holds a refresh
        token. A test transport stays here: the child's client uses HTTP."""
        provider = self.token_provider

        async def ask(force_refresh: bool) -> str:
            return await provider(force_refresh)

        def token(force_refresh: bool = False) -> str:
            return str(asyncio.run(ask(bool(force_refresh))))

        options = {"concurrency": self.concurrency, "timeout": self.timeout,
                   "retry_for": self.retry_for, "max_retry_after": self.max_retry_after,
                   "backoff": self.backoff, "max_backoff": self.max_backoff,
                   "token_ttl": self.token_ttl}
        return functools.partial(access_in_child, self.base_url, options), {"token": token}

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
            # aiohttp's pool, not httpcore's: httpcore 1.0 does work quadratic in its
            # kept-alive connections on every request, and its AnyIO socket checks
            # cost more CPU than the JSON of the pages (profiled on a 200-space scan:
            # 0.8-1.1 s of CPU against 0.3-0.4 s on aiohttp).
            # Imported here: aiohttp is 9 MB, and a server that never calls Webex
            # never loads it (docs/performance.md, issue 21 item 3).
            from httpx_aiohttp import AiohttpTransport

            limits = httpx.Limits(max_connections=self.concurrency,
                                  max_keepalive_connections=self.concurrency)
            transport = self._transport or AiohttpTransport(verify=_tls(), limits=limits)
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits,
                                             transport=transport)
            # ``concurrency`` may have been set since __init__ (space_stats does).
            self._window = self._target = float(self.concurrency)
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
        ticket = await slots.acquire(priority)
        held = True
        trouble_since: float | None = None
        try:
            while True:
                if not held:
                    ticket = await slots.acquire(priority, ticket)
                    held = True
                await self._wait_for_pause()
                if self._login_error is not None:
                    raise WebexLoginError(self._login_error)
                token = await self._current_token()
                self._count_request()
                sent_at = self.requests_sent
                headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
                quiet = _IN_CLIENT.set(True)
                try:
                    response = await client.request(method, url, params=params, json=json,
                                                    headers=headers)
                except httpx.TransportError as exc:
                    failure = WebexApiError(0, f"could not reach Webex: {exc}", None, method,
                                            url)
                    trouble_since = self._clock.now() if trouble_since is None else (
                        trouble_since)
                    if self._clock.now() - trouble_since >= self.retry_for:
                        raise failure from exc
                    self._note_trouble(0, None, sent_at, f"Could not reach Webex ({exc})")
                    held = self._keep_slot(slots)
                    continue
                finally:
                    _IN_CLIENT.reset(quiet)
                status = response.status_code
                if on_answer is not None:
                    on_answer(status)
                if status < 400:
                    self._note_success(sent_at, token)
                    return response
                if status == 401:
                    await self._after_401(token)
                    continue  # with the renewed token, keeping the slot
                if status not in RETRIED:
                    raise _error(response, method, url)
                if status == 429:
                    self.rate_limited += 1
                now = self._clock.now()
                trouble_since = now if trouble_since is None else trouble_since
                # Give up once retry_for is over, or at once if the wait asked for would
                # end past it (holding the job that long only to fail is worse).
                asked = min(_seconds(response.headers.get("Retry-After")) or 0.0,
                            self.max_retry_after)
                if now + asked - trouble_since > self.retry_for:
                    raise _error(response, method, url)
                self._note_trouble(status, response.headers.get("Retry-After"), sent_at,
                                   f"Webex answered {status} {response.reason_phrase}")
                held = self._keep_slot(slots)
        finally:
            if held:
                slots.release()

    def _keep_slot(self, slots: PrioritySlots) -> bool:
        """Before a retry: keep the slot unless the window shrank below the slots held
        (then queue again with the same ticket, at the front of its class)."""
        self.retried += 1
        if slots.over:
            slots.release()
            return False
        return True

    def _count_request(self) -> None:
        self.requests_sent += 1
        if self.requests_sent % LOG_EVERY == 0:
            log.info("%d requests to Webex so far (%d answered 429, %d retried)",
                     self.requests_sent, self.rate_limited, self.retried)

    # -- pauses and the window -----------------------------------------------------------
    def _note_trouble(self, status: int, retry_after: str | None, sent_at: int,
                      what: str) -> None:
        """Pause every request: for ``Retry-After`` if given, else a backoff; shrink the
        window. Answers to requests sent before the last trouble was noted are echoes
        of it: they honour their ``Retry-After`` but say nothing and shrink nothing."""
        now = self._clock.now()
        asked = _seconds(retry_after)
        news = sent_at > self._trouble_seq
        if not news and asked is None:
            return
        if news:
            self._trouble_seq = self.requests_sent
            self._troubles += 1
            if status == 429:  # a rate limit: multiplicative decrease, then additive
                self._target = max(self._window / 2, 1.0)
                self._window = self._target
            else:  # trouble: one probe at a time until Webex answers again
                self._window = 1.0
            if self._slots is not None:
                self._slots.set_limit(int(self._window))
        wait = self._backoff(self._troubles) if asked is None else min(
            asked, self.max_retry_after)
        if news:
            self.notify(self._pause_sentence(what, asked, wait))
        self._paused_until = max(self._paused_until, now + wait)

    def _pause_sentence(self, what: str, asked: float | None, wait: float) -> str:
        then = f"then going on with {int(self._window)} request" + (
            "s at a time" if self._window >= 2 else " at a time")
        if asked is None:
            return f"{what}: trying again in {_secs(wait)} s, {then}."
        capped = "" if asked <= self.max_retry_after else (
            f"; waiting {_secs(wait)} s, the most this client waits (max_retry_after)")
        return (f"Webex asked us to wait {_secs(asked)} s ({what.removeprefix('Webex answered ')}"
                f"){capped}: holding every request until then, {then}.")

    def _note_success(self, sent_at: int, token: str) -> None:
        if token == self._token:
            self._confirmed = True
        if sent_at <= self._trouble_seq:
            return  # sent before the trouble: says nothing about now
        self._troubles = 0
        if self._window < self.concurrency:
            # Slow start back to where it was before a 5xx, additive increase above.
            self._window = min(self._window + (1.0 if self._window < self._target
                                               else 1.0 / self._window),
                               float(self.concurrency))
            if self._slots is not None and int(self._window) != self._slots.limit:
                self._slots.set_limit(int(self._window))

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                     * (0.5 + random.random() / 2))

    async def _wait_for_pause(self) -> None:
        while (until := self._paused_until) > self._clock.now():
            await self._clock.sleep_until(until)

    # -- tokens --------------------------------------------------------------------------
    async def _current_token(self) -> str:
        """The provider's token, asked again every ``token_ttl`` seconds: often enough to
        pick up a renewal the login layer made before expiry, rarely enough to cost
        nothing per request."""
        if self._token is None or self._clock.now() - self._token_at > self.token_ttl:
            async with self._lock():
                if self._token is None or self._clock.now() - self._token_at > self.token_ttl:
                    try:
                        token = await self.token_provider(False)
                    except Exception as exc:
                        raise WebexLoginError(self._fail_login(str(exc))) from exc
                    if token != self._token:
                        self._renewed = self._confirmed = False
                    self._token, self._token_at = token, self._clock.now()
        if self._login_error is not None:
            raise WebexLoginError(self._login_error)
        assert self._token is not None
        return self._token

    async def _after_401(self, refused: str) -> None:
        """One forced renewal for all the requests refused with ``refused``; requests
        refused with a token renewed since just retry with the current one."""
        async with self._lock():
            if self._login_error is not None:
                raise WebexLoginError(self._login_error)
            if self._token != refused:
                return
            if self._renewed and not self._confirmed:
                raise WebexLoginError(self._fail_login("a renewed token was refused too"))
            try:
                token = await self.token_provider(True)
            except Exception as exc:
                raise WebexLoginError(self._fail_login(str(exc))) from exc
            if token == refused:
                raise WebexLoginError(self._fail_login("the token was refused and could "
                                                       "not be renewed"))
            self._token, self._token_at = token, self._clock.now()
            self._renewed, self._confirmed = True, False

    def _fail_login(self, reason: str) -> str:
        self._login_error = self._login_error or reason.rstrip(".")
        return self._login_error

    def _lock(self) -> asyncio.Lock:
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        return self._token_lock

    async def get(self, path: str, **params: Any) -> Any:
        return _json(await self.request("GET", path, params=_clean(params)))

    async def pages(self, path: str, **params: Any) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of a list endpoint, following ``rel="next"`` links (see
        :meth:`next_url`)."""
        resource = path.strip("/").split("/")[0]
        params = _clean(params)
        size = params.setdefault("max", MAX_PAGE.get(resource, 100))
        url: str | None = self.url(path)
        query: dict[str, Any] | None = params
        priority = 1
        followed: set[str] = set()
        while url is not None:
            response = await self.request("GET", url, params=query, priority=priority)
            priority = 0  # a next page goes before other lists' first pages
            body = _json(response)
            items = body.get("items", []) if isinstance(body, dict) else []
            yield items if isinstance(items, list) else []
            url, query = self.next_url(response, size), None
            if url is not None:
                if url in followed:  # a link back to a page already read: no end
                    raise WebexApiError(0, "Webex linked back to a page already read; "
                                           "the listing was stopped there.", None, "GET", url)
                followed.add(url)

    def next_url(self, response: httpx.Response, size: Any) -> str | None:
        """The next page's absolute URL, or None on the last page.

        A relative link is resolved against the page's URL (RFC 3986), as a browser
        would; ``max=null``, an empty or a missing ``max`` (Webex sends these at times;
        asking for ``null`` answers 400) becomes the page size asked for. A link to another host is
        refused: the request would carry this user's token there.
        """
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        url = response.request.url.join(link)
        if url.copy_with(path="/", query=None) != self._origin:
            raise WebexApiError(0, f"Webex sent a next link to {url.host}, not to "
                                   f"{self._origin.host}; it was not followed (it would "
                                   "have been sent your token).", None, "GET",
                                str(url).split("?")[0])
        given = url.params.get("max")
        if given is None or not (given.isdigit() and int(given) > 0):
            url = url.copy_set_param("max", str(size))
        return str(url)

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

    async def list_rooms(self, *, type: str | None = None,
                         sort_by: str = "id") -> AsyncIterator[Room]:
        """Every room, by id by default: Webex documents that listing by last activity
        can leave out recently active rooms of users in more than 3,000."""
        async for item in self.items("rooms", type=type, sortBy=sort_by):
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


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default, verifying TLS context, made once: loading the CA bundle costs
    about 30 ms, a twentieth of a whole scan."""
    return httpx.create_ssl_context()


def _json(response: httpx.Response) -> Any:
    """The body as JSON, decoded by orjson (a 1,000-message page is about 430 KB; the
    standard library's decoder took a third of the client's CPU in a scan). What orjson
    refuses and the standard library reads (integers past 64 bits) goes to the latter."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def access_in_child(base_url: str, options: dict[str, Any],
                    call: Callable[..., Any]) -> WebexAccess:
    """A job process's :class:`WebexAccess` (see :meth:`WebexAccess.for_child`): its
    tokens come from the parent through ``call``."""

    async def provide(force_refresh: bool = False) -> str:
        return str(await asyncio.to_thread(call, "token", bool(force_refresh)))

    return WebexAccess(base_url, provide, **options)


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _seconds(retry_after: str | None) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date (RFC 9110); None if absent
    or unreadable."""
    if not retry_after:
        return None
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _secs(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f}"


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
