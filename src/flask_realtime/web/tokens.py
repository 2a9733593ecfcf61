"""Each user's Webex tokens: encrypted at rest, renewed before they expire.

The store holds one Fernet-encrypted blob per user, never a token in the clear. The
key comes from ``TOKEN_ENCRYPTION_KEY`` or, without it, from ``SECRET_KEY`` (and
``SECRET_KEY_FALLBACKS``) through HKDF. A blob that does not decrypt (the key
changed) counts as no tokens at all: the user is logged out and asked to log in
again, never handed someone else's or a half-read token.

:meth:`TokenVault.access_token` is thread-safe and needs no Flask context, so it works
from a job's own thread and event loop. Writes other than logout are compare-and-set
on the stored blob (:meth:`~.ports.TokenStore.replace_tokens`), so a renewal that
another process had in flight cannot undo a logout (docs/auth.md, "Logout is
everywhere").
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import httpx

from ..ciphers import Cipher, LazyFernet
from .ports import TokenStore

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

log = logging.getLogger(__name__)

#: A forced refresh (after a 401) within this many seconds of the last one reuses it:
#: the other requests that saw the same 401 need not renew the token again.
FORCED_REFRESH_MIN_AGE = 5.0
REFRESH_TIMEOUT_SECONDS = 15.0
#: Compare-and-set tries of a login against concurrent logouts and renewals.
LOGIN_ATTEMPTS = 5

TokenProvider = Callable[[bool], Awaitable[str]]


class TokenError(Exception):
    """The user's Webex access cannot be had; the message says what to do next."""


class LoginRequiredError(TokenError):
    """The tokens are gone, unreadable or refused by Webex: only a new login helps."""


@dataclass(frozen=True)
class TokenSet:
    """One user's Webex tokens and their lifetimes (epoch seconds), stored encrypted as one
    blob; ``valid_since`` voids older logins."""

    user: str
    access_token: str
    refresh_token: str | None
    expires_at: float
    refresh_expires_at: float | None
    obtained_at: float
    #: Sessions that logged in before this time are logged out (see :meth:`TokenVault.login`).
    valid_since: float

    @classmethod
    def from_response(cls, user: str, token: Mapping[str, Any], *, valid_since: float,
                      previous: TokenSet | None = None) -> TokenSet:
        """From a token endpoint's answer; a refresh that names no new refresh token
        keeps the previous one."""
        now = time.time()
        refresh_in = token.get("refresh_token_expires_in")
        return cls(
            user=user, access_token=str(token["access_token"]),
            refresh_token=token.get("refresh_token") or (
                previous.refresh_token if previous else None),
            expires_at=now + float(token.get("expires_in") or 3600),
            refresh_expires_at=(now + float(refresh_in) if refresh_in
                                else previous.refresh_expires_at if previous else None),
            obtained_at=now, valid_since=valid_since)


def encryption(config: Mapping[str, Any]) -> Cipher:
    """``TOKEN_ENCRYPTION_KEY`` (comma-separated Fernet keys, the first encrypts), or keys
    derived from ``SECRET_KEY`` and then ``SECRET_KEY_FALLBACKS`` at the first encrypt or
    decrypt (a :class:`~flask_realtime.ciphers.LazyFernet`: ``cryptography`` is imported
    then; the configuration's check imported it already for ``TOKEN_ENCRYPTION_KEY``)."""
    configured = config.get("TOKEN_ENCRYPTION_KEY")
    if configured:
        from cryptography.fernet import Fernet, MultiFernet

        try:
            return MultiFernet([Fernet(k.strip()) for k in str(configured).split(",")
                                if k.strip()])
        except ValueError as exc:
            raise ValueError(
                "TOKEN_ENCRYPTION_KEY must be one or more comma-separated Fernet keys; make "
                "one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'") from exc
    secrets = [str(s) for s in (config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS")
                                                          or []))]
    return LazyFernet(lambda: _derived(secrets))


def _derived(secrets: list[str]) -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(_derive(s)) for s in secrets])


def _derive(secret: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"flask-realtime webex token encryption").derive(secret.encode())
    return base64.urlsafe_b64encode(key)


