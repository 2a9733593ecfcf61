"""Who may do what in the web tier: who may log in, who is an admin, who may see a job.

The role is derived at every request (and every Socket.IO event) from the configured
``ADMIN_USERS`` and the verified identity (:func:`~.identity.current_user`: the
session's user while their Webex tokens are readable). Nothing about a role is ever
stored in a session or a cookie, so nothing there can grant one. docs/access.md is the
operator's side.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from flask import abort, current_app

from ..core.jobs import UnknownJobError
from .identity import current_user
from .realtime import get_realtime

NOT_ADMIN = "This is for the admins of this server only (ADMIN_USERS)."
DOMAIN_REFUSED = ("Your Webex account ({user}) is not one this server lets in: it admits "
                  "accounts at {domains} only. Log in with another account, or ask the "
                  "server's operator.")
ORG_REFUSED = ("Your Webex account ({user}) belongs to an organisation this server does "
               "not let in. Log in with another account, or ask the server's operator.")


def is_admin(user: str | None) -> bool:
    """Whether ``user`` (a verified identity) is listed in ``ADMIN_USERS``; never with
    login off (everyone is the one local user then)."""
    config = current_app.config
    return (user is not None and bool(config.get("LOGIN_REQUIRED"))
            and user.lower() in config.get("ADMIN_USERS", ()))


def require_admin() -> str:
    """The current user if they are an admin; else abort with 401 (nobody logged in) or
    403 and :data:`NOT_ADMIN`."""
    user = current_user()
    if user is None:
        abort(401, "Log in first: open the start page.")
    if not is_admin(user):
        abort(403, NOT_ADMIN)
    return user


def org_key(org_id: str) -> str:
    """A Webex organisation id compared by the UUID inside it: Webex's API gives ids as
    base64 of ``ciscospark://us/ORGANIZATION/<uuid>``, Control Hub shows the UUID;
    ``ALLOWED_WEBEX_ORGS`` may hold either."""
    text = org_id.strip()
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, ValueError):
        decoded = ""
    if decoded.startswith("ciscospark://") and "/" in decoded:
        return decoded.rsplit("/", 1)[1].lower()
    return text.lower()


def login_refusal(user: str, person: Mapping[str, Any], config: Mapping[str, Any]
                  ) -> tuple[str, str] | None:
    """Why ``user`` (``person``: Webex's ``people/me``) may not log in, as (reason,
    sentence for the login page), or None when they may: their address must be at one
    of ``ALLOWED_EMAIL_DOMAINS`` and their ``orgId`` one of ``ALLOWED_WEBEX_ORGS``,
    each when set."""
    domains = list(config.get("ALLOWED_EMAIL_DOMAINS") or ())
    if domains and ("@" not in user or user.rpartition("@")[2] not in domains):
        return "domain", DOMAIN_REFUSED.format(
            user=user[:100], domains=", ".join("@" + d for d in domains[:5]))
    orgs = {org_key(o) for o in config.get("ALLOWED_WEBEX_ORGS") or ()}
    org = person.get("orgId")
    if orgs and not (isinstance(org, str) and org_key(org) in orgs):
        return "org", ORG_REFUSED.format(user=user[:100])
    return None


def may_see_job(user: str, job: str) -> bool:
    """Whether ``user`` may run the job named ``job`` and so see its runs through share
    links (a job no longer offered has no rule left: yes). Admins see every run."""
    if is_admin(user):
        return True
    rt = get_realtime()
    try:
        spec = rt.registry.get(job)
    except UnknownJobError:
        return True
    return rt.service.may_run(user, spec)
