"""A Webex API simulator: the subset of Webex that Flask-Realtime uses, served over HTTP.

These machines cannot reach Webex, so the tests, the benchmarks and the demo mode
talk to this instead. It follows Webex's documented behaviour for that subset:

* paths and JSON shapes of ``/v1/people``, ``/v1/rooms``, ``/v1/messages`` and
  ``/v1/memberships``; lists are ``{"items": [...]}`` split into pages of at most
  ``max`` items (cut to the endpoint's maximum, never refused) with a
  ``Link: <…>; rel="next"`` header while more remain; messages newest first,
  ``before`` (a time) and ``beforeMessage`` (an id) honoured;
* errors as Webex sends them: ``{"message", "errors": [{"description"}],
  "trackingId"}`` and a ``TrackingID`` header; 401 for a missing, unknown or expired
  token; 404 for a space the caller is not a member of; 429 with ``Retry-After``
  (seconds) above the configured request rate;
* OAuth: ``GET /v1/authorize`` approves at once (for ``login_hint``'s user, else
  user1) and redirects back with a code; ``POST /v1/access_token`` trades a code
  (checking the PKCE verifier) or a refresh token for tokens with configurable
  lifetimes.

Data is generated from a seed: the same seed gives the same users, spaces and
messages. Space sizes are skewed (many small or empty spaces, a few with thousands of
messages) and titles include non-Latin text and HTML-like text.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import secrets
import threading
import time
import uuid
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

#: The largest page each list endpoint serves.
MAX_PAGE = {"rooms": 1000, "messages": 1000, "memberships": 1000, "people": 1000}
DEFAULT_PAGE = {"rooms": 100, "messages": 50, "memberships": 100, "people": 100}

TITLE_WORDS = ["Project", "Team", "Standup", "Launch", "Design", "Support", "Sales", "Ops",
               "Release", "Retro", "Café", "Zürich", "東京", "Δ-review", "Ünïcödé", "🚀 Rockets"]
HOSTILE_TITLES = ["<script>alert('space')</script>", "<img src=x onerror=alert(1)>",
                  "Tom & Jerry <b>bold</b>", "\u202eRTL override"]


@dataclass
class SimulatorConfig:
    seed: int = 2019
    users: int = 3
    spaces: int = 40
    messages: int = 4000
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    #: Requests per second per access token before 429 (None: no limit).
    rate_limit: float | None = None
    access_token_lifetime: float = 14 * 24 * 3600
    refresh_token_lifetime: float = 90 * 24 * 3600
    client_id: str = "demo-client"
    client_secret: str = "demo-secret"
    domain: str = "example.com"


def _webex_id(kind: str, value: str) -> str:
    """Webex ids are base64 of ``ciscospark://us/KIND/uuid``; these look the same."""
    raw = f"ciscospark://us/{kind}/{value}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class SimMessage:
    id: str
    room_id: str
    person_id: str
    person_email: str
    text: str
    created: str

    def to_json(self, room_type: str) -> dict[str, Any]:
        return {"id": self.id, "roomId": self.room_id, "roomType": room_type,
                "text": self.text, "personId": self.person_id,
                "personEmail": self.person_email, "created": self.created}


@dataclass
class SimRoom:
    id: str
    title: str
    type: str
    creator_id: str
    created: str
    members: dict[str, bool] = field(default_factory=dict)  # person id -> moderator
    messages: list[SimMessage] = field(default_factory=list)  # oldest first
    membership_ids: dict[str, str] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)  # message id -> index

    def add(self, message: SimMessage) -> None:
        self.position[message.id] = len(self.messages)
        self.messages.append(message)

    @property
    def last_activity(self) -> str:
        return self.messages[-1].created if self.messages else self.created

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "type": self.type, "isLocked": False,
                "lastActivity": self.last_activity, "creatorId": self.creator_id,
                "created": self.created, "ownerId": "consumer"}


