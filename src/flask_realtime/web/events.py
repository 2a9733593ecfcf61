"""Socket.IO events: thin handlers that check input and call the run service.

docs/protocol.md is the contract. Every handler answers through its ack with either
a result or ``{"error": sentence}``; a bad payload never raises into the server.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, SocketIO, join_room

from ..core.jobs import JobError, ParamError
from ..core.ports import StoreUnavailableError
from ..core.service import JobForbiddenError, LimitReachedError, RunNotFoundError
from . import audit
from .access import is_admin, may_see_job
from .identity import current_user
from .realtime import Realtime, SocketLogin, get_realtime
from .rooms import ADMIN_ROOM, user_room
from .sessions import ServerSession
from .sessions import _store_key as session_store_key
from .socketio_internals import STAR_EVENT

MAX_ID_LENGTH = 100
_SHARED_WATCHES = "flask_realtime_shared_watches"  # app.extensions: share id -> {(sid, run)}
_shared_lock = threading.Lock()


def _shared_watches() -> dict[str, set[tuple[str, str]]]:
    watches: dict[str, set[tuple[str, str]]] = current_app.extensions.setdefault(
        _SHARED_WATCHES, {})
    return watches


def end_shared_watches(share_id: str) -> None:
    """Share ``share_id`` was revoked: stop the live output of the sockets of this
    process that watch through it (at the delivery's next turn). Sockets of other
    processes keep theirs until they leave or reconnect; no new watch starts anywhere."""
    with _shared_lock:
        gone = _shared_watches().pop(share_id, set())
    for sid, run_id in gone:
        get_realtime().delivery.unwatch(sid, run_id)


def _run_id(data: Any) -> str:
    run_id = data.get("run_id") if isinstance(data, dict) else None
    if not isinstance(run_id, str) or not 0 < len(run_id) <= MAX_ID_LENGTH:
        raise ValueError("Send {\"run_id\": \"...\"} with the id of one of your runs.")
    return run_id


def _after(data: dict[str, Any]) -> int:
    after = data.get("after", 0)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ValueError("\"after\" must be the last seq you have seen (0 for none).")
    return after


def register(socketio: SocketIO) -> None:
    """Register the Socket.IO events on ``socketio`` (``connect``, ``disconnect``,
    ``start``, ``stop``, ``input``, ``watch``, ``watch_shared``, ``unwatch`` and an answer
    for any other;
    docs/protocol.md). A connection without a login is refused with a sentence."""
    @socketio.on("connect")
    def connect(auth: Any = None) -> bool:
        user = current_user()
        if user is None:  # the page shows the sentence and asks the user to log in
            raise ConnectionRefusedError("You are not logged in: reload the page and log in.")
        get_realtime().sockets[request.sid] = _login_of(user)  # type: ignore[attr-defined]
        join_room(user_room(user))
        if is_admin(user):  # every run's admin_state (web/admin.py)
            join_room(ADMIN_ROOM)
        return True

    @socketio.on("disconnect")
    def disconnect(reason: Any = None) -> None:
        realtime = get_realtime()
        realtime.sockets.pop(request.sid, None)  # type: ignore[attr-defined]
        realtime.delivery.forget(request.sid)  # type: ignore[attr-defined]
        sid: str = request.sid  # type: ignore[attr-defined]
        with _shared_lock:
            for watches in _shared_watches().values():
                watches.difference_update({w for w in watches if w[0] == sid})

    @socketio.on("start")
    def start(data: Any = None, *_extra: Any) -> dict[str, Any]:
        return _handle(lambda rt, user: _start(rt, user, data))

    @socketio.on("stop")
    def stop(data: Any = None, *_extra: Any) -> dict[str, Any]:
        def act(rt: Realtime, user: str) -> dict[str, Any]:
            audit.record("stop", user, run=rt.service.stop(user, _run_id(data)))
            return {"ok": True}
        return _handle(act)

    @socketio.on("input")
    def input_(data: Any = None, *_extra: Any) -> dict[str, Any]:
        """Type into one of the user's runs, as ``POST /api/runs/<id>/input`` does:
        ``{"run_id", "text"}`` or ``{"run_id", "eof": true}``."""
        def act(rt: Realtime, user: str) -> dict[str, Any]:
            run_id = _run_id(data)
            eof = data.get("eof", False)
            if not isinstance(eof, bool) or (eof and "text" in data):
                raise ValueError('Send {"run_id", "text"} or {"run_id", "eof": true}, not '
                                 "both; eof is true or false.")
            rt.service.send_input(user, run_id, data.get("text"), eof=eof)
            return {"ok": True}
        return _handle(act)

    @socketio.on("watch")
    def watch(data: Any = None, *_extra: Any) -> dict[str, Any]:
        def act(rt: Realtime, user: str) -> dict[str, Any]:
            run = rt.service.get(user, _run_id(data))
            rt.delivery.watch(request.sid, run.id, _after(data))  # type: ignore[attr-defined]
            return {"ok": True, "run": rt.run_json(run)}
        return _handle(act)

    @socketio.on("watch_shared")
    def watch_shared(data: Any = None, *_extra: Any) -> dict[str, Any]:
        """Watch a run through a share link ``{"token", "after"}``: its output only, as
        ``watch`` sends it; stop, re-run and the run's state events stay its owner's."""
        def act(rt: Realtime, user: str) -> dict[str, Any]:
            from .api import shared_run  # the HTTP routes' check, one place for both

            token = data.get("token") if isinstance(data, dict) else None
            run, share = shared_run(token)
            if not may_see_job(user, run.job):
                raise JobForbiddenError(run.job)
            after = _after(data)
            sid: str = request.sid  # type: ignore[attr-defined]
            with _shared_lock:
                _shared_watches().setdefault(share["id"], set()).add((sid, run.id))
            rt.delivery.watch(sid, run.id, after)
            return {"ok": True, "run": rt.run_json(run), "shared_by": share["owner"]}
        return _handle(act)

    @socketio.on("unwatch")
    def unwatch(data: Any = None, *_extra: Any) -> dict[str, Any]:
        def act(rt: Realtime, user: str) -> dict[str, Any]:
            rt.delivery.unwatch(request.sid, _run_id(data))  # type: ignore[attr-defined]
            return {"ok": True}
        return _handle(act)

    @socketio.on("*")
    def unknown(event: str, *_data: Any) -> dict[str, Any]:
        """Any other event: answered, so a client's call does not wait for nothing."""
        if event == STAR_EVENT:  # an event named "*" itself (socketio_internals.py)
            event = "*"
        return {"error": f"There is no event {event[:64]!r}: send start, stop, input, "
                         "watch, watch_shared, unwatch or a schedule event such as "
                         "schedules (docs/protocol.md)."}


def _start(rt: Realtime, user: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("Send {\"job\": name, \"params\": {...}} to start a job.")
    try:  # a job the user may not run is no job here either (not even its files)
        takes = rt.service.check_job(user, data.get("job")).file_params
    except JobError:
        takes = ()  # the start below refuses it, in its usual order of checks
    if takes:  # files go over HTTP, where their size is limited before they are read
        raise ValueError(f"This job takes a file ({', '.join(takes)}): start it with POST "
                         "/api/runs as multipart/form-data (docs/protocol.md); the socket's "
                         "start takes no files.")
    # The run service checks request_id, for HTTP and Socket.IO alike.
    run, made = rt.start_once(user, data.get("job"), data.get("params"),
                              request_id=data.get("request_id"), notify=data.get("notify"))
    rt.delivery.watch(request.sid, run.id, 0)  # type: ignore[attr-defined]
    if made:  # a repeated request_id is the same start, recorded once
        audit.record("start", user, run=run, detail=audit.params_detail(rt.registry, run))
    return {"run_id": run.id}


def _login_of(user: str) -> SocketLogin:
    """The login a socket is being opened with: the session its cookie names, and when
    that session logged in (checked again at every event and twice a second)."""
    if not current_app.config.get("LOGIN_REQUIRED", False):
        return SocketLogin(user)
    # Flask-SocketIO hands the handlers a copy of the session without its id: read the
    # session again the way every HTTP request does.
    opened = current_app.session_interface.open_session(current_app, request)
    login_at = opened.get("login_at") if opened is not None else None
    if (not isinstance(opened, ServerSession) or opened.new or opened.get("user") != user
            or not isinstance(login_at, int | float)):
        return SocketLogin(user)  # no session to check: void at the first check
    return SocketLogin(user, session_store_key(opened.sid), float(login_at))


def _still_logged_in(login: SocketLogin) -> bool:
    """Whether this socket's login holds (a logout anywhere, then a new login, leaves
    the user tokens but voids the sessions made before it)."""
    auth = current_app.extensions.get("flask_realtime_auth")
    sid: str = request.sid  # type: ignore[attr-defined]
    return auth is None or sid in auth.logged_in({sid: login})


def _handle(action: Any) -> dict[str, Any]:
    login = get_realtime().sockets.get(request.sid)  # type: ignore[attr-defined]
    try:
        if login is None or not _still_logged_in(login):
            return {"error": "You are not logged in: reload the page and log in."}
        return action(get_realtime(), login.user)
    except ParamError as exc:
        return {"error": str(exc), "errors": exc.errors}
    except JobForbiddenError as exc:  # 403 over HTTP: the same status in the ack
        return {"error": str(exc), "status": 403}
    except (JobError, RunNotFoundError, LimitReachedError, ValueError,
            StoreUnavailableError) as exc:
        return {"error": str(exc) if not isinstance(exc, LookupError) else exc.args[0]}
