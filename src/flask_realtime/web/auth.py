"""Login with Webex: the OAuth 2.0 authorization-code flow with PKCE, and logout.

* ``/`` without a login shows the login page, whose button leads to ``/login``.
* ``/login`` sends the browser to Webex's authorize page with a fresh ``state`` and an
  S256 code challenge, both kept in this session (Authlib does both).
* ``/redirect`` is where Webex sends it back: Authlib accepts the ``state`` once and only
  in the session that made it, and trades the code (with the PKCE verifier) for tokens;
  ``people/me`` says who logged in; the tokens are stored encrypted; the session gets a
  new id, so an id planted before the login is worth nothing.
* ``/logout`` (POST, CSRF) ends the session, deletes the user's tokens (every session of
  the user needs them, so this logs the user out everywhere) and closes their sockets.

docs/auth.md is the operator's side of all this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SessionMixin
from werkzeug.wrappers import Response as BaseResponse

from .. import __version__
from ..core.jobs import JobSpec
from ..core.ports import StoreUnavailableError
from . import audit
from .access import login_refusal
from .csrf import new_csrf_token
from .realtime import Realtime, SocketLogin
from .requestlog import redact_request_log as _redact_request_log
from .sessions import ServerSession
from .tokens import LoginRequiredError, TokenError, TokenVault, encryption

log = logging.getLogger(__name__)

EXTENSION = "flask_realtime_auth"
#: With several web processes: how often each checks that its sockets' users are still
#: logged in (a logout on another process deleted their tokens): within 1 s, as
#: docs/reliability.md, requirement 8 asks.
LOGOUT_CHECK_SECONDS = 0.5
MAX_LOGIN_HINT = 200
#: OAuth states (and their PKCE verifiers) a session keeps for logins started and not
#: finished, newest first: each ``GET /login`` adds one, and Authlib drops them only
#: after an hour, so without a bound anyone could grow a session by ~500 bytes a request.
MAX_PENDING_LOGINS = 5

#: What the login page says for each OAuth error code (RFC 6749 sections 4.1.2.1 and
#: 5.2, and Authlib's ``mismatching_state`` for a missing, foreign or replayed state).
#: Fixed sentences: ``error`` and ``error_description`` in ``/redirect``'s query are
#: whatever the author of a link chose, so neither is ever shown (content spoofing).
LOGIN_ERRORS = {
    "access_denied": "You did not allow the login at Webex. Use the button below to try "
                     "again.",
    "invalid_request": "Webex refused the login request. Start again with the button below.",
    "unauthorized_client": "Webex does not let this app log you in: ask its operator to "
                           "check the Webex integration (docs/auth.md).",
    "unsupported_response_type": "Webex refused the kind of login this app asks for: ask "
                                 "its operator to check the Webex integration.",
    "invalid_scope": "Webex refused the permissions this app asks for: ask its operator "
                     "to check WEBEX_SCOPE.",
    "server_error": "Webex had an error during the login. Start again with the button "
                    "below.",
    "temporarily_unavailable": "Webex cannot log you in right now. Try again in a moment "
                               "with the button below.",
    "mismatching_state": "This login was not started from this browser, was finished "
                         "already or started too long ago. Start again with the button "
                         "below.",
    "invalid_grant": "Webex did not accept the login code: it expired or was used "
                     "already. Start again with the button below.",
    "invalid_client": "Webex did not accept this app's client id or secret: ask its "
                      "operator to check CLIENT_ID and CLIENT_SECRET.",
}
LOGIN_ERROR_OTHER = "The login did not complete. Start again with the button below."

bp = Blueprint("auth", __name__)


class Auth:
    """The login side of one app: the OAuth client and the users' tokens."""

    def __init__(self, app: Flask, realtime: Realtime) -> None:
        self.app = app
        self.realtime = realtime
        self.vault = TokenVault(realtime.store, encryption(app.config), app.config)
        self._client: tuple[tuple[Any, ...], Any] | None = None
        realtime.service_providers.append(self.services)
        if realtime.system.scheduler is not None:
            realtime.system.scheduler.login_checks.append(self.login_problem)
        app.extensions[EXTENSION] = self
        _redact_request_log()
        if app.config.get("REDIS_URL"):
            threading.Thread(target=self._end_sockets_of_logged_out, daemon=True,
                             name="flask-realtime-logouts").start()

    @property
    def enabled(self) -> bool:
        return bool(self.app.config.get("LOGIN_REQUIRED"))

    def client(self) -> Any:
        """Authlib's client for the configured Webex (made again if the config changed,
        as :func:`configure_demo` does after the app is built)."""
        config = self.app.config
        base = str(config["WEBEX_BASE_URL"]).rstrip("/")
        settings = (base, config["WEBEX_CLIENT_ID"], config["WEBEX_CLIENT_SECRET"],
                    config["WEBEX_SCOPE"])
        if self._client is None or self._client[0] != settings:
            # Authlib (with joserfc and requests, 8 MB) is imported at the first login,
            # not at start (docs/performance.md, issue 21 item 3).
            from authlib.integrations.flask_client import OAuth

            client = OAuth(self.app).register(
                "webex", client_id=settings[1], client_secret=settings[2],
                authorize_url=f"{base}/authorize", access_token_url=f"{base}/access_token",
                api_base_url=f"{base}/", client_kwargs={
                    "scope": settings[3], "code_challenge_method": "S256",
                    "token_endpoint_auth_method": "client_secret_post", "default_timeout": 15})
            self._client = (settings, client)
        return self._client[1]

    def user_of(self, data: SessionMixin) -> str | None:
        """The session's user, while their tokens are readable, the session is not
        older than their last logout, and the login allow-lists still admit them (a
        restart with narrower ones ends the sessions they no longer admit)."""
        user, login_at = data.get("user"), data.get("login_at")
        if not isinstance(user, str) or not isinstance(login_at, int | float):
            return None
        if login_refusal(user, {"orgId": data.get("org")}, self.app.config) is not None:
            return None
        tokens = self.vault.load(user)
        return user if tokens is not None and login_at >= tokens.valid_since else None

    def services(self, user: str) -> dict[str, Any]:
        """``RunContext.services`` for the user's runs: Webex access with their tokens."""
        if not self.enabled:
            return {}
        from ..webex.client import WebexAccess

        return {"webex": WebexAccess(self.app.config["WEBEX_BASE_URL"],
                                     self.vault.provider(user))}

    def login_problem(self, user: str, spec: JobSpec) -> str | None:
        """Why ``user``'s Webex login cannot start ``spec`` now, in words that finish
        "…was not started, because ", or None when it can: the scheduler's check
        before it starts a run of an absent user (core/scheduler.py). Only jobs that
        take a ``RunContext`` (the Webex access) need the login; a renewal that fails
        for a moment (Webex unreachable) is no reason to pause a schedule."""
        if not self.enabled or spec.context_arg is None:
            return None
        try:
            self.vault.access_token(user)
        except LoginRequiredError:
            return ("your Webex login has expired or you logged out, and this job needs "
                    "it.")
        except TokenError:
            return None
        return None

    def end_sockets(self, user: str) -> None:
        """Disconnect every socket of ``user`` in this process."""
        for sid, login in list(self.realtime.sockets.items()):
            if login.user == user:
                self.realtime.socketio.server.disconnect(sid, namespace="/")

    def logged_in(self, sockets: Mapping[str, SocketLogin]) -> set[str]:
        """The sids among ``sockets`` whose login still holds: the session each was
        opened with still exists, and is not older than its user's last logout
        (``login_at >= valid_since``, the rule :meth:`user_of` applies to HTTP).
        One store round trip for all of them. Without login, every one."""
        if not self.enabled:
            return set(sockets)
        logins = list(sockets.items())
        live, blobs = self.realtime.store.sessions_and_tokens(
            {login.session_key for _, login in logins if login.session_key is not None},
            {login.user for _, login in logins})
        since = {user: tokens.valid_since for user, blob in blobs.items()
                 if (tokens := self.vault.decode(user, blob)) is not None}
        return {sid for sid, login in logins if login.session_key in live
                and login.user in since and login.login_at >= since[login.user]}

    def _end_sockets_of_logged_out(self) -> None:
        """Close this process's sockets whose session was logged out on another process.

        Each socket's own session is checked (:meth:`logged_in`), not only whether its
        user has tokens: a logout and a new login at once leave the user tokens, but
        void the sessions made before. The store is the record, so polling it cannot
        miss a logout the way a pub/sub notice (at most once) could. One round trip per
        check for all sockets.
        """
        while not self.realtime.closing.wait(LOGOUT_CHECK_SECONDS):
            if not self.enabled:
                continue
            try:
                sockets = dict(self.realtime.sockets)
                ended = sockets.keys() - self.logged_in(sockets)
                for user in sorted({sockets[sid].user for sid in ended}):
                    log.info("a session of %s was logged out elsewhere: closing its sockets "
                             "here", user)
                for sid in ended:
                    self.realtime.socketio.server.disconnect(sid, namespace="/")
            except StoreUnavailableError:
                pass  # checked again when the store is back
            except Exception:
                log.exception("the check for users logged out elsewhere failed")