@dataclass
class SimPerson:
    id: str
    email: str
    display_name: str
    created: str

    def to_json(self) -> dict[str, Any]:
        first, _, last = self.display_name.partition(" ")
        return {"id": self.id, "emails": [self.email], "displayName": self.display_name,
                "nickName": first, "firstName": first, "lastName": last,
                "orgId": _webex_id("ORGANIZATION", "simulated"), "created": self.created,
                "type": "person"}


class Dataset:
    """Users, spaces and messages, generated from the config's seed. Thread-safe."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.lock = threading.RLock()
        rng = random.Random(config.seed)
        start = datetime(2019, 1, 7, 9, 0, tzinfo=UTC)
        self.people: dict[str, SimPerson] = {}
        self.by_email: dict[str, SimPerson] = {}
        for n in range(1, max(config.users, 1) + 1):
            person = SimPerson(_webex_id("PEOPLE", str(uuid.UUID(int=rng.getrandbits(128)))),
                               f"user{n}@{config.domain}", f"User{n} Simulated",
                               _iso(start - timedelta(days=400 - n)))
            self.add_person(person)
        self.rooms: dict[str, SimRoom] = {}
        sizes = _skewed_sizes(rng, config.spaces, config.messages)
        users = list(self.people.values())
        for n, size in enumerate(sizes):
            title = (HOSTILE_TITLES[n // 10 % len(HOSTILE_TITLES)] if n % 10 == 7 else
                     f"{rng.choice(TITLE_WORDS)} {rng.choice(TITLE_WORDS)} {n + 1}")
            created = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
            room = SimRoom(_webex_id("ROOM", str(uuid.UUID(int=rng.getrandbits(128)))), title,
                           "direct" if n % 13 == 5 else "group", users[0].id, _iso(created))
            members = [users[0]] + [u for u in users[1:] if rng.random() < 0.5]
            for person in members:
                self.add_member(room, person, moderator=person is users[0])
            moment = created
            for i in range(size):
                moment += timedelta(seconds=rng.randrange(1, 3600))
                author = members[i % len(members)]
                room.add(SimMessage(
                    _webex_id("MESSAGE", str(uuid.UUID(int=rng.getrandbits(128)))), room.id,
                    author.id, author.email, f"message {i + 1} in {title}", _iso(moment)))
            self.rooms[room.id] = room
        self.message_index: dict[str, SimMessage] = {
            m.id: m for r in self.rooms.values() for m in r.messages}

    def add_person(self, person: SimPerson) -> None:
        self.people[person.id] = person
        self.by_email[person.email] = person

    def add_member(self, room: SimRoom, person: SimPerson, moderator: bool = False) -> str:
        room.members[person.id] = moderator
        membership_id = _webex_id("MEMBERSHIP", f"{person.id}:{room.id}")
        room.membership_ids[person.id] = membership_id
        return membership_id

    def rooms_of(self, person_id: str) -> list[SimRoom]:
        """The person's rooms, most recently active first (Webex's default order)."""
        with self.lock:
            rooms = [r for r in self.rooms.values() if person_id in r.members]
        return sorted(rooms, key=lambda r: r.last_activity, reverse=True)

    def ground_truth(self, email: str) -> list[dict[str, Any]]:
        """What ``space_stats`` must find for ``email``: per space, count, oldest, newest."""
        person = self.by_email[email]
        return [{"id": r.id, "title": r.title, "type": r.type, "messages": len(r.messages),
                 "oldest": r.messages[0].created if r.messages else None,
                 "newest": r.messages[-1].created if r.messages else None}
                for r in self.rooms_of(person.id)]


def _skewed_sizes(rng: random.Random, spaces: int, messages: int) -> list[int]:
    """``spaces`` sizes summing to ``messages``: Zipf-like, some empty, a few large."""
    if spaces <= 0:
        return []
    weights = [0.0 if i % 9 == 4 else 1.0 / (i + 1) ** 1.1 for i in range(spaces)]
    total = sum(weights) or 1.0
    sizes = [math.floor(messages * w / total) for w in weights]
    for i in range(messages - sum(sizes)):
        sizes[i % spaces if weights[i % spaces] else 0] += 1
    rng.shuffle(sizes)
    return sizes


class _RateLimiter:
    """Sliding one-second window of request times per token."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.windows: dict[str, deque[float]] = {}
        self.lock = threading.Lock()
        self.accepted: deque[float] = deque(maxlen=100_000)  # for benchmarks

    def admit(self, key: str) -> float:
        """0 when the request may go on, else the seconds to wait."""
        now = time.monotonic()
        with self.lock:
            if self.rate is None:
                self.accepted.append(now)
                return 0.0
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
        best = 0
        for i, t in enumerate(times):
            best = max(best, bisect_left(times, t + 1.0) - i)
        return best


