"""The simulated Webex REST API: people, rooms, messages, memberships.

Same paths and JSON as Webex for this subset: lists are ``{"items": [...]}`` in pages
of at most ``max`` (cut to the endpoint's maximum, never refused) with a
``Link: <…>; rel="next"`` header while more remain; rooms sorted by ``sortBy``
(``lastactivity``, the default, ``created`` or ``id``) and filtered by ``type`` and
``teamId``; messages newest first with ``before`` (an ISO 8601 time) and
``beforeMessage``, filtered by ``parentId`` and ``mentionedPeople``. Errors carry
Webex's body (``message``, ``errors``, ``trackingId``) and a ``TrackingID`` header:
401 for a missing, unknown or expired token, 404 for a space the caller is not in,
429 with ``Retry-After`` above the rate limit. The faults of :class:`SimulatorConfig`
(403 and 404 spaces, 423, outages, odd next links) are applied here.

``POST /messages`` takes ``roomId``, or ``toPersonEmail`` / ``toPersonId`` for a
direct message (the direct space of the two is made at the first one, as Webex does),
with ``text`` or ``markdown``. Every message posted is also recorded in
:attr:`Simulator.sent` (sender, recipient, space, markdown), which tests read in the
process or at ``GET /_sim/messages`` with the bot's token (docs/notifications.md).
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
import uuid
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from datetime import UTC, timedelta
from urllib.parse import urlencode, urlsplit

from .dataset import (
    Dataset,
    SimMessage,
    SimPerson,
    SimRoom,
    SimulatorConfig,
    dump,
    iso,
    new_id,
    now_iso,
    parse_time,
)
from .http import Reply, Request
from .oauth import TokenStore, access_token, authorize

#: The largest page each list endpoint serves, and what it serves without ``max``.
MAX_PAGE = {"rooms": 1000, "messages": 1000, "memberships": 1000, "people": 1000}
DEFAULT_PAGE = {"rooms": 100, "messages": 50, "memberships": 100, "people": 100}
NOT_FOUND = "The requested resource could not be found."
#: Webex's answer for a space whose messages it cannot read (webexpythonsdk's tracker).
NO_ACTIVITY = "Failed to get activity."
LOCKED = "The requested resource is temporarily unavailable."
UNAVAILABLE = "The service is temporarily unavailable: retry later."
TOO_MANY = "Too many requests: retry later."
ROOM_SORTS = ("lastactivity", "created", "id")


class WebexError(Exception):
    """Raised by an endpoint; becomes Webex's error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    tracking = f"ROUTER_{uuid.uuid4().hex[:8].upper()}-SIM"
    body = dump({"message": message, "errors": [{"description": message}],
                 "trackingId": tracking})
    return Reply(status, body, {"TrackingID": tracking, **(headers or {})})


class RateLimiter:
    """A sliding one-second window of accepted requests per token."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.windows: dict[str, deque[float]] = {}
        self.lock = threading.Lock()
        self.accepted: deque[float] = deque(maxlen=100_000)  # for benchmarks and tests

    def admit(self, key: str) -> float:
        """0 when the request may go on, else the seconds until it could."""
        now = time.monotonic()
        with self.lock:
            if self.rate is not None:
                window = self.windows.setdefault(key, deque())
                while window and window[0] <= now - 1.0:
                    window.popleft()
                if len(window) >= self.rate:
                    return max(window[0] + 1.0 - now, 0.001)
                window.append(now)
            self.accepted.append(now)
            return 0.0

    def max_per_second(self) -> int:
        """The most requests accepted in any one-second window so far."""
        times = list(self.accepted)
        return max((bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


Endpoint = Callable[[Request, SimPerson], Reply]


class Outage:
    """A window in which every request is refused: when it starts, how long, with what."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.lock = threading.Lock()
        self.requests = 0  # every request so far, counted on arrival
        self.status = config.outage_status
        self.seconds = config.outage_seconds
        self.after_requests = config.outage_after_requests
        started = time.monotonic()
        self.starts: float | None = None  # monotonic time; None: not yet known
        if self.seconds > 0 and self.after_requests is None:
            self.starts = started + (config.outage_at or 0.0)

    def begin(self, seconds: float, status: int) -> None:
        """An outage from now on (tests, :meth:`SimulatorHandle.outage`)."""
        with self.lock:
            self.starts, self.seconds, self.status = time.monotonic(), seconds, status
            self.after_requests = None

    def check(self) -> float:
        """Count a request; 0 if it may go on, else the seconds the outage has left."""
        now = time.monotonic()
        with self.lock:
            self.requests += 1
            if self.after_requests is not None and self.requests > self.after_requests:
                self.starts, self.after_requests = now, None
            if self.starts is None or not self.starts <= now < self.starts + self.seconds:
                return 0.0
            return self.starts + self.seconds - now


