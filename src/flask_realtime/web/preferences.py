"""The HTTP routes of a user's notification preferences (docs/notifications.md).

``GET /api/preferences`` and ``PUT /api/preferences`` (CSRF, as every state-changing
route): when to be told by default, by Webex, by a signed webhook. The owner alone
reads and changes their own; the webhook secret is write-only. ``GET
/api/preferences/rooms`` lists the user's group spaces with their own Webex login, to
pick the one messages go to when the server has no bot.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify

from ..notify import preferences
from ..notify.webhook import WebhookURLError, networks
from .api import _json_body, _user
from .realtime import get_realtime

bp = Blueprint("preferences", __name__, url_prefix="/api")
MAX_ROOMS = 500


def _fernet() -> Any:
    from .tokens import encryption

    return encryption(current_app.config)


def _public(prefs: preferences.Preferences) -> dict[str, Any]:
    return prefs.public(bot=bool(current_app.config.get("WEBEX_BOT_TOKEN")))


@bp.errorhandler(preferences.PreferenceError)
@bp.errorhandler(WebhookURLError)
def _refused(exc: ValueError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.get("/preferences")
def show() -> Response:
    """``GET /api/preferences``: the user's notification preferences (never the webhook
    secret: ``webhook_secret_set`` says whether there is one)."""
    user = _user()
    return jsonify(_public(preferences.load(get_realtime().store, user)))


@bp.put("/preferences")
def change() -> Response:
    """``PUT /api/preferences``: change some of them (the fields sent; the others stay);
    400 with a sentence for the first one refused, and nothing is saved then."""
    user = _user()
    data = _json_body('{"notify": "finish" | "failure" | "off", "webex": true, ...}')
    store = get_realtime().store
    allowed = networks(current_app.config.get("NOTIFY_WEBHOOK_ALLOWED_NETWORKS") or [])
    prefs = preferences.updated(preferences.load(store, user), data, fernet=_fernet(),
                                allowed=allowed)
    store.save_preferences(user, prefs.to_json())
    return jsonify(_public(prefs))


@bp.get("/preferences/rooms")
def rooms() -> Response:
    """``GET /api/preferences/rooms``: the user's group spaces (``id``, ``title``), read
    with their own Webex login; 400 with a sentence when there is no login to use."""
    user = _user()
    webex = get_realtime().services_for(user).get("webex")
    if webex is None:
        abort(400, "This server has no Webex login to list your spaces with.")

    async def listing() -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        async with webex:
            async for room in webex.list_rooms(type="group"):
                found.append({"id": room.id, "title": room.title})
                if len(found) >= MAX_ROOMS:
                    break
        return found

    try:
        found = asyncio.run(listing())
    except Exception as exc:  # the client's errors are sentences (webex/client.py)
        abort(502, f"Webex could not list your spaces: {exc}")
    return jsonify(rooms=sorted(found, key=lambda r: r["title"].lower()))
