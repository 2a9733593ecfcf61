"""The simulator's tokens and its OAuth endpoints, as Webex's integration flow has them.

``GET /v1/authorize`` approves at once (there is nobody to ask) for the user that
``login_hint`` names (``user2`` or ``user2@example.com``), else user1, and redirects
back with a code, to a redirect URI the integration registered
(``SimulatorConfig.redirect_uris``) and to no other: an unregistered or malformed one
gets Webex's error page, never a redirect (RFC 6749 section 4.1.2.1). A ``scope``
naming one the integration was not registered with (``SimulatorConfig.scopes``) is
sent back to the redirect URI as ``error=invalid_scope``, as Webex does.
``POST /v1/access_token`` trades that code (checking that ``redirect_uri`` is the one
it was issued for, RFC 6749 section 4.1.3, and the PKCE verifier) or a refresh token
for Webex's answer: ``access_token``, ``expires_in``, ``refresh_token``,
``refresh_token_expires_in``, ``scope``. A refresh token keeps working while it is
used: each renewal answers the same refresh token with its lifetime started again
(Webex's refresh tokens "last forever" when used regularly). Lifetimes come from the
config, so tests can watch tokens expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from .dataset import Dataset, SimulatorConfig, dump
from .http import Reply, Request


@dataclass
class Grant:
    person_id: str
    redirect_uri: str
    challenge: str | None
    method: str | None
    expires: float
    scope: str


class TokenStore:
    """Access tokens, refresh tokens and authorization codes. Thread-safe."""

    def __init__(self, config: SimulatorConfig, dataset: Dataset) -> None:
        self.config = config
        self.dataset = dataset
        self.lock = threading.Lock()
        self.access: dict[str, tuple[str, float]] = {}  # token -> (person id, expiry)
        self.refresh: dict[str, tuple[str, float, str]] = {}  # -> (person id, expiry, scope)
        self.codes: dict[str, Grant] = {}

    def token_for(self, email: str, lifetime: float | None = None) -> str:
        """A valid access token for ``email``, without the OAuth dance."""
        person = self.dataset.by_email[email]
        token = secrets.token_urlsafe(32)
        life = self.config.access_token_lifetime if lifetime is None else lifetime
        with self.lock:
            self.access[token] = (person.id, time.time() + life)
        return token

    def person_of(self, token: str) -> str | None:
        """The person id of a valid access token; None if unknown or expired. The bot's
        token (``SimulatorConfig.bot_token``) is the bot's, and never expires."""
        bot = self.dataset.bot
        if bot is not None and token and token == self.config.bot_token:
            return bot.id
        with self.lock:
            entry = self.access.get(token)
        return entry[0] if entry and entry[1] >= time.time() else None

    def issue(self, person_id: str, scope: str, refresh: str | None = None) -> dict[str, Any]:
        """New tokens; with ``refresh`` (a renewal), that refresh token again, its
        lifetime started anew: it lasts while it is used."""
        access, refresh = secrets.token_urlsafe(32), refresh or secrets.token_urlsafe(32)
        now, config = time.time(), self.config
        with self.lock:
            self.access[access] = (person_id, now + config.access_token_lifetime)
            self.refresh[refresh] = (person_id, now + config.refresh_token_lifetime, scope)
        return {"access_token": access, "expires_in": max(int(config.access_token_lifetime), 1),
                "refresh_token": refresh,
                "refresh_token_expires_in": max(int(config.refresh_token_lifetime), 1),
                "token_type": "Bearer", "scope": scope}


#: Anything but printable ASCII: not in a URI (RFC 3986), and CR/LF would end the
#: ``Location`` header and start the attacker's own (``Set-Cookie``).
_NOT_IN_A_URI = re.compile(r"[^\x21-\x7e]")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_REDIRECT_URI = 2048


