"""The simulator's configuration and data: users, spaces, messages from a seed.

The same seed gives the same users, spaces and messages, so a test can compare what a
job found with :meth:`Dataset.ground_truth`. Space sizes are skewed (many small or
empty spaces, a few with thousands of messages) and titles include non-Latin and
HTML-like text, the inputs that break naive pages.
"""

from __future__ import annotations

import base64
import json
import math
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

TITLE_WORDS = ["Project", "Team", "Standup", "Launch", "Design", "Support", "Sales", "Ops",
               "Release", "Retro", "Café", "Zürich", "東京", "Δ-review", "Ünïcödé", "🚀 Rockets"]
HOSTILE_TITLES = ["<script>alert('space')</script>", "<img src=x onerror=alert(1)>",
                  "Tom & Jerry <b>bold</b>", "\u202eRTL override"]
#: Registered when nothing else is: the login callback on this machine, at any port
#: (RFC 8252 section 7.3), which is where the tests' and a local app's servers listen.
LOOPBACK_REDIRECT_URIS = ("http://127.0.0.1/redirect", "http://localhost/redirect",
                          "http://[::1]/redirect")


@dataclass
class SimulatorConfig:
    """What to simulate. ``latency_ms``, ``jitter_ms`` may change while it runs."""

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
    #: The integration's redirect URIs: ``/v1/authorize`` sends a code to these only,
    #: compared as strings, as Webex does. A loopback one without a port (the default)
    #: accepts any port. May change while it runs.
    redirect_uris: list[str] = field(default_factory=lambda: list(LOOPBACK_REDIRECT_URIS))


def webex_id(kind: str, value: str) -> str:
    """Webex ids are base64 of ``ciscospark://us/KIND/uuid``; these look the same."""
    raw = f"ciscospark://us/{kind}/{value}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def iso(moment: datetime) -> str:
    """Webex's timestamp format: UTC, milliseconds, ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(datetime.now(UTC))


def new_id(kind: str) -> str:
    return webex_id(kind, str(uuid.uuid4()))


@dataclass
class SimMessage:
    id: str
    room_id: str
    room_type: str
    person_id: str
    person_email: str
    text: str
    created: str
    _encoded: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "roomId": self.room_id, "roomType": self.room_type,
                "text": self.text, "personId": self.person_id,
                "personEmail": self.person_email, "created": self.created}

    def encoded(self) -> bytes:
        """The JSON bytes, made once: pages of 1,000 messages are then a join, not a dump."""
        if self._encoded is None:
            self._encoded = dump(self.to_json())
        return self._encoded


@dataclass
class SimRoom:
    id: str
    title: str
    type: str
    creator_id: str
    created: str
    members: dict[str, bool] = field(default_factory=dict)  # person id -> moderator
    messages: list[SimMessage] = field(default_factory=list)  # oldest first
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
                "orgId": webex_id("ORGANIZATION", "simulated"), "created": self.created,
                "type": "person"}


def dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class Dataset:
    """Users, spaces and messages. ``lock`` guards changes seen from other threads."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.lock = threading.RLock()
        rng = random.Random(config.seed)
        start = datetime(2019, 1, 7, 9, 0, tzinfo=UTC)
        self.people: dict[str, SimPerson] = {}
        self.by_email: dict[str, SimPerson] = {}
        for n in range(1, max(config.users, 1) + 1):
            self.add_person(SimPerson(webex_id("PEOPLE", str(uuid.UUID(int=rng.getrandbits(128)))),
                                      f"user{n}@{config.domain}", f"User{n} Simulated",
                                      iso(start - timedelta(days=400 - n))))
        self.rooms: dict[str, SimRoom] = {}
        self.message_index: dict[str, SimMessage] = {}
        users = list(self.people.values())
        for n, size in enumerate(skewed_sizes(rng, config.spaces, config.messages)):
            title = (HOSTILE_TITLES[n // 10 % len(HOSTILE_TITLES)] if n % 10 == 7 else
                     f"{rng.choice(TITLE_WORDS)} {rng.choice(TITLE_WORDS)} {n + 1}")
            created = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
            room = SimRoom(webex_id("ROOM", str(uuid.UUID(int=rng.getrandbits(128)))), title,
                           "direct" if n % 13 == 5 else "group", users[0].id, iso(created))
            members = [users[0]] + [u for u in users[1:] if rng.random() < 0.5]
            for person in members:
                room.members[person.id] = person is users[0]
            moment = created
            for i in range(size):
                moment += timedelta(seconds=rng.randrange(1, 3600))
                author = members[i % len(members)]
                self.add_message(room, SimMessage(
                    webex_id("MESSAGE", str(uuid.UUID(int=rng.getrandbits(128)))), room.id,
                    room.type, author.id, author.email, f"message {i + 1} in {title}",
                    iso(moment)))
            self.rooms[room.id] = room

    def add_person(self, person: SimPerson) -> None:
        with self.lock:
            self.people[person.id] = person
            self.by_email[person.email] = person

    def add_room(self, room: SimRoom) -> None:
        with self.lock:
            self.rooms[room.id] = room

    def remove_room(self, room_id: str) -> None:
        with self.lock:
            self.rooms.pop(room_id, None)

    def add_message(self, room: SimRoom, message: SimMessage) -> None:
        with self.lock:
            room.add(message)
            self.message_index[message.id] = message

    def rooms_of(self, person_id: str) -> list[SimRoom]:
        """The person's rooms, most recently active first (Webex's default order)."""
        with self.lock:
            rooms = [r for r in self.rooms.values() if person_id in r.members]
        return sorted(rooms, key=lambda r: r.last_activity, reverse=True)

    def membership(self, room: SimRoom, person_id: str) -> dict[str, Any]:
        person = self.people[person_id]
        return {"id": webex_id("MEMBERSHIP", f"{person_id}:{room.id}"), "roomId": room.id,
                "personId": person_id, "personEmail": person.email,
                "personDisplayName": person.display_name,
                "personOrgId": webex_id("ORGANIZATION", "simulated"),
                "isModerator": room.members[person_id], "isMonitor": False,
                "created": room.created}

    def ground_truth(self, email: str) -> list[dict[str, Any]]:
        """What ``space_stats`` must find for ``email``: per space, count, oldest, newest."""
        person = self.by_email[email]
        with self.lock:
            return [{"id": r.id, "title": r.title, "type": r.type, "messages": len(r.messages),
                     "oldest": r.messages[0].created if r.messages else None,
                     "newest": r.messages[-1].created if r.messages else None}
                    for r in self.rooms_of(person.id)]


def skewed_sizes(rng: random.Random, spaces: int, messages: int) -> list[int]:
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