@dataclass
class _Grant:
    user: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str | None
    expires: float


class Simulator:
    """The simulator's state and its Flask app (``self.app``)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.dataset = Dataset(config)
        self.limiter = _RateLimiter(config.rate_limit)
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (person id, expiry)
        self.refresh: dict[str, tuple[str, float]] = {}
        self.codes: dict[str, _Grant] = {}
        self.faults: deque[int] = deque()  # statuses to answer the next API requests with
        self.lock = threading.Lock()
        self.app = self._make_app()

    # -- tokens --------------------------------------------------------------------------
    def token_for(self, email: str, lifetime: float | None = None) -> str:
        person = self.dataset.by_email[email]
        token = secrets.token_urlsafe(32)
        life = self.config.access_token_lifetime if lifetime is None else lifetime
        with self.lock:
            self.tokens[token] = (person.id, time.time() + life)
        return token

    def fail_next(self, *statuses: int) -> None:
        """Answer the next API requests with these statuses (for retry tests)."""
        self.faults.extend(statuses)

    def _issue(self, person_id: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        with self.lock:
            self.tokens[access] = (person_id, now + self.config.access_token_lifetime)
            self.refresh[refresh] = (person_id, now + self.config.refresh_token_lifetime)
        return {"access_token": access, "expires_in": int(self.config.access_token_lifetime)
                or 1, "refresh_token": refresh,
                "refresh_token_expires_in": int(self.config.refresh_token_lifetime),
                "token_type": "Bearer", "scope": "spark:all spark:kms"}

    # -- the app -------------------------------------------------------------------------
    def _make_app(self) -> Flask:
        app = Flask("flask_realtime.webex.simulator")
        app.json.sort_keys = False  # type: ignore[attr-defined]  # Webex's field order, faster
        app.json.compact = True  # type: ignore[attr-defined]
        sim = self

        def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
            tracking = f"ROUTER_{uuid.uuid4().hex[:8].upper()}-SIM"
            response = jsonify(message=message, errors=[{"description": message}],
                               trackingId=tracking)
            response.status_code = status
            response.headers["TrackingID"] = tracking
            for k, v in (headers or {}).items():
                response.headers[k] = v
            return response

        def caller() -> SimPerson | Response:
            header = request.headers.get("Authorization", "")
            token = header[7:] if header.startswith("Bearer ") else ""
            with sim.lock:
                entry = sim.tokens.get(token)
            if entry is None or entry[1] < time.time():
                return error(401, "The request requires a valid access token set in the "
                                  "Authorization request header.")
            wait = sim.limiter.admit(token)
            if wait:
                return error(429, "Too many requests: retry later.",
                             {"Retry-After": str(max(1, math.ceil(wait)))})
            if sim.faults:
                try:
                    status = sim.faults.popleft()
                except IndexError:
                    pass
                else:
                    return error(status, "The server encountered an error (simulated).")
            delay = sim.config.latency_ms + random.uniform(0, sim.config.jitter_ms)
            if delay > 0:
                time.sleep(delay / 1000)
            return sim.dataset.people[entry[0]]

        def page_size(resource: str) -> int | Response:
            raw = request.args.get("max")
            if raw is None:
                return DEFAULT_PAGE[resource]
            try:
                value = int(raw)
            except ValueError:
                return error(400, f"Invalid max: {raw!r} is not a number.")
            if value < 1:
                return error(400, "max must be a positive number.")
            return min(value, MAX_PAGE[resource])

        def paged(items: list[dict[str, Any]], size: int, cursor: int,
                  next_args: dict[str, Any] | None = None) -> Response:
            page = items[cursor:cursor + size]
            response = jsonify(items=page)
            if cursor + size < len(items):
                args = {k: v for k, v in request.args.items() if k != "cursor"}
                args.update(next_args or {"cursor": cursor + size})
                url = f"{request.base_url}?{urlencode(args)}"
                response.headers["Link"] = f'<{url}>; rel="next"'
            return response

        def cursor_arg() -> int:
            try:
                return max(int(request.args.get("cursor", "0")), 0)
            except ValueError:
                return 0

        def member_room(person: SimPerson, room_id: str) -> SimRoom | Response:
            room = sim.dataset.rooms.get(room_id)
            if room is None or person.id not in room.members:
                return error(404, "The requested resource could not be found.")
            return room

        @app.get("/v1/people/me")
        def people_me() -> Any:
            person = caller()
            return person if isinstance(person, Response) else jsonify(person.to_json())

        @app.get("/v1/people")
        def people_list() -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            size = page_size("people")
            if isinstance(size, Response):
                return size
            email, name = request.args.get("email"), request.args.get("displayName")
            ids = request.args.get("id")
            if not (email or name or ids):
                return error(400, "Email, displayName, or id list should be specified.")
            found = [p for p in sim.dataset.people.values()
                     if (not email or p.email == email.lower())
                     and (not name or p.display_name.lower().startswith(name.lower()))
                     and (not ids or p.id in ids.split(","))]
            return paged([p.to_json() for p in found], size, cursor_arg())

        @app.get("/v1/people/<person_id>")
        def people_get(person_id: str) -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            found = sim.dataset.people.get(person_id)
            return jsonify(found.to_json()) if found else error(
                404, "The requested resource could not be found.")

        @app.get("/v1/rooms")
        def rooms_list() -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            size = page_size("rooms")
            if isinstance(size, Response):
                return size
            kind = request.args.get("type")
            if kind not in (None, "direct", "group"):
                return error(400, "Invalid type: use direct or group.")
            rooms = [r.to_json() for r in sim.dataset.rooms_of(person.id)
                     if kind is None or r.type == kind]
            return paged(rooms, size, cursor_arg())

        @app.post("/v1/rooms")
        def rooms_create() -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            body = request.get_json(silent=True)
            title = body.get("title") if isinstance(body, dict) else None
            if not isinstance(title, str) or not title.strip():
                return error(400, "title is required.")
            room = SimRoom(_webex_id("ROOM", str(uuid.uuid4())), title[:500], "group",
                           person.id, _iso(datetime.now(UTC)))
            with sim.dataset.lock:
                sim.dataset.add_member(room, person, moderator=True)
                sim.dataset.rooms[room.id] = room
            return jsonify(room.to_json())

        @app.get("/v1/rooms/<room_id>")
        def rooms_get(room_id: str) -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            room = member_room(person, room_id)
            return room if isinstance(room, Response) else jsonify(room.to_json())

        @app.delete("/v1/rooms/<room_id>")
        def rooms_delete(room_id: str) -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            room = member_room(person, room_id)
            if isinstance(room, Response):
                return room
            with sim.dataset.lock:
                sim.dataset.rooms.pop(room_id, None)
            return Response(status=204)

        @app.get("/v1/messages")
        def messages_list() -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            room_id = request.args.get("roomId")
            if not room_id:
                return error(400, "roomId is required.")
            room = member_room(person, room_id)
            if isinstance(room, Response):
                return room
            size = page_size("messages")
            if isinstance(size, Response):
                return size
            with sim.dataset.lock:
                messages = room.messages
                end = len(messages)
            before_message = request.args.get("beforeMessage")
            if before_message:
                found = sim.dataset.message_index.get(before_message)
                if found is None or found.room_id != room.id:
                    return error(404, "The requested resource could not be found.")
                end = room.position[before_message]
            before = request.args.get("before")
            if before:
                end = min(end, bisect_left([m.created for m in messages], before))
            page = messages[max(end - size, 0):end][::-1]
            response = jsonify(items=[m.to_json(room.type) for m in page])
            if end - size > 0:
                args = {k: v for k, v in request.args.items() if k != "before"}
                args["beforeMessage"] = page[-1].id
                args["max"] = str(size)
                response.headers["Link"] = (
                    f'<{request.base_url}?{urlencode(args)}>; rel="next"')
            return response

        @app.post("/v1/messages")
        def messages_create() -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or not isinstance(body.get("roomId"), str):
                return error(400, "roomId is required.")
            text = body.get("text") or body.get("markdown")
            if not isinstance(text, str) or not text:
                return error(400, "text or markdown is required.")
            room = member_room(person, body["roomId"])
            if isinstance(room, Response):
                return room
            message = SimMessage(_webex_id("MESSAGE", str(uuid.uuid4())), room.id, person.id,
                                 person.email, text[:7439], _iso(datetime.now(UTC)))
            with sim.dataset.lock:
                room.add(message)
                sim.dataset.message_index[message.id] = message
            return jsonify(message.to_json(room.type))

        @app.get("/v1/memberships")
        def memberships_list() -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            size = page_size("memberships")
            if isinstance(size, Response):
                return size
            room_id = request.args.get("roomId")
            if room_id:
                room = member_room(person, room_id)
                if isinstance(room, Response):
                    return room
                rooms = [room]
            else:
                rooms = sim.dataset.rooms_of(person.id)
            email = request.args.get("personEmail")
            items = [_membership(sim.dataset, r, pid) for r in rooms for pid in r.members
                     if (room_id or pid == person.id)
                     and (not email or sim.dataset.people[pid].email == email.lower())]
            return paged(items, size, cursor_arg())

        @app.post("/v1/memberships")
        def memberships_create() -> Any:
            person = caller()
            if isinstance(person, Response):
                return person
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or not isinstance(body.get("roomId"), str):
                return error(400, "roomId is required.")
            room = member_room(person, body["roomId"])
            if isinstance(room, Response):
                return room
            email = body.get("personEmail")
            if not isinstance(email, str) or "@" not in email:
                return error(400, "personEmail or personId is required.")
            with sim.dataset.lock:
                member = sim.dataset.by_email.get(email.lower())
                if member is None:  # Webex invites unknown addresses; so does this
                    member = SimPerson(_webex_id("PEOPLE", str(uuid.uuid4())), email.lower(),
                                       email.split("@")[0], _iso(datetime.now(UTC)))
                    sim.dataset.add_person(member)
                if member.id in room.members:
                    return error(409, "Person is already in the room.")
                sim.dataset.add_member(room, member, bool(body.get("isModerator")))
            return jsonify(_membership(sim.dataset, room, member.id))

        @app.get("/v1/authorize")
        def authorize() -> Any:
            args = request.args
            if args.get("client_id") != sim.config.client_id:
                return error(400, "Invalid client_id.")
            redirect_uri = args.get("redirect_uri")
            if not redirect_uri or args.get("response_type") != "code":
                return error(400, "redirect_uri and response_type=code are required.")
            hint = (args.get("login_hint") or "user1").lower()
            email = hint if "@" in hint else f"{hint}@{sim.config.domain}"
            person = sim.dataset.by_email.get(email)
            if person is None:
                return error(400, f"No such user: {hint}.")
            code = secrets.token_urlsafe(24)
            with sim.lock:
                sim.codes[code] = _Grant(person.id, sim.config.client_id, redirect_uri,
                                         args.get("code_challenge"),
                                         args.get("code_challenge_method"), time.time() + 300)
            query = {"code": code}
            if args.get("state") is not None:
                query["state"] = args["state"]
            separator = "&" if "?" in redirect_uri else "?"
            return redirect(f"{redirect_uri}{separator}{urlencode(query)}", 302)

        @app.post("/v1/access_token")
        def access_token() -> Any:
            form = request.form

            def refuse(description: str) -> Any:
                response = jsonify(error="invalid_grant", error_description=description,
                                   message=description, trackingId="SIM_OAUTH")
                response.status_code = 400
                return response

            if (form.get("client_id") != sim.config.client_id
                    or form.get("client_secret") != sim.config.client_secret):
                response = jsonify(error="invalid_client", message="Invalid client.")
                response.status_code = 401
                return response
            grant = form.get("grant_type")
            if grant == "authorization_code":
                with sim.lock:
                    granted = sim.codes.pop(form.get("code", ""), None)
                if granted is None or granted.expires < time.time():
                    return refuse("The authorization code is invalid or was used already.")
                if form.get("redirect_uri") != granted.redirect_uri:
                    return refuse("redirect_uri does not match the authorization request.")
                if granted.challenge:
                    verifier = form.get("code_verifier", "")
                    digest = base64.urlsafe_b64encode(
                        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                    expected = digest if granted.method == "S256" else verifier
                    if not secrets.compare_digest(expected, granted.challenge):
                        return refuse("The PKCE code_verifier does not match.")
                return jsonify(sim._issue(granted.user))
            if grant == "refresh_token":
                with sim.lock:
                    entry = sim.refresh.get(form.get("refresh_token", ""))
                if entry is None or entry[1] < time.time():
                    return refuse("The refresh token is invalid or expired.")
                return jsonify(sim._issue(entry[0]))
            return refuse("Unsupported grant_type.")

        @app.errorhandler(404)
        def not_found(exc: Exception) -> Any:
            return error(404, "The requested resource could not be found.")

        @app.errorhandler(405)
        def not_allowed(exc: Exception) -> Any:
            return error(405, "Method not allowed.")

        return app


def _membership(dataset: Dataset, room: SimRoom, person_id: str) -> dict[str, Any]:
    person = dataset.people[person_id]
    return {"id": room.membership_ids[person_id], "roomId": room.id, "personId": person_id,
            "personEmail": person.email, "personDisplayName": person.display_name,
            "personOrgId": _webex_id("ORGANIZATION", "simulated"),
            "isModerator": room.members[person_id], "isMonitor": False,
            "created": room.created}


class SimulatorHandle:
    """A running simulator: its URL, its data, tokens for tests, and ``stop()``."""

    def __init__(self, simulator: Simulator, server: BaseWSGIServer) -> None:
        self.simulator = simulator
        self.server = server
        self.config = simulator.config
        self.dataset = simulator.dataset
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        self.base_url = f"http://{host}:{port}/v1"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.1}, name="webex-simulator", daemon=True)
        self._thread.start()

    def token_for(self, email: str = "user1@example.com", lifetime: float | None = None) -> str:
        return self.simulator.token_for(email, lifetime)

    def fail_next(self, *statuses: int) -> None:
        self.simulator.fail_next(*statuses)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: the demo and the tests make thousands."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def start_simulator(config: SimulatorConfig | None = None, host: str = "127.0.0.1",
                    port: int = 0) -> SimulatorHandle:
    """Serve a simulator in a background thread (``port=0``: a free port)."""
    simulator = Simulator(config or SimulatorConfig())
    server = make_server(host, port, simulator.app, threaded=True,
                         request_handler=_QuietHandler)
    server.daemon_threads = True  # type: ignore[attr-defined]  # threaded server
    return SimulatorHandle(simulator, server)