def is_registered(config: SimulatorConfig, uri: str) -> bool:
    """Whether ``/v1/authorize`` may send a code to ``uri``: one of the registered URIs,
    string for string, or a loopback one registered without a port, at any port (RFC
    8252 section 7.3). Checked on the string itself, before any parsing: ``urlsplit``
    drops CR, LF and tabs, so a parsed URI can match while the string injects."""
    if not uri or len(uri) > MAX_REDIRECT_URI or _NOT_IN_A_URI.search(uri):
        return False
    registered = config.redirect_uris
    if uri in registered:
        return True
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    if port is None or parts.hostname not in _LOOPBACK_HOSTS or "@" in parts.netloc:
        return False
    host = parts.netloc.rsplit(":", 1)[0]  # as written: 127.0.0.1, localhost or [::1]
    without_port = uri.replace(f"//{parts.netloc}", f"//{host}", 1)
    return without_port in registered


def authorize(tokens: TokenStore, request: Request, error: Any) -> Reply:
    args, config = request.query, tokens.config
    if args.get("client_id") != config.client_id:
        return error(400, "Invalid client_id.")
    redirect_uri = args.get("redirect_uri", "")
    if not is_registered(config, redirect_uri):
        # Never a redirect to it (RFC 6749 section 4.1.2.1): that is the attack.
        return error(400, "redirect_uri is not one of this integration's redirect URIs: "
                     "register it (flask-realtime webex-sim --redirect-uri) or send one "
                     "that is registered.")
    if args.get("response_type") != "code":
        return error(400, "response_type=code is required.")
    requested = (args.get("scope") or " ".join(config.scopes)).split()
    unknown = [scope for scope in requested if scope not in config.scopes]
    if unknown:  # the redirect URI is registered: the error goes back to it (4.1.2.1)
        return _redirect(redirect_uri, args, {
            "error": "invalid_scope",
            "error_description": f"The requested scope is invalid: {' '.join(unknown)} is not "
                                 "one of this integration's scopes."})
    if args.get("code_challenge") and args.get("code_challenge_method", "plain") not in (
            "S256", "plain"):
        return error(400, "code_challenge_method must be S256 or plain.")
    hint = (args.get("login_hint") or "user1").lower()
    person = tokens.dataset.by_email.get(hint if "@" in hint else f"{hint}@{config.domain}")
    if person is None:
        return error(400, f"No such user: {hint}.")
    code = secrets.token_urlsafe(24)
    with tokens.lock:
        tokens.codes[code] = Grant(person.id, redirect_uri, args.get("code_challenge"),
                                   args.get("code_challenge_method"), time.time() + 300,
                                   " ".join(requested))
    return _redirect(redirect_uri, args, {"code": code})


def _redirect(redirect_uri: str, args: dict[str, str], query: dict[str, str]) -> Reply:
    """Back to the (registered) redirect URI with ``query`` and the request's ``state``."""
    if "state" in args:
        query = {**query, "state": args["state"]}
    separator = "&" if "?" in redirect_uri else "?"
    return Reply(302, headers={"Location": f"{redirect_uri}{separator}{urlencode(query)}"})


def access_token(tokens: TokenStore, request: Request) -> Reply:
    form, config = request.form(), tokens.config
    client_id, client_secret = _basic_credentials(request) or (
        form.get("client_id"), form.get("client_secret"))
    if client_id != config.client_id or client_secret != config.client_secret:
        return _oauth_error(401, "invalid_client", "Invalid client id or secret.")
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        with tokens.lock:
            grant = tokens.codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time():
            return _refuse("The authorization code is invalid or was used already.")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _refuse("redirect_uri does not match the authorization request.")
        if grant.challenge:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(
                hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            expected = digest if grant.method == "S256" else verifier
            if not secrets.compare_digest(expected, grant.challenge):
                return _refuse("The PKCE code_verifier does not match.")
        return Reply(200, dump(tokens.issue(grant.person_id, grant.scope)))
    if grant_type == "refresh_token":
        refresh = form.get("refresh_token", "")
        with tokens.lock:
            entry = tokens.refresh.get(refresh)
        if entry is None or entry[1] < time.time():
            return _refuse("The refresh token is invalid or expired.")
        return Reply(200, dump(tokens.issue(entry[0], entry[2], refresh)))
    return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type.")


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """``client_secret_basic``: Webex takes the client's credentials either way."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


def _refuse(description: str) -> Reply:
    return _oauth_error(400, "invalid_grant", description)


def _oauth_error(status: int, code: str, description: str) -> Reply:
    return Reply(status, dump({"error": code, "error_description": description,
                               "message": description, "trackingId": "SIM_OAUTH"}))
