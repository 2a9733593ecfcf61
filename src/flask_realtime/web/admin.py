"""The admins' views: every user's runs, their live output, Stop, and the audit trail.

Every route and event here checks the role first (:func:`~.access.require_admin`, from
``ADMIN_USERS`` and the verified identity; 403 and a sentence for anyone else). What an
admin can do to another user's run is read it (record, output, log) and stop it: an
admin never starts, re-runs or shares as another user, and nothing here reads a
user's Webex tokens. Each admin action on another user's run is in the audit trail.

HTTP (docs/access.md lists them): ``GET /api/admin/runs``, ``GET /api/admin/runs/<id>``,
``.../lines``, ``.../log``, ``POST /api/admin/runs/<id>/stop``, ``GET /api/admin/audit``
(JSON, or ``format=csv``; ``download=1`` for a file); the pages ``/admin`` and
``/admin/audit``. Socket.IO: ``admin_watch`` and ``admin_stop``; an admin's sockets are
in the ``admins`` room and hear every run's ``admin_state``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from flask_socketio import SocketIO

from .. import __version__
from ..core.runs import RunState
from ..core.service import RunNotFoundError
from . import audit, csrf
from .access import NOT_ADMIN, is_admin, require_admin
from .api import _int_arg, _log_response
from .delivery import output_event
from .identity import current_user
from .realtime import Realtime, get_realtime

bp = Blueprint("admin", __name__)

MAX_FILTER = 320


@bp.errorhandler(RunNotFoundError)
def _not_found(exc: RunNotFoundError) -> tuple[Response, int]:
    return jsonify(error=exc.args[0]), 404


def _filter(name: str) -> str | None:
    value = request.args.get(name) or None
    if value is not None and len(value) > MAX_FILTER:
        abort(400, f"{name} must be at most {MAX_FILTER} characters.")
    return value


@bp.get("/api/admin/runs")
def runs() -> Response:
    """Every user's runs, newest first, filtered by ``user``, ``job`` and ``state``, at
    most ``limit`` (1 to 1000)."""
    require_admin()
    state = _filter("state")
    if state is not None and state not in {s.value for s in RunState}:
        abort(400, f"state must be one of {', '.join(s.value for s in RunState)}.")
    user = _filter("user")
    rt = get_realtime()
    found = rt.service.list_any(user=user.lower() if user else None, job=_filter("job"),
                                state=state, limit=_int_arg("limit", 100, 1, 1000))
    return jsonify(runs=[rt.run_json(r) for r in found])


@bp.get("/api/admin/runs/<run_id>")
def run(run_id: str) -> Response:
    """One run of any user, with its result."""
    admin = require_admin()
    rt = get_realtime()
    found = rt.service.get_any(run_id)
    if found.user != admin:
        audit.record("admin_read", admin, run=found)
    return jsonify(rt.run_json(found, with_result=True))


@bp.get("/api/admin/runs/<run_id>/lines")
def lines(run_id: str) -> Response:
    """A page of any run's output, as ``/api/runs/<id>/lines`` answers."""
    admin = require_admin()
    rt = get_realtime()
    found = rt.service.get_any(run_id)
    if found.user != admin:
        audit.record("admin_read", admin, run=found, detail={"lines": True})
    piece = rt.store.read_output(found.id, _int_arg("after", 0, 0, 2**62),
                                 max_lines=_int_arg("limit", 1000, 1, 10_000),
                                 max_chars=4 * 1024 * 1024)
    return jsonify(end_seq=piece.end_seq, **output_event(piece, found.id))


@bp.get("/api/admin/runs/<run_id>/log")
def log(run_id: str) -> Response:
    """Any run's whole retained log as plain text (a download unless ``download=0``)."""
    admin = require_admin()
    found = get_realtime().service.get_any(run_id)
    if found.user != admin:
        audit.record("admin_download", admin, run=found)
    return _log_response(found)


@bp.post("/api/admin/runs/<run_id>/stop")
def stop(run_id: str) -> Response:
    """Stop any user's run (CSRF-checked like every POST); harmless when it has ended."""
    admin = require_admin()
    stopped = get_realtime().service.stop_any(run_id)
    audit.record("admin_stop", admin, run=stopped)
    return jsonify(ok=True)


