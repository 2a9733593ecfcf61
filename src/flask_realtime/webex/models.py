"""Typed views of the Webex objects the jobs use: Room, Message, Person, Membership.

Webex adds fields over time; ``from_json`` keeps the ones named here and ignores the
rest, so a new field never breaks a job. ``raw`` keeps the whole object for callers
that need more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _opt(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Room:
    """A Webex space (``type`` ``group``) or a 1:1 conversation (``direct``)."""

    id: str
    title: str
    type: str
    created: str
    last_activity: str | None = None
    creator_id: str | None = None
    #: Webex's per-item ``errors`` (``{"title": {"code": "kms_failure", …}}`` when the
    #: title could not be decrypted: then ``title`` is "" and ``has_title`` False).
    errors: dict[str, Any] = field(default_factory=dict, compare=False)
    has_title: bool = True
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Room:
        errors = data.get("errors")
        return cls(id=_str(data, "id"), title=_str(data, "title"), type=_str(data, "type"),
                   created=_str(data, "created"), last_activity=_opt(data, "lastActivity"),
                   creator_id=_opt(data, "creatorId"),
                   errors=errors if isinstance(errors, dict) else {},
                   has_title=isinstance(data.get("title"), str), raw=data)

    @property
    def label(self) -> str:
        """What to call it in output: its title, or why there is none."""
        if self.has_title:
            return self.title
        problem = self.errors.get("title")
        code = problem.get("code") if isinstance(problem, dict) else None
        return f"(no title: {code})" if isinstance(code, str) else "(no title)"


@dataclass(frozen=True)
class Message:
    id: str
    room_id: str
    created: str
    text: str = ""
    person_id: str | None = None
    person_email: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(id=_str(data, "id"), room_id=_str(data, "roomId"),
                   created=_str(data, "created"), text=_str(data, "text"),
                   person_id=_opt(data, "personId"), person_email=_opt(data, "personEmail"),
                   raw=data)


@dataclass(frozen=True)
class Person:
    id: str
    emails: tuple[str, ...]
    display_name: str
    created: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Person:
        emails = data.get("emails")
        return cls(id=_str(data, "id"),
                   emails=tuple(e for e in emails if isinstance(e, str))
                   if isinstance(emails, list) else (),
                   display_name=_str(data, "displayName"), created=_opt(data, "created"),
                   raw=data)


@dataclass(frozen=True)
class Membership:
    id: str
    room_id: str
    person_id: str
    person_email: str
    is_moderator: bool = False
    created: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Membership:
        return cls(id=_str(data, "id"), room_id=_str(data, "roomId"),
                   person_id=_str(data, "personId"), person_email=_str(data, "personEmail"),
                   is_moderator=data.get("isModerator") is True, created=_opt(data, "created"),
                   raw=data)