class Simulator:
    """State and request handling; :func:`~.start_simulator` serves it over HTTP."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.dataset = Dataset(config)
        self.tokens = TokenStore(config, self.dataset)
        self.limiter = RateLimiter(config.rate_limit)
        self.outage = Outage(config)
        self.faults: deque[int] = deque()  # statuses to answer the next API requests with
        #: Every message posted, oldest first: ``{"id", "from", "to", "roomId",
        #: "markdown", "text"}`` (``to``: the recipient's e-mail for a direct message).
        self.sent: list[dict[str, str | None]] = []
        self._jitter = random.Random()
        self._routes: dict[tuple[str, str, bool], Endpoint] = {
            ("GET", "people", False): self.people_list,
            ("GET", "people", True): self.people_get,
            ("GET", "rooms", False): self.rooms_list,
            ("POST", "rooms", False): self.rooms_create,
            ("GET", "rooms", True): self.rooms_get,
            ("DELETE", "rooms", True): self.rooms_delete,
            ("GET", "messages", False): self.messages_list,
            ("POST", "messages", False): self.messages_create,
            ("GET", "messages", True): self.messages_get,
            ("DELETE", "messages", True): self.messages_delete,
            ("GET", "memberships", False): self.memberships_list,
            ("POST", "memberships", False): self.memberships_create,
        }

    def token_for(self, email: str, lifetime: float | None = None) -> str:
        return self.tokens.token_for(email, lifetime)

    def fail_next(self, *statuses: int) -> None:
        """Answer the next API requests with these statuses (for retry tests)."""
        self.faults.extend(statuses)

    def retry_after(self, honest: float) -> dict[str, str]:
        """The ``Retry-After`` header: the configured value, else ``honest`` rounded up."""
        chosen = self.config.retry_after
        return {"Retry-After": str(max(1, math.ceil(honest)) if chosen is None else chosen)}

    async def handle(self, request: Request) -> Reply:
        """Check the caller on arrival (as Webex counts requests), wait, then answer."""
        left = self.outage.check()
        if left:
            await self._latency()
            return error_reply(self.outage.status,
                               TOO_MANY if self.outage.status == 429 else UNAVAILABLE,
                               self.retry_after(left))
        parts = request.path.strip("/").split("/")
        if parts == ["_sim", "messages"] and request.method == "GET":
            return self.inspect_messages(request)
        if parts[0] != "v1" or not 2 <= len(parts) <= 3:
            return error_reply(404, NOT_FOUND)
        if parts[1] in ("authorize", "access_token"):
            await self._latency()
            if parts[1] == "authorize" and request.method == "GET":
                return authorize(self.tokens, request, error_reply)
            if parts[1] == "access_token" and request.method == "POST":
                return access_token(self.tokens, request)
            return error_reply(405, "Method not allowed.")
        resource, ident = parts[1], parts[2] if len(parts) == 3 else None
        endpoint = self._routes.get((request.method, resource, ident is not None))
        if endpoint is None:
            known = any(key[1] == resource for key in self._routes)
            return error_reply(405 if known else 404,
                               "Method not allowed." if known else NOT_FOUND)
        try:
            person = self._caller(request)
        except WebexError as exc:
            await self._latency()
            return error_reply(exc.status, exc.message, exc.headers)
        await self._latency()
        try:
            if resource == "people" and ident == "me":
                return Reply(200, dump(person.to_json()))
            return endpoint(request, person)
        except WebexError as exc:
            return error_reply(exc.status, exc.message, exc.headers)

    async def _latency(self) -> None:
        delay = self.config.latency_ms + self._jitter.uniform(0, self.config.jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    def _caller(self, request: Request) -> SimPerson:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        person_id = self.tokens.person_of(token)
        if person_id is None:
            raise WebexError(401, "The request requires a valid access token set in the "
                                  "Authorization request header.")
        wait = self.limiter.admit(token)
        if wait:
            raise WebexError(429, TOO_MANY, self.retry_after(wait))
        if self.faults:
            status = self.faults.popleft()
            raise WebexError(status, "The server encountered an error (simulated).",
                             self.retry_after(1) if status in (423, 429, 503) else None)
        return self.dataset.people[person_id]

    # -- helpers ---------------------------------------------------------------------------
    def _member_room(self, person: SimPerson, room_id: str) -> SimRoom:
        room = self.dataset.rooms.get(room_id)
        if room is None or person.id not in room.members:
            raise WebexError(404, NOT_FOUND)
        return room

    def _readable_room(self, person: SimPerson, room_id: str) -> SimRoom:
        """A room whose messages are asked for: its fault, if it has one, answers."""
        room = self._member_room(person, room_id)
        fault = self.dataset.faulty.get(room.id)
        if fault == "forbidden":
            raise WebexError(403, NO_ACTIVITY)
        if fault == "vanishing":  # deleted by someone else since it was listed
            self.dataset.remove_room(room.id)
            raise WebexError(404, NOT_FOUND)
        if fault == "locked":
            with self.dataset.lock:
                left = self.dataset.locks_left.get(room.id, 0)
                if left > 0:
                    self.dataset.locks_left[room.id] = left - 1
            if left > 0:
                raise WebexError(423, LOCKED, self.retry_after(1))
        return room

    def _next_link(self, request: Request, args: dict[str, str]) -> str:
        """The ``Link`` header for the next page: absolute, unless the config asks for
        relative references or for Webex's stray ``max=null``."""
        if self.config.next_link_max_null and "max" in args:
            args = {**args, "max": "null"}
        url = f"{request.base_url}?{urlencode(args)}"
        if self.config.relative_next_links:
            parts = urlsplit(url)
            url = f"{parts.path}?{parts.query}"
        return f'<{url}>; rel="next"'

    @staticmethod
    def _page_size(request: Request, resource: str) -> int:
        raw = request.query.get("max")
        if raw is None:
            return DEFAULT_PAGE[resource]
        try:
            value = int(raw)
        except ValueError:
            raise WebexError(400, f"Invalid max: {raw!r} is not a number.") from None
        if value < 1:
            raise WebexError(400, "max must be a positive number.")
        return min(value, MAX_PAGE[resource])

    def _paged(self, request: Request, resource: str, items: list[bytes]) -> Reply:
        """A page of already encoded items, and the link to the next one (an offset)."""
        size = Simulator._page_size(request, resource)
        try:
            cursor = max(int(request.query.get("cursor", "0")), 0)
        except ValueError:
            cursor = 0
        reply = Reply(200, b'{"items":[' + b",".join(items[cursor:cursor + size]) + b"]}")
        if cursor + size < len(items):
            args = {**request.query, "cursor": str(cursor + size), "max": str(size)}
            reply.headers["Link"] = self._next_link(request, args)
        return reply

    @staticmethod
    def _body(request: Request, *required: str) -> dict[str, object]:
        body = request.json()
        if not isinstance(body, dict) or any(not isinstance(body.get(k), str) for k in required):
            raise WebexError(400, f"{' and '.join(required)} required in a JSON body.")
        return body

    # -- people ----------------------------------------------------------------------------
    def people_list(self, request: Request, person: SimPerson) -> Reply:
        email, name, ids = (request.query.get(k) for k in ("email", "displayName", "id"))
        if not (email or name or ids):
            raise WebexError(400, "Email, displayName, or id list should be specified.")
        with self.dataset.lock:
            found = [p for p in self.dataset.people.values()
                     if (not email or p.email == email.lower())
                     and (not name or p.display_name.lower().startswith(name.lower()))
                     and (not ids or p.id in ids.split(","))]
        return self._paged(request, "people", [dump(p.to_json()) for p in found])

    def people_get(self, request: Request, person: SimPerson) -> Reply:
        found = self.dataset.people.get(request.path.rsplit("/", 1)[1])
        if found is None:
            raise WebexError(404, NOT_FOUND)
        return Reply(200, dump(found.to_json()))

    # -- rooms -----------------------------------------------------------------------------
    def rooms_list(self, request: Request, person: SimPerson) -> Reply:
        kind, team = request.query.get("type"), request.query.get("teamId")
        if kind not in (None, "direct", "group"):
            raise WebexError(400, "Invalid type: use direct or group.")
        sort_by = request.query.get("sortBy", "lastactivity")
        if sort_by not in ROOM_SORTS:
            raise WebexError(400, f"Invalid sortBy: {sort_by!r}; use id, lastactivity or "
                                  "created.")
        people = self.dataset.people
        return self._paged(request, "rooms", [
            dump(r.to_json(person.id, people)) for r in self.dataset.rooms_of(person.id, sort_by)
            if (kind is None or r.type == kind) and (team is None or r.team_id == team)])

    def rooms_create(self, request: Request, person: SimPerson) -> Reply:
        title = self._body(request, "title")["title"]
        assert isinstance(title, str)
        if not title.strip():
            raise WebexError(400, "title must not be empty.")
        room = SimRoom(new_id("ROOM"), title[:500], "group", person.id, now_iso(),
                       members={person.id: True})
        self.dataset.add_room(room)
        return Reply(200, dump(room.to_json(person.id, self.dataset.people)))

    def rooms_get(self, request: Request, person: SimPerson) -> Reply:
        room = self._member_room(person, request.path.rsplit("/", 1)[1])
        return Reply(200, dump(room.to_json(person.id, self.dataset.people)))

    def rooms_delete(self, request: Request, person: SimPerson) -> Reply:
        room = self._member_room(person, request.path.rsplit("/", 1)[1])
        self.dataset.remove_room(room.id)
        return Reply(204)

    # -- messages --------------------------------------------------------------------------
    def messages_list(self, request: Request, person: SimPerson) -> Reply:
        query = request.query
        room_id = query.get("roomId")
        if not room_id:
            raise WebexError(400, "roomId is required.")
        room = self._readable_room(person, room_id)
        size = self._page_size(request, "messages")
        messages = room.messages
        end = len(messages)
        before_message = query.get("beforeMessage")
        if before_message:
            found = self.dataset.message_index.get(before_message)
            if found is None or found.room_id != room.id:
                raise WebexError(404, NOT_FOUND)
            end = room.position[before_message]
        before = query.get("before")
        if before:  # created times are in order, so a binary search finds the cut
            cut = self._before(before)
            end = min(end, bisect_left(messages, cut, key=lambda m: m.created))
        parent, mentioned = query.get("parentId"), self._mentioned(query, person)
        if parent and parent not in room.position:
            raise WebexError(404, NOT_FOUND)
        if parent or mentioned:  # filtered: fewer, and found by a walk
            chosen = [m for m in messages[:end] if (not parent or m.parent_id == parent)
                      and (not mentioned or mentioned in m.mentioned)]
            page, more = chosen[max(len(chosen) - size, 0):][::-1], len(chosen) > size
        else:
            page, more = messages[max(end - size, 0):end][::-1], end - size > 0
        reply = Reply(200, b'{"items":[' + b",".join(m.encoded() for m in page) + b"]}")
        if more:
            args = {k: v for k, v in query.items() if k != "before"}
            args.update(beforeMessage=page[-1].id, max=str(size))
            reply.headers["Link"] = self._next_link(request, args)
        return reply

    @staticmethod
    def _before(value: str) -> str:
        """``before`` as Webex reads it: an ISO 8601 time (UTC if it names no zone), as
        the ``created`` text of the first millisecond not before it."""
        try:
            moment = parse_time(value)
        except ValueError:
            raise WebexError(400, f"Invalid before: {value!r} is not an ISO 8601 date and "
                                  "time, such as 2019-01-07T09:00:00.000Z.") from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if moment.microsecond % 1000:
            moment += timedelta(microseconds=1000 - moment.microsecond % 1000)
        return iso(moment)

    @staticmethod
    def _mentioned(query: dict[str, str], person: SimPerson) -> str | None:
        """``mentionedPeople``: only ``me`` or the caller's own id, as Webex allows."""
        value = query.get("mentionedPeople")
        if not value:
            return None
        if any(v not in ("me", person.id) for v in value.split(",")):
            raise WebexError(400, "mentionedPeople: only me or the person ID of the current "
                                  "user may be specified.")
        return person.id

    def messages_get(self, request: Request, person: SimPerson) -> Reply:
        message = self.dataset.message_index.get(request.path.rsplit("/", 1)[1])
        if message is None:
            raise WebexError(404, NOT_FOUND)
        self._readable_room(person, message.room_id)
        return Reply(200, message.encoded())

    def messages_delete(self, request: Request, person: SimPerson) -> Reply:
        message = self.dataset.message_index.get(request.path.rsplit("/", 1)[1])
        if message is None:
            raise WebexError(404, NOT_FOUND)
        self._member_room(person, message.room_id)
        self.dataset.remove_message(message.id)
        return Reply(204)

    def inspect_messages(self, request: Request) -> Reply:
        """``GET /_sim/messages`` (not Webex's): :attr:`sent`, ``?to=`` one recipient's,
        for the bot's token only (the demo mode's server listens on loopback only)."""
        header = request.headers.get("authorization", "")
        bot = self.config.bot_token
        if not bot or header != f"Bearer {bot}":
            return error_reply(401, "Send the bot's token: Authorization: Bearer <bot_token>.")
        to = (request.query.get("to") or "").lower()
        with self.dataset.lock:
            items = [m for m in self.sent if not to or m["to"] == to]
        return Reply(200, dump({"items": items}))

    def _direct_room(self, person: SimPerson, body: dict[str, object]) -> SimRoom:
        """The direct space of ``person`` and the ``toPersonEmail`` / ``toPersonId`` of
        ``body``, made at the first message as Webex does."""
        email, person_id = body.get("toPersonEmail"), body.get("toPersonId")
        if isinstance(email, str) and "@" in email:
            other = self.dataset.by_email.get(email.strip().lower())
            if other is None:  # Webex invites unknown addresses; so does this
                other = SimPerson(new_id("PEOPLE"), email.strip().lower(),
                                  email.split("@")[0], now_iso())
                self.dataset.add_person(other)
        elif isinstance(person_id, str) and person_id in self.dataset.people:
            other = self.dataset.people[person_id]
        else:
            raise WebexError(400, "roomId, toPersonId or toPersonEmail is required.")
        if other.id == person.id:
            raise WebexError(400, "You cannot send a direct message to yourself.")
        with self.dataset.lock:
            room = next((r for r in self.dataset.rooms.values() if r.type == "direct"
                         and set(r.members) == {person.id, other.id}), None)
            if room is None:
                room = SimRoom(new_id("ROOM"), other.display_name, "direct", person.id,
                               now_iso(), members={person.id: False, other.id: False})
                self.dataset.add_room(room)
        return room

    def messages_create(self, request: Request, person: SimPerson) -> Reply:
        body = self._body(request)
        text = body.get("text") or body.get("markdown")
        if not isinstance(text, str) or not text:
            raise WebexError(400, "text or markdown is required.")
        if self.config.fail_messages:
            status = self.config.fail_messages_status
            raise WebexError(status, "The message could not be sent (simulated failure).",
                             self.retry_after(1) if status in (429, 503) else None)
        if isinstance(body.get("roomId"), str):
            room = self._member_room(person, str(body["roomId"]))
        else:
            room = self._direct_room(person, body)
        parent = body.get("parentId")
        if parent is not None and (not isinstance(parent, str) or parent not in room.position):
            raise WebexError(400, "parentId must be a message of this space.")
        message = SimMessage(new_id("MESSAGE"), room.id, room.type, person.id, person.email,
                             text[:7439], now_iso(), parent_id=parent)
        if room.messages and message.created < room.messages[-1].created:
            message.created = room.messages[-1].created  # keep the order ``before`` relies on
        self.dataset.add_message(room, message)
        others = [self.dataset.people[p].email for p in room.members if p != person.id]
        markdown = body.get("markdown")
        with self.dataset.lock:
            self.sent.append({
                "id": message.id, "from": person.email, "roomId": room.id,
                "to": others[0] if room.type == "direct" and others else None,
                "markdown": markdown if isinstance(markdown, str) else None,
                "text": text[:7439]})
        return Reply(200, message.encoded())

    # -- memberships -----------------------------------------------------------------------
    def memberships_list(self, request: Request, person: SimPerson) -> Reply:
        room_id = request.query.get("roomId")
        rooms = [self._member_room(person, room_id)] if room_id else self.dataset.rooms_of(
            person.id)
        email = (request.query.get("personEmail") or "").lower()
        people = self.dataset.people
        items = [dump(self.dataset.membership(r, pid)) for r in rooms for pid in list(r.members)
                 if (room_id or pid == person.id) and (not email or people[pid].email == email)]
        return self._paged(request, "memberships", items)

    def memberships_create(self, request: Request, person: SimPerson) -> Reply:
        body = self._body(request, "roomId")
        room = self._member_room(person, str(body["roomId"]))
        email = body.get("personEmail")
        if not isinstance(email, str) or "@" not in email:
            raise WebexError(400, "personEmail or personId is required.")
        member = self.dataset.by_email.get(email.lower())
        if member is None:  # Webex invites unknown addresses; so does this
            member = SimPerson(new_id("PEOPLE"), email.lower(), email.split("@")[0], now_iso())
            self.dataset.add_person(member)
        if member.id in room.members:
            raise WebexError(409, "Person is already in the room.")
        with self.dataset.lock:
            room.members[member.id] = bool(body.get("isModerator"))
        return Reply(200, dump(self.dataset.membership(room, member.id)))

