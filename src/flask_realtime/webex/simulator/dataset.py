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


#: The scopes the simulated integration was registered with: what the app asks for by
#: default (``spark:all spark:kms``) and the narrower read and write scopes.
INTEGRATION_SCOPES = ("spark:all", "spark:kms", "spark:people_read", "spark:rooms_read",
                      "spark:rooms_write", "spark:messages_read", "spark:messages_write",
                      "spark:memberships_read", "spark:memberships_write")
#: What Webex puts in a field it could not decrypt (the key server did not answer).
KMS_FAILURE = {"code": "kms_failure",
               "reason": "Key management server failed to respond appropriately. For more "
                         "information: https://developer.webex.com/docs/api/basics#compliance"}


@dataclass
class SimulatorConfig:
    """What to simulate. ``latency_ms``, ``jitter_ms``, ``redirect_uris``, ``retry_after``,
    ``next_link_max_null`` and ``relative_next_links`` may change while it runs.

    The data fields (``threads`` to ``kms_failures``) shape the seeded data; each draws
    on a random stream of its own, so turning one on or off leaves the rest of the data
    (ids, sizes, times) as it was. The fault fields make the simulator answer as Webex
    does on a bad day; all are off by default. Spaces picked for a fault are chosen from
    the seed, disjoint, and named in :attr:`Dataset.faulty` (room id -> fault).
    """

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
    #: The integration's scopes: ``/v1/authorize`` asked for any other answers Webex's
    #: ``invalid_scope`` error (a redirect with ``error=invalid_scope``).
    scopes: list[str] = field(default_factory=lambda: list(INTEGRATION_SCOPES))

    # -- the data --------------------------------------------------------------------------
    #: Share of messages that are threaded replies (``parentId``: an earlier message of
    #: the same space that is not a reply). Lists show them among the others, as Webex.
    threads: float = 0.1
    #: Share of messages in group spaces that mention another member (``mentionedPeople``).
    mentions: float = 0.1
    #: Share of messages edited after posting (an ``updated`` time after ``created``).
    edited: float = 0.05
    #: Share of messages created in the same millisecond as the one before (ties).
    ties: float = 0.05
    #: Messages deleted after posting, as a share of ``messages``, on top of them: in no
    #: list, and 404 to ``GET /messages/{id}`` (:attr:`Dataset.deleted_messages`).
    deleted: float = 0.02
    #: Teams: every fourth group space belongs to one (``teamId``, ``GET /rooms?teamId=``).
    teams: int = 2
    #: Spaces whose title Webex could not decrypt: the item has no ``title`` and carries
    #: ``errors: {"title": {"code": "kms_failure", ...}}`` (:data:`KMS_FAILURE`).
    kms_failures: int = 0

    # -- faults (all off by default) -------------------------------------------------------
    #: Spaces that are listed but whose messages answer 403 "Failed to get activity"
    #: (Webex's error body, with a trackingId), every time.
    forbidden_spaces: int = 0
    #: Spaces that are listed, then deleted by someone else at the first read of their
    #: messages: that read and every later one answer 404, and lists leave them out.
    vanishing_spaces: int = 0
    #: Spaces whose messages answer 423 Locked (with ``Retry-After``) ``locked_times``
    #: times, then normally.
    locked_spaces: int = 0
    locked_times: int = 1
    #: The ``Retry-After`` seconds sent with every 429, 503 and 423. None: the honest
    #: wait (until the rate limit's window frees, or the outage ends; 1 for a 423).
    retry_after: int | None = None
    #: An outage: for ``outage_seconds`` every request (API and OAuth) answers
    #: ``outage_status`` (503 or 429) with ``Retry-After``. It starts ``outage_at``
    #: seconds after the simulator started, or after ``outage_after_requests`` requests
    #: (at once when neither is set). :meth:`SimulatorHandle.outage` starts one now.
    outage_seconds: float = 0.0
    outage_status: int = 503
    outage_at: float | None = None
    outage_after_requests: int | None = None
    #: Next links carry ``max=null`` instead of the page size, as Webex's have at times;
    #: a request with ``max=null`` answers 400, so a client must drop or repair it.
    next_link_max_null: bool = False
    #: Next links are relative references (``/v1/messages?...``), not absolute URLs.
    relative_next_links: bool = False

    # -- the bot (docs/notifications.md) ---------------------------------------------------
    #: The access token of the simulated bot (the operator's ``WEBEX_BOT_TOKEN``): a
    #: known identity, ``bot_email``, whose direct messages (``toPersonEmail``) the
    #: simulator records (:attr:`Simulator.sent`). Empty: no bot.
    bot_token: str = "simulated-bot-token"
    bot_email: str = "notifier@webex.bot"
    #: Every ``POST /messages`` answers ``fail_messages_status`` (with ``Retry-After``
    #: for 429 and 503), the bot's and the users' alike. May change while it runs.
    fail_messages: bool = False
    fail_messages_status: int = 503


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
    parent_id: str | None = None
    mentioned: list[str] = field(default_factory=list)  # person ids
    updated: str | None = None
    _encoded: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"id": self.id, "roomId": self.room_id,
                                 "roomType": self.room_type, "text": self.text}
        if self.parent_id:
            value["parentId"] = self.parent_id
        value.update(personId=self.person_id, personEmail=self.person_email)
        if self.mentioned:
            value["mentionedPeople"] = list(self.mentioned)
        value["created"] = self.created
        if self.updated:
            value["updated"] = self.updated
        return value

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
    team_id: str | None = None
    kms_failure: bool = False  # the title could not be decrypted

    def add(self, message: SimMessage) -> None:
        self.position[message.id] = len(self.messages)
        self.messages.append(message)

    def remove(self, message_id: str) -> SimMessage | None:
        index = self.position.pop(message_id, None)
        if index is None:
            return None
        message = self.messages.pop(index)
        for later in self.messages[index:]:
            self.position[later.id] -= 1
        return message

    @property
    def last_activity(self) -> str:
        return self.messages[-1].created if self.messages else self.created

    def title_for(self, viewer: str, people: dict[str, SimPerson]) -> str | None:
        """The title ``viewer`` sees: a direct space is titled with the other person's
        name, as Webex does; a space whose title failed to decrypt has none."""
        if self.kms_failure:
            return None
        if self.type == "direct":
            other = next((p for p in self.members if p != viewer), viewer)
            return people[other].display_name if other in people else self.title
        return self.title

    def to_json(self, viewer: str, people: dict[str, SimPerson]) -> dict[str, Any]:
        value: dict[str, Any] = {"id": self.id}
        title = self.title_for(viewer, people)
        if title is not None:
            value["title"] = title
        value.update(type=self.type, isLocked=False)
        if self.team_id:
            value["teamId"] = self.team_id
        value.update(lastActivity=self.last_activity, creatorId=self.creator_id,
                     created=self.created, ownerId="consumer")
        if self.kms_failure:
            value["errors"] = {"title": dict(KMS_FAILURE)}
        return value


