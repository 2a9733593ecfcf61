"""Who is asking: the one function every handler uses to find the current user.

Until a login is configured every visitor is the single local user ``local``; the
login module replaces :func:`current_user`'s answer with the session's user.
"""

from __future__ import annotations

from flask import current_app, session

LOCAL_USER = "local"


def current_user() -> str | None:
    """The logged-in user's id, or None when nobody is logged in."""
    if not current_app.config.get("LOGIN_REQUIRED", False):
        return LOCAL_USER
    user = session.get("user")
    return user if isinstance(user, str) else None