def init_app(app: Flask, realtime: Realtime) -> Auth:
    """Set up login on ``app`` (the :class:`Auth` of its ``realtime``, and the login routes)
    and return the :class:`Auth`."""
    auth = Auth(app, realtime)
    app.register_blueprint(bp)
    return auth


def configure_demo(app: Flask, simulator: Any) -> None:
    """Log in against the Webex simulator (``start_simulator``'s handle): demo mode."""
    sim_config = getattr(simulator, "config", None)
    app.config.update(
        WEBEX_BASE_URL=simulator.base_url,
        WEBEX_CLIENT_ID=getattr(sim_config, "client_id", "demo-client"),
        WEBEX_CLIENT_SECRET=getattr(sim_config, "client_secret", "demo-secret"),
        DEMO_MODE=True, LOGIN_REQUIRED=True)
    bot = getattr(sim_config, "bot_token", None)
    if not app.config.get("WEBEX_BOT_TOKEN") and bot:
        app.config["WEBEX_BOT_TOKEN"] = bot  # the simulator's bot


def get_auth() -> Auth:
    """The current app's :class:`Auth`; only inside an app context of an app set up by
    :func:`init_app`."""
    auth: Auth = current_app.extensions[EXTENSION]
    return auth


def login_page(error: str | None = None) -> str:
    """The login page, with ``error`` (a sentence saying what to do) when the last attempt
    failed."""
    return render_template("login.html", error=error, logged_out=request.args.get(
        "logged_out") == "1", demo_mode=current_app.config.get("DEMO_MODE", False),
        version=__version__)


