"""CSRF protection: every state-changing HTTP request carries the session's token.

The page gets the token from ``<body data-csrf-token>`` and sends it as the
``X-CSRF-Token`` header; plain forms (logout) send it as the ``csrf_token`` field.
Another site can make the browser send our cookie, but it cannot read the token.
Socket.IO is not covered here: its handshake is checked by Origin instead.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session

HEADER = "X-CSRF-Token"
FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def csrf_token() -> str:
    """This session's token, made on first use (and again after login)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def new_csrf_token() -> str:
    """Replace the session's token with a new one (at login, so a token seen before it is
    worthless) and return it."""
    session.pop("csrf", None)
    return csrf_token()


def check_csrf() -> None:
    """Abort with 400 unless a state-changing request carries the session's token (header,
    or form field for plain forms); safe methods pass. Compared in constant time."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if sent is None and request.mimetype in ("application/x-www-form-urlencoded",
                                             "multipart/form-data"):
        sent = request.form.get(FORM_FIELD)
    expected = session.get("csrf")
    if not sent or not isinstance(expected, str) or not hmac.compare_digest(
            sent.encode(), expected.encode()):
        abort(403, "This request has no valid CSRF token: reload the page and try again.")


def init_app(app: Flask) -> None:
    """Check every request of ``app`` with :func:`check_csrf` before its view runs."""
    app.before_request(check_csrf)
