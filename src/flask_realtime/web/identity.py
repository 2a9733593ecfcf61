"""Who is asking: the one function every handler uses to find the current user.

Without a login configured (``LOGIN_REQUIRED`` false) every visitor is the single
local user ``local``. With one, it is the session's user while their Webex tokens
are readable (web/auth.py): a wrong encryption key or a logout elsewhere logs out.
"""

from __future__ import annotations

from flask import current_app, g, session

LOCAL_USER = "local"


def current_user() -> str | None:
    """The logged-in user's id, or None when nobody is logged in."""
    if not current_app.config.get("LOGIN_REQUIRED", False):
        return LOCAL_USER
    if "flask_realtime_user" not in g:
        auth = current_app.extensions.get("flask_realtime_auth")
        g.flask_realtime_user = auth.user_of(session) if auth is not None else None
    user: str | None = g.flask_realtime_user
    return user
