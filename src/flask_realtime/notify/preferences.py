"""Each user's notification preferences: when to be told, and through which channels.

Saved in the store as one JSON object per user (:class:`PreferenceStore`, on every
store). The webhook secret is kept encrypted (the Fernet keys of the users' Webex
tokens, ``web/tokens.py`` ``encryption``), and never shown again once saved: the page
and the API say only whether one is set.

:func:`updated` applies a change a user asked for (the page's form, ``PUT
/api/preferences``), field by field, checking each (one sentence for the first bad
one; nothing is saved then).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from ..ciphers import Cipher
from ..core.runs import Notify, check_notify
from .webhook import IPNetwork, check_url

MIN_SECRET = 16
MAX_SECRET = 200
MAX_ROOM_ID = 300


class PreferenceStore(Protocol):
    """Where preferences are kept: the memory, SQLite and Redis stores have these."""

    @abstractmethod
    def load_preferences(self, user: str) -> dict[str, Any] | None:
        """The JSON object ``user`` saved, or None."""

    @abstractmethod
    def save_preferences(self, user: str, data: dict[str, Any]) -> None:
        """Keep ``data`` as ``user``'s preferences, over what was there."""


class PreferenceError(ValueError):
    """A preference that cannot be saved; the message is one sentence saying why."""


@dataclass(frozen=True)
class Preferences:
    """One user's preferences. ``notify``: the default of runs started without a
    choice; ``webex``: tell them on Webex (by the bot, or in ``webex_room``, a space
    they picked, when there is no bot); ``webhook_url`` and ``webhook_secret`` (the
    latter encrypted) for a signed POST."""

    notify: str = Notify.OFF.value
    webex: bool = False
    webex_room: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Preferences:
        """From what the store holds (keys it does not know are ignored)."""
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        prefs = cls(**known)
        if check_notify(prefs.notify) is None:
            prefs = replace(prefs, notify=Notify.OFF.value)
        return prefs

    def to_json(self) -> dict[str, Any]:
        """As the store keeps it."""
        return asdict(self)

    def public(self, *, bot: bool) -> dict[str, Any]:
        """As the page and the API show it to its owner: no secret, only whether one
        is set; ``bot``: whether the server has a bot (no space needed then)."""
        return {"notify": self.notify, "webex": self.webex, "webex_room": self.webex_room,
                "webhook_url": self.webhook_url,
                "webhook_secret_set": self.webhook_secret is not None, "webex_bot": bot}

    def secret(self, fernet: Cipher) -> str | None:
        """The webhook secret in the clear; None when none is set or it cannot be
        decrypted (the key changed: the user sets it again)."""
        if self.webhook_secret is None:
            return None
        from cryptography.fernet import InvalidToken  # the Fernet imported it already

        try:
            return fernet.decrypt(self.webhook_secret.encode()).decode()
        except (InvalidToken, ValueError):
            return None


def load(store: PreferenceStore, user: str) -> Preferences:
    """``user``'s preferences, the defaults when they saved none."""
    return Preferences.from_json(store.load_preferences(user))


FIELDS = ("notify", "webex", "webex_room", "webhook_url", "webhook_secret")


def updated(current: Preferences, change: Any, *, fernet: Cipher,
            allowed: Iterable[IPNetwork] = ()) -> Preferences:
    """``current`` with the fields of ``change`` (a JSON object) applied, each checked;
    :class:`PreferenceError` for the first that is not acceptable."""
    if not isinstance(change, dict):
        raise PreferenceError('Send a JSON object such as {"notify": "failure", '
                              '"webex": true}.')
    unknown = sorted(set(change) - set(FIELDS))
    if unknown:
        raise PreferenceError(f"There is no preference {unknown[0][:40]!r}: send "
                              f"{', '.join(FIELDS)}.")
    prefs = current
    if "notify" in change:
        try:
            when = check_notify(change["notify"])
        except ValueError:
            when = None
        if when is None:
            raise PreferenceError('"notify" must be "finish", "failure" or "off".')
        prefs = replace(prefs, notify=when.value)
    if "webex" in change:
        if not isinstance(change["webex"], bool):
            raise PreferenceError('"webex" must be true or false.')
        prefs = replace(prefs, webex=change["webex"])
    if "webex_room" in change:
        room = change["webex_room"]
        if room in (None, ""):
            room = None
        elif (not isinstance(room, str) or len(room) > MAX_ROOM_ID or not room.isprintable()
              or " " in room.strip()):
            raise PreferenceError('"webex_room" must be the id of a Webex space (roomId), '
                                  "or empty for none.")
        prefs = replace(prefs, webex_room=room.strip() if room else None)
    if "webhook_secret" in change:
        secret = change["webhook_secret"]
        if secret in (None, ""):
            prefs = replace(prefs, webhook_secret=None)
        elif (not isinstance(secret, str) or not MIN_SECRET <= len(secret) <= MAX_SECRET
              or not secret.isprintable()):
            raise PreferenceError(f'"webhook_secret" must be {MIN_SECRET} to {MAX_SECRET} '
                                  "printable characters.")
        else:
            prefs = replace(prefs, webhook_secret=fernet.encrypt(secret.encode()).decode())
    if "webhook_url" in change:
        url = change["webhook_url"]
        if url in (None, ""):
            prefs = replace(prefs, webhook_url=None)
        else:
            prefs = replace(prefs, webhook_url=check_url(url, allowed).url)
    if prefs.webhook_url is not None and prefs.webhook_secret is None:
        raise PreferenceError(f'A webhook needs a "webhook_secret" of at least {MIN_SECRET} '
                              "characters, to sign what it is sent.")
    return prefs