class TokenVault:
    """Loads, saves and renews users' tokens through the store."""

    def __init__(self, store: TokenStore, fernet: Cipher, config: Mapping[str, Any]) -> None:
        self.store = store
        self.fernet = fernet
        self.config = config
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def load(self, user: str) -> TokenSet | None:
        """``user``'s tokens as stored, not renewed; None when there are none or they cannot
        be decrypted (the key changed). May raise :class:`StoreUnavailableError`."""
        return self._read(user)[1]

    def decode(self, user: str, blob: bytes) -> TokenSet | None:
        """``user``'s tokens from a stored blob; None when it does not decrypt (the key
        changed) or holds another user's tokens."""
        from cryptography.fernet import InvalidToken  # imported by the Fernet already

        try:
            data = json.loads(self.fernet.decrypt(blob))
            tokens = TokenSet(**data)
        except (InvalidToken, ValueError, TypeError):
            log.warning("the stored Webex tokens of %s cannot be read (was the encryption key "
                        "changed?): treating the user as logged out", user)
            return None
        return tokens if tokens.user == user else None

    def save(self, tokens: TokenSet) -> None:
        """Store ``tokens`` encrypted, over whatever the user had. May raise
        :class:`StoreUnavailableError`."""
        self.store.save_tokens(tokens.user, self._encode(tokens))

    def delete(self, user: str) -> None:
        """Logout: the tokens go, and with them every session of the user. A renewal in
        flight elsewhere cannot bring them back: it saves only over the blob it renewed."""
        with self._lock(user):
            self.store.delete_tokens(user)

    def login(self, user: str, token: Mapping[str, Any]) -> TokenSet:
        """Keep the tokens of a new login. While the user is logged in elsewhere their
        sessions stay valid; after a logout (no tokens) every older session is void.

        Saved by compare-and-set over what was read: a logout on another process between
        the read and the save would otherwise be undone by the old ``valid_since``. The
        login itself always ends stored."""
        with self._lock(user):
            for _ in range(LOGIN_ATTEMPTS):
                blob, previous = self._read(user)
                tokens = TokenSet.from_response(
                    user, token, valid_since=previous.valid_since if previous else time.time())
                if self.store.replace_tokens(user, blob, self._encode(tokens)):
                    return tokens
            # Still changing under us: a fresh valid_since voids only sessions made before
            # this login, which a logout meanwhile has voided anyway.
            tokens = TokenSet.from_response(user, token, valid_since=time.time())
            self.save(tokens)
            return tokens

    def access_token(self, user: str, *, force_refresh: bool = False) -> str:
        """A valid access token, renewed when it is about to expire, or when
        ``force_refresh`` (Webex answered 401) and it was not just renewed."""
        with self._lock(user):
            blob, tokens = self._read(user)
            if blob is None or tokens is None:
                raise LoginRequiredError(
                    "You are not logged in to Webex any more: log in again.")
            now = time.time()
            lifetime = tokens.expires_at - tokens.obtained_at
            margin = min(float(self.config.get("TOKEN_REFRESH_MARGIN_SECONDS", 60)),
                         lifetime / 2)
            if (now - tokens.obtained_at >= FORCED_REFRESH_MIN_AGE if force_refresh
                    else tokens.expires_at - now <= margin):
                tokens = self._refresh(tokens, blob)
            return tokens.access_token

    def provider(self, user: str) -> TokenProvider:
        """The async token provider a job's Webex client calls (True after a 401)."""

        async def token(force_refresh: bool = False) -> str:
            return await asyncio.to_thread(self.access_token, user, force_refresh=force_refresh)

        return token

    def _refresh(self, tokens: TokenSet, blob: bytes) -> TokenSet:
        """Renew ``tokens`` (read as ``blob``); called with the user's lock held.

        The lock is this process's only: a logout or a renewal on another process may
        change the stored blob while Webex answers. So every write here is a
        compare-and-set over ``blob``, and when it finds the blob changed, what is
        stored now wins: no tokens (a logout) means log in again."""
        expired = tokens.refresh_expires_at is not None and tokens.refresh_expires_at <= time.time()
        if not tokens.refresh_token or expired:
            self.store.replace_tokens(tokens.user, blob, None)
            raise LoginRequiredError("Your Webex login has expired: log in again.")
        url = f"{str(self.config['WEBEX_BASE_URL']).rstrip('/')}/access_token"
        try:
            response = httpx.post(url, timeout=REFRESH_TIMEOUT_SECONDS, data={
                "grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
                "client_id": self.config["WEBEX_CLIENT_ID"],
                "client_secret": self.config["WEBEX_CLIENT_SECRET"]})
        except httpx.HTTPError as exc:
            raise TokenError(f"Could not reach Webex to renew your access ({exc}): try again "
                             "in a moment, or log in again.") from exc
        if response.status_code in (400, 401):
            log.info("Webex refused to renew the tokens of %s (%s): logging them out",
                     tokens.user, response.status_code)
            if not self.store.replace_tokens(tokens.user, blob, None):
                return self._stored_instead(tokens.user)  # a new login's, or a renewal's
            raise LoginRequiredError("Webex refused to renew your access: log in again.")
        try:
            response.raise_for_status()
            renewed = TokenSet.from_response(tokens.user, response.json(),
                                             valid_since=tokens.valid_since, previous=tokens)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise TokenError(f"Webex could not renew your access ({response.status_code}): "
                             "try again in a moment, or log in again.") from exc
        if not self.store.replace_tokens(tokens.user, blob, self._encode(renewed)):
            return self._stored_instead(tokens.user)
        return renewed

    def _stored_instead(self, user: str) -> TokenSet:
        """The tokens stored now, after a compare-and-set found the blob changed."""
        current = self.load(user)
        if current is None:
            log.info("%s logged out while their token was being renewed: the renewal is "
                     "dropped", user)
            raise LoginRequiredError("You logged out while your Webex access was being "
                                     "renewed: log in again.")
        return current

    def _read(self, user: str) -> tuple[bytes | None, TokenSet | None]:
        blob = self.store.load_tokens(user)
        return blob, self.decode(user, blob) if blob is not None else None

    def _encode(self, tokens: TokenSet) -> bytes:
        return self.fernet.encrypt(json.dumps(asdict(tokens)).encode())

    def _lock(self, user: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(user, threading.Lock())