@bp.get("/login")
def login() -> BaseResponse:
    """``GET /login``: redirect to Webex's authorize URL with a fresh ``state`` and PKCE
    challenge (to the console when login is off)."""
    auth = get_auth()
    if not auth.enabled:
        return redirect(url_for("index"))
    redirect_uri = (current_app.config.get("WEBEX_REDIRECT_URI")
                    or url_for("auth.callback", _external=True))
    extra = {}
    hint = request.args.get("login_hint")
    if hint and len(hint) <= MAX_LOGIN_HINT:
        extra["login_hint"] = hint  # which account to propose (the simulator's user1, …)
    client = auth.client()
    _drop_old_login_states(client, MAX_PENDING_LOGINS - 1)  # the new one makes the limit
    response: BaseResponse = client.authorize_redirect(redirect_uri, **extra)
    return response


def _drop_old_login_states(client: Any, keep: int) -> None:
    """Forget all but the ``keep`` newest pending logins of this session.

    Authlib keeps each under ``_state_<client name>_<state>`` with its expiry (``exp``,
    an hour after it was made, so the newest has the largest) and forgets one with
    ``clear_state_data``, which also drops it from a cache if one is configured. A
    login whose state was dropped ends like any unknown state: "start again".
    """
    prefix = f"_state_{client.name}_"
    pending = sorted(((value.get("exp") if isinstance(value, dict) else None) or 0, key)
                     for key, value in session.items() if key.startswith(prefix))
    for _, key in pending[:max(len(pending) - keep, 0)]:
        client.framework.clear_state_data(session, key[len(prefix):])


@bp.get("/redirect")
def callback() -> BaseResponse | tuple[str, int]:
    """``GET /redirect``, where Webex sends the browser back: finish the OAuth flow; on
    success store the tokens, start a new session (new id and CSRF token) and go to the
    console, else show the login page with a sentence (400 or 502)."""
    auth = get_auth()
    if not auth.enabled:
        abort(404)
    client = auth.client()  # imports Authlib, and with it requests
    import requests
    from authlib.integrations.flask_client import OAuthError

    try:
        token = client.authorize_access_token()
        me = client.get("people/me", token=token)
        me.raise_for_status()
        person = me.json()
    except OAuthError as exc:
        # Both may be a link author's text: clipped and repr'd (no forged log lines).
        log.info("login refused: error=%.60r description=%.200r", exc.error, exc.description)
        return login_page(LOGIN_ERRORS.get(str(exc.error), LOGIN_ERROR_OTHER)), 400
    except (requests.RequestException, ValueError) as exc:
        log.warning("login failed: Webex could not be asked: %s", exc)
        return login_page("Webex could not be reached to complete the login: "
                          "try again in a moment."), 502
    user = _user_id(person)
    if user is None:
        return login_page("Webex did not say who you are: try again."), 502
    refusal = login_refusal(user, person, current_app.config)
    if refusal is not None:  # no session, no token stored (docs/access.md)
        log.info("login refused for %s: not an allowed %s", user, refusal[0])
        audit.record("login_refused", user, detail={"reason": refusal[0]})
        return login_page(refusal[1]), 403
    auth.vault.login(user, token)
    data = session._get_current_object()  # type: ignore[attr-defined]
    assert isinstance(data, ServerSession)
    data.clear()
    data.rotate()
    data["user"] = user
    data["login_at"] = time.time()
    data["org"] = person.get("orgId")  # for the allow-lists' check at every request
    data.permanent = True
    new_csrf_token()
    log.info("%s logged in", user)
    audit.record("login", user)
    return redirect(url_for("index"))


@bp.post("/logout")
def logout() -> BaseResponse:
    """``POST /logout`` (CSRF-checked like every POST): end the session and delete the
    user's tokens, which voids their sessions in every process, and close their sockets
    here."""
    user = session.get("user")
    session.clear()
    if isinstance(user, str):
        auth = get_auth()
        auth.vault.delete(user)
        auth.end_sockets(user)
        log.info("%s logged out", user)
        audit.record("logout", user)
    return redirect(url_for("index", logged_out=1), 303)


def _user_id(person: Any) -> str | None:
    """The user's id here: their (first) Webex e-mail address, else their person id."""
    if not isinstance(person, dict):
        return None
    emails = person.get("emails")
    if isinstance(emails, list) and emails and isinstance(emails[0], str) and emails[0]:
        return emails[0].strip().lower()
    person_id = person.get("id")
    return person_id if isinstance(person_id, str) and person_id else None
