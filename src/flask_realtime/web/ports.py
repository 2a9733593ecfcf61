"""What the web tier needs from a store beyond core's ports: login sessions and tokens.

Core knows nothing of logins: these interfaces are the web tier's own. They are
structural (a store needs no import of the web tier to fit them), and each consumer
names only what it uses: :class:`~.sessions.StoreSessionInterface` takes a
:class:`SessionStore`, :class:`~.tokens.TokenVault` a :class:`TokenStore`, the
per-socket login checks a :class:`LoginStore`. One store object may fit all of them and
core's :class:`~..core.ports.RunStore` too (it is one database): :class:`AppStore` is
that object, what :class:`~.realtime.Realtime` holds. The contract is tested in
``tests/store/test_contract_web.py`` on every store.

Every method may raise :class:`~..core.ports.StoreUnavailableError`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import Any, Protocol

from ..core.ports import RunStore
from ..notify.preferences import PreferenceStore


class SessionStore(Protocol):
    """Server-side session data, JSON only, each kept until its TTL ends or it is deleted."""

    @abstractmethod
    def load_session(self, sid: str) -> dict[str, Any] | None:
        """The data saved under ``sid``, or None when there is none or it expired."""

    @abstractmethod
    def save_session(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        """Keep ``data`` (JSON-serialisable) under ``sid`` for ``ttl`` seconds from now."""

    @abstractmethod
    def delete_session(self, sid: str) -> None:
        """Forget ``sid``. Deleting a missing session is harmless."""


class TokenStore(Protocol):
    """Webex tokens: one opaque (encrypted) blob per user."""

    @abstractmethod
    def save_tokens(self, user: str, blob: bytes) -> None:
        """Store ``blob`` as the user's tokens, whatever was there."""

    @abstractmethod
    def load_tokens(self, user: str) -> bytes | None:
        """The user's blob, or None when there is none."""

    @abstractmethod
    def delete_tokens(self, user: str) -> None:
        """Forget the user's tokens. Deleting missing tokens is harmless."""

    @abstractmethod
    def replace_tokens(self, user: str, expected: bytes | None, blob: bytes | None) -> bool:
        """Compare-and-set: store ``blob`` (None: delete) only if the stored blob is
        still ``expected`` (None: none stored), atomically for every process; returns
        whether it did. A renewal saved this way cannot undo a logout that came while
        it was at Webex (the logout deleted what it expected)."""


class LoginStore(SessionStore, TokenStore, Protocol):
    """Sessions and tokens, and the one question that checks an open socket's login."""

    @abstractmethod
    def sessions_and_tokens(self, session_ids: Iterable[str],
                            users: Iterable[str]) -> tuple[set[str], dict[str, bytes]]:
        """Which of ``session_ids`` still exist, and the token blobs of those of
        ``users`` who have some: one round trip however many (every web process asks
        this about its open sockets twice a second)."""


class ShareStore(Protocol):
    """Read-only share links of runs, each kept until it expires or is deleted.

    A share is a JSON object (stores know nothing of the web tier): ``id``, ``token_hash``
    (the SHA-256 hex digest of the link's token: the token itself is never stored),
    ``run_id``, ``owner`` and ``expires_at`` (epoch seconds)."""

    @abstractmethod
    def create_share(self, share: dict[str, Any]) -> None:
        """Keep ``share`` until its ``expires_at``."""

    @abstractmethod
    def get_share(self, token_hash: str) -> dict[str, Any] | None:
        """The share whose token hashes to ``token_hash``; None when there is none, it
        expired or it was deleted."""

    @abstractmethod
    def list_shares(self, run_id: str) -> list[dict[str, Any]]:
        """The run's shares that have not expired, soonest to expire first."""

    @abstractmethod
    def delete_share(self, share_id: str) -> None:
        """Forget the share ``share_id``. Deleting a missing share is harmless."""


class AuditStore(Protocol):
    """The audit trail (web/audit.py): append-only JSON entries, newest read first.

    Nothing updates or deletes an entry but the retention applied by each append. Ids
    are strings that grow with every append (a SQLite row number, a Redis stream id),
    never reused."""

    @abstractmethod
    def append_audit(self, entry: dict[str, Any], *, max_age: float | None = None,
                     max_entries: int | None = None) -> str:
        """Append ``entry`` (a JSON object whose ``at`` is its time, epoch seconds), then
        drop the entries older than ``max_age`` seconds and all but the newest
        ``max_entries`` (None: no such limit). Returns the new entry's id."""

    @abstractmethod
    def read_audit(self, *, before: str | None = None, limit: int = 100
                   ) -> list[dict[str, Any]]:
        """At most ``limit`` entries, newest first, each with its ``id``; with ``before``
        (an id), only the entries appended before it: the next page."""


class AppStore(RunStore, LoginStore, ShareStore, PreferenceStore, AuditStore, Protocol):
    """The one store a web app runs on: core's runs and output, the web tier's logins,
    share links and audit trail, and the users' notification preferences."""
