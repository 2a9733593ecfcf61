"""Server-side sessions: the cookie carries a signed random id, the data stays in the store.

Nothing a user could read or replay from the cookie says who they are: logging out
deletes the stored data, so an old cookie is worth nothing afterwards. The store sees
only a hash of each id, so a dump of the store holds no usable cookie either.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, Signer
from werkzeug.datastructures import CallbackDict

from ..core.ports import StoreUnavailableError
from .ports import SessionStore

#: How long a session without a login (an OAuth state, a CSRF token) is kept.
ANONYMOUS_SESSION_SECONDS = 3600


log = logging.getLogger(__name__)

def new_session_id() -> str:
    """A new unguessable session id (256 bits)."""
    return secrets.token_urlsafe(32)


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """A session whose data lives in the store under :attr:`sid`."""

    def __init__(self, data: dict[str, Any] | None = None, sid: str | None = None) -> None:
        def on_update(session: CallbackDict[str, Any]) -> None:
            self.modified = True

        super().__init__(data, on_update)
        self.new = sid is None
        self.sid = sid or new_session_id()
        self.modified = False
        self.replaced_sid: str | None = None

    def rotate(self) -> None:
        """Keep the data under a new id and drop the old one (at login: no fixation)."""
        if not self.new and self.replaced_sid is None:
            self.replaced_sid = self.sid
        self.sid = new_session_id()
        self.modified = True


class StoreSessionInterface(SessionInterface):
    """Flask's session, kept in a :class:`~.ports.SessionStore`.

    The cookie is HttpOnly, SameSite=Lax (unless ``SESSION_COOKIE_SAMESITE`` says
    otherwise) and Secure whenever the request came over https or
    ``SESSION_COOKIE_SECURE`` is set.
    """

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        """The session the signed cookie names, or a new empty one when there is no valid
        cookie, no such session, or the store is away (pages still load; actions then say
        what is wrong)."""
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie:
            try:
                sid = self._signer(app).unsign(cookie).decode()
            except BadSignature:
                sid = None
            try:
                data = self.store.load_session(_store_key(sid)) if sid else None
            except StoreUnavailableError:  # pages still serve; actions say what is wrong
                log.warning("session store unavailable: serving without the session")
                data = None
            if data is not None:
                return ServerSession(data, sid)
        return ServerSession()

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Save the session and set, refresh or delete its cookie; a store that is away is
        logged as a warning, never raised into the response."""
        try:
            self._save(app, session, response)
        except StoreUnavailableError:
            log.warning("session store unavailable: the session was not saved")

    def _save(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if session.replaced_sid is not None:
            self.store.delete_session(_store_key(session.replaced_sid))
            session.replaced_sid = None
        if not session:
            if session.modified and not session.new:
                self.store.delete_session(_store_key(session.sid))
                response.delete_cookie(name, domain=domain, path=path)
                response.vary.add("Cookie")
            return
        if not session.modified:
            return
        ttl = (int(app.permanent_session_lifetime.total_seconds())
               if session.permanent or not app.config.get("LOGIN_REQUIRED")
               else ANONYMOUS_SESSION_SECONDS)
        self.store.save_session(_store_key(session.sid), dict(session), ttl)
        response.set_cookie(
            name, self._signer(app).sign(session.sid).decode(),
            expires=time.time() + ttl if session.permanent else None,
            httponly=True, secure=self.get_cookie_secure(app) or request.is_secure,
            samesite=self.get_cookie_samesite(app) or "Lax", domain=domain, path=path)
        response.vary.add("Cookie")

    @staticmethod
    def _signer(app: Flask) -> Signer:
        keys = [*(app.config.get("SECRET_KEY_FALLBACKS") or []), app.config["SECRET_KEY"]]
        return Signer(keys, salt="flask-realtime.session", digest_method=hashlib.sha256)


def _store_key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()