@bp.get("/api/admin/audit")
def audit_trail() -> Response:
    """The audit trail, newest first: ``limit`` entries (1 to 1000, default 100) older
    than ``before``, of ``actor`` and ``action`` when given, as JSON ``{"entries",
    "next"}``; ``format=csv`` or ``format=json`` with ``download=1`` gives every
    matching entry as a file (recorded in the trail itself)."""
    admin = require_admin()
    trail: audit.Audit = current_app.extensions[audit.EXTENSION]
    actor, action = _filter("actor"), _filter("action")
    if action is not None and action not in audit.ACTIONS:
        abort(400, f"action must be one of {', '.join(audit.ACTIONS)}.")
    kind = request.args.get("format", "json")
    if kind not in ("json", "csv"):
        abort(400, "format must be json or csv.")
    if request.args.get("download") == "1" or kind == "csv":
        audit.record("admin_audit_export", admin, detail={"format": kind})
        entries = trail.iterate(actor=actor.lower() if actor else None, action=action)
        if kind == "csv":
            return Response(audit.csv_lines(entries), mimetype="text/csv", headers={
                "Content-Disposition": 'attachment; filename="audit.csv"'})
        return Response(_json_array(entries), mimetype="application/json", headers={
            "Content-Disposition": 'attachment; filename="audit.json"'})
    limit = _int_arg("limit", 100, 1, 1000)
    found = trail.entries(before=_filter("before"), limit=limit,
                          actor=actor.lower() if actor else None, action=action)
    return jsonify(entries=[audit.export_json(e) for e in found],
                   next=found[-1]["id"] if len(found) == limit else None)


def _json_array(entries: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for n, entry in enumerate(entries):
        yield ("," if n else "") + "\n" + json.dumps(audit.export_json(entry),
                                                     ensure_ascii=False)
    yield "\n]\n"


def _page(template: str) -> str | tuple[str, int, dict[str, str]]:
    user = current_user()
    if user is None or not is_admin(user):
        status = 401 if user is None else 403
        text = "Log in first: open the start page." if user is None else NOT_ADMIN
        return text, status, {"Content-Type": "text/plain; charset=utf-8"}
    return render_template(template, user=user, csrf_token=csrf.csrf_token(),
                           version=__version__, actions=audit.ACTIONS)


@bp.get("/admin")
def runs_page() -> str | tuple[str, int, dict[str, str]]:
    """The admins' page of every user's runs (403 in plain text for anyone else)."""
    return _page("admin.html")


@bp.get("/admin/audit")
def audit_page() -> str | tuple[str, int, dict[str, str]]:
    """The admins' page of the audit trail (403 in plain text for anyone else)."""
    return _page("audit.html")


def register_events(socketio: SocketIO) -> None:
    """The admins' Socket.IO events: ``admin_watch`` ``{"run_id", "after"}`` (any run's
    output, as ``watch`` sends it) and ``admin_stop`` ``{"run_id"}``; anyone else's
    ack is ``{"error": NOT_ADMIN, "status": 403}``."""
    from .events import _after, _handle, _run_id

    def admin_only(act: Any) -> Any:
        def checked(rt: Realtime, user: str) -> dict[str, Any]:
            if not is_admin(user):
                return {"error": NOT_ADMIN, "status": 403}
            result: dict[str, Any] = act(rt, user)
            return result
        return checked

    @socketio.on("admin_watch")
    def admin_watch(data: Any = None, *_extra: Any) -> dict[str, Any]:
        @admin_only
        def act(rt: Realtime, user: str) -> dict[str, Any]:
            found = rt.service.get_any(_run_id(data))
            rt.delivery.watch(request.sid, found.id, _after(data))  # type: ignore[attr-defined]
            if found.user != user:
                audit.record("admin_watch", user, run=found)
            return {"ok": True, "run": rt.run_json(found)}
        return _handle(act)

    @socketio.on("admin_stop")
    def admin_stop(data: Any = None, *_extra: Any) -> dict[str, Any]:
        @admin_only
        def act(rt: Realtime, user: str) -> dict[str, Any]:
            stopped = rt.service.stop_any(_run_id(data))
            audit.record("admin_stop", user, run=stopped)
            return {"ok": True}
        return _handle(act)


def init_app(app: Any, realtime: Realtime) -> None:
    """Register the admin routes and Socket.IO events on ``app``."""
    app.register_blueprint(bp)
    register_events(realtime.socketio)