@dataclass
class SimPerson:
    id: str
    email: str
    display_name: str
    created: str
    kind: str = "person"  # Webex's ``type``: "person" or "bot"

    def to_json(self) -> dict[str, Any]:
        first, _, last = self.display_name.partition(" ")
        return {"id": self.id, "emails": [self.email], "displayName": self.display_name,
                "nickName": first, "firstName": first, "lastName": last,
                "orgId": webex_id("ORGANIZATION", "simulated"), "created": self.created,
                "type": self.kind}


def dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


#: The faults a space can have (:attr:`Dataset.faulty`), and the status each answers.
FAULT_STATUS = {"forbidden": 403, "vanishing": 404, "locked": 423}


class Dataset:
    """Users, spaces and messages. ``lock`` guards changes seen from other threads.

    The main random stream makes what the simulator always had (people, spaces, sizes,
    message ids and times); each of the config's data and fault fields draws on a
    stream of its own (``_stream``), so that one of them changes only what it is about.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.lock = threading.RLock()
        self.config = config
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
        #: Seeded messages deleted after posting: in no list, 404 by id.
        self.deleted_messages: dict[str, SimMessage] = {}
        #: Room id -> its fault ("forbidden", "vanishing", "locked"), from the config.
        self.faulty: dict[str, str] = {}
        #: Room id -> how many more reads answer 423 (the "locked" spaces).
        self.locks_left: dict[str, int] = {}
        users = list(self.people.values())
        teams = [webex_id("TEAM", str(uuid.UUID(int=self._stream("teams").getrandbits(128))))
                 for _ in range(max(config.teams, 0))]
        for n, size in enumerate(skewed_sizes(rng, config.spaces, config.messages)):
            title = (HOSTILE_TITLES[n // 10 % len(HOSTILE_TITLES)] if n % 10 == 7 else
                     f"{rng.choice(TITLE_WORDS)} {rng.choice(TITLE_WORDS)} {n + 1}")
            created = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
            direct = n % 13 == 5 and len(users) > 1
            room = SimRoom(webex_id("ROOM", str(uuid.UUID(int=rng.getrandbits(128)))), title,
                           "direct" if direct else "group", users[0].id, iso(created))
            members = [users[0]] + [u for u in users[1:] if rng.random() < 0.5]
            if direct:  # exactly two: user1 and one other, titled with the other's name
                members = [users[0], users[1 + n // 13 % (len(users) - 1)]]
            elif teams and n % 4 == 1:
                room.team_id = teams[n // 4 % len(teams)]
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
        self._shape_messages()
        self._pick_faults()
        #: The bot (:attr:`SimulatorConfig.bot_token`), added last: it draws on no random
        #: stream, so the seeded data is the same with or without it.
        self.bot: SimPerson | None = None
        if config.bot_token:
            self.bot = SimPerson(webex_id("PEOPLE", str(uuid.uuid5(uuid.NAMESPACE_DNS,
                                                                   config.bot_email))),
                                 config.bot_email, "Flask-Realtime Notifier", iso(start),
                                 kind="bot")
            self.add_person(self.bot)

    def _stream(self, name: str) -> random.Random:
        return random.Random(f"{self.config.seed}:{name}")

    def _shape_messages(self) -> None:
        """Threads, mentions, edits, ties and deleted messages, each from its stream."""
        config = self.config
        threads, mentions, edits = (self._stream(n) for n in ("threads", "mentions", "edits"))
        ties, deleted = self._stream("ties"), self._stream("deleted")
        for room in self.rooms.values():
            roots: list[SimMessage] = []
            for i, message in enumerate(room.messages):
                if roots and threads.random() < config.threads:
                    message.parent_id = roots[-1 - threads.randrange(min(len(roots), 20))].id
                else:
                    roots.append(message)
                others = [p for p in room.members if p != message.person_id]
                if room.type == "group" and others and mentions.random() < config.mentions:
                    message.mentioned = [others[mentions.randrange(len(others))]]
                    message.text += " @" + self.people[message.mentioned[0]].display_name
                if edits.random() < config.edited:
                    moment = parse_time(message.created) + timedelta(
                        seconds=edits.randrange(1, 86400))
                    message.updated = iso(moment)
                if i and ties.random() < config.ties:
                    message.created = room.messages[i - 1].created
            for _ in range(round(len(room.messages) * config.deleted)):
                after = room.messages[deleted.randrange(len(room.messages))]
                author = self.people[after.person_id]
                gone = SimMessage(webex_id("MESSAGE", str(uuid.UUID(int=deleted.getrandbits(128)))),
                                  room.id, room.type, author.id, author.email,
                                  "a message deleted after posting", after.created)
                self.deleted_messages[gone.id] = gone

    def _pick_faults(self) -> None:
        """Disjoint sets of spaces for each fault, from the seed."""
        config = self.config
        order = list(self.rooms)
        self._stream("faults").shuffle(order)
        for fault, count in (("forbidden", config.forbidden_spaces),
                             ("vanishing", config.vanishing_spaces),
                             ("locked", config.locked_spaces), ("kms", config.kms_failures)):
            picked, order = order[:max(count, 0)], order[max(count, 0):]
            for room_id in picked:
                if fault == "kms":
                    self.rooms[room_id].kms_failure = True
                else:
                    self.faulty[room_id] = fault
                if fault == "locked":
                    self.locks_left[room_id] = config.locked_times

    def add_person(self, person: SimPerson) -> None:
        with self.lock:
            self.people[person.id] = person
            self.by_email[person.email] = person

    def add_room(self, room: SimRoom) -> None:
        with self.lock:
            self.rooms[room.id] = room

    def remove_room(self, room_id: str) -> None:
        with self.lock:
            room = self.rooms.pop(room_id, None)
            if room is not None:
                for message in room.messages:
                    self.message_index.pop(message.id, None)

    def add_message(self, room: SimRoom, message: SimMessage) -> None:
        with self.lock:
            room.add(message)
            self.message_index[message.id] = message

    def remove_message(self, message_id: str) -> None:
        with self.lock:
            message = self.message_index.pop(message_id, None)
            room = self.rooms.get(message.room_id) if message else None
            if room is not None:
                room.remove(message_id)

    def rooms_of(self, person_id: str, sort_by: str = "lastactivity") -> list[SimRoom]:
        """The person's rooms: most recently active first (Webex's default order),
        newest first (``created``) or by id (``id``)."""
        with self.lock:
            rooms = [r for r in self.rooms.values() if person_id in r.members]
        if sort_by == "id":
            return sorted(rooms, key=lambda r: r.id)
        if sort_by == "created":
            return sorted(rooms, key=lambda r: r.created, reverse=True)
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
        """What ``space_stats`` must find for ``email``: per space (in Webex's default
        order), its title as ``email`` sees it (None for a ``kms_failure``), type, count,
        oldest and newest. Spaces with a fault are included, as the room list shows
        them; :meth:`unreadable` says which cannot be read. Take it before a scan: a
        vanishing space leaves the data when it is first read."""
        person = self.by_email[email]
        with self.lock:
            return [{"id": r.id, "title": r.title_for(person.id, self.people), "type": r.type,
                     "messages": len(r.messages),
                     "oldest": r.messages[0].created if r.messages else None,
                     "newest": r.messages[-1].created if r.messages else None}
                    for r in self.rooms_of(person.id)]

    def unreadable(self, email: str) -> dict[str, int]:
        """Room id -> the status its messages will answer for good (403 forbidden, 404
        vanishing), for ``email``'s spaces. Locked spaces are readable after waiting."""
        person = self.by_email[email]
        with self.lock:
            return {room_id: FAULT_STATUS[fault] for room_id, fault in self.faulty.items()
                    if fault != "locked" and (room_id not in self.rooms
                                              or person.id in self.rooms[room_id].members)}


def parse_time(value: str) -> datetime:
    """A Webex timestamp (``2019-01-07T09:00:00.000Z``) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


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
