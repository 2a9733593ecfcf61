"""Schedules over HTTP (``/api/schedules``) and Socket.IO: thin handlers over the
System's :class:`~..core.scheduler.Scheduler` (docs/schedules.md, docs/protocol.md).

Owner-only as runs are: another user's schedule answers as none does (404). The
state-changing routes need the CSRF token (``web/csrf.py`` checks every request);
sockets are the user's own, checked at every event as the run events are. A
refused schedule is a 400 with one sentence; nothing is saved then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, abort, jsonify, request
from flask_socketio import SocketIO

from ..core.jobs import JobError, ParamError
from ..core.runs import Run
from ..core.scheduler import Scheduler
from ..core.schedules import (
    Schedule,
    ScheduleError,
    ScheduleLimitError,
    ScheduleNotFoundError,
)
from ..core.service import LimitReachedError
from . import audit
from .events import _handle
from .identity import current_user
from .realtime import Realtime, get_realtime
from .rooms import user_room

bp = Blueprint("schedules", __name__, url_prefix="/api/schedules")

NO_SCHEDULER = ("Schedules are off on this server (SCHEDULER is false): ask its operator "
                "to turn them on.")


def _scheduler() -> Scheduler:
    scheduler = get_realtime().system.scheduler
    if scheduler is None:
        abort(503, NO_SCHEDULER)
    return scheduler


def _user() -> str:
    user = current_user()
    if user is None:
        abort(401, "Log in first: open the start page.")
    return user


def schedule_json(rt: Realtime, schedule: Schedule, *, with_run: bool = True
                  ) -> dict[str, Any]:
    """The schedule as the API and the ``schedule`` event show it: the record, its due
    times also in ISO 8601, and ``last_run`` (id, state and times of the newest run it
    made, None when it made none or that run was since deleted). Without ``with_run``
    (the ``schedule`` event, sent at every fire) ``last_run`` is ``{"id"}`` only: the
    run's ``state`` events tell its state."""
    data = schedule.public_json()
    if not with_run:
        data["last_run"] = {"id": schedule.last_run_id} if schedule.last_run_id else None
        return data
    run = rt.store.get_run(schedule.last_run_id) if schedule.last_run_id else None
    data["last_run"] = None if run is None or run.user != schedule.user else {
        "id": run.id, "state": run.state.value, "created_at": run.created_at,
        "started_at": run.started_at, "ended_at": run.ended_at, "error": run.error}
    return data


def fires_json(schedule: Schedule, fires: list[float]) -> list[dict[str, str]]:
    """Due times as ``{"at": UTC ISO 8601, "local": wall time in the schedule's zone}``."""
    zone = ZoneInfo(schedule.timezone)
    return [{"at": datetime.fromtimestamp(t, ZoneInfo("UTC")).isoformat().replace(
                "+00:00", "Z"),
             "local": datetime.fromtimestamp(t, zone).strftime("%a %Y-%m-%d %H:%M:%S %Z")}
            for t in fires]


def _body() -> Any:
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        abort(400, "The JSON is nested too deeply: send a schedule object.")
    if not isinstance(data, dict):
        abort(400, "Send a JSON object: {\"name\", \"job\", \"params\", \"cron\" or "
                   "\"interval\", \"timezone\", ...}.")
    return data


@bp.errorhandler(ScheduleError)
def _bad(exc: ScheduleError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.errorhandler(ScheduleNotFoundError)
def _missing(exc: ScheduleNotFoundError) -> tuple[Response, int]:
    return jsonify(error=exc.args[0]), 404


@bp.errorhandler(ParamError)
def _bad_params(exc: ParamError) -> tuple[Response, int]:
    return jsonify(error=str(exc), errors=exc.errors), 400


@bp.errorhandler(JobError)
def _bad_job(exc: JobError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.errorhandler(ScheduleLimitError)
@bp.errorhandler(LimitReachedError)
def _limit(exc: Exception) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 429


@bp.get("")
def list_schedules() -> Response:
    """``GET /api/schedules``: the user's schedules, oldest first."""
    user = _user()
    rt = get_realtime()
    return jsonify(schedules=[schedule_json(rt, s) for s in _scheduler().list_schedules(user)])


@bp.post("")
def create_schedule() -> tuple[Response, int, dict[str, str]]:
    """``POST /api/schedules``: make a schedule; 400 with a sentence when it is not one."""
    user = _user()
    schedule = _audited("create", user, _scheduler().create(user, _body()))
    return (jsonify(schedule_json(get_realtime(), schedule)), 201,
            {"Location": f"{bp.url_prefix}/{schedule.id}"})


@bp.post("/preview")
def preview_schedule() -> Response:
    """``POST /api/schedules/preview``: the next five due times of the schedule the body
    describes, checked as a create is, saving nothing."""
    user = _user()
    draft, fires = _scheduler().preview(user, _body())
    return jsonify(timezone=draft.timezone, fires=fires_json(draft, fires))


@bp.get("/<schedule_id>")
def get_schedule(schedule_id: str) -> Response:
    """``GET /api/schedules/<id>``: one of the user's schedules."""
    return jsonify(schedule_json(get_realtime(), _scheduler().get(_user(), schedule_id)))


@bp.patch("/<schedule_id>")
def update_schedule(schedule_id: str) -> Response:
    """``PATCH /api/schedules/<id>``: change the settings the body gives."""
    user = _user()
    schedule = _audited("update", user, _scheduler().update(user, schedule_id, _body()))
    return jsonify(schedule_json(get_realtime(), schedule))


@bp.delete("/<schedule_id>")
def delete_schedule(schedule_id: str) -> Response:
    """``DELETE /api/schedules/<id>``: forget the schedule; its runs stay."""
    user = _user()
    _audited("delete", user, _scheduler().delete(user, schedule_id))
    return jsonify(ok=True)


@bp.post("/<schedule_id>/pause")
def pause_schedule(schedule_id: str) -> Response:
    """Stop firing until resumed."""
    user = _user()
    return jsonify(schedule_json(get_realtime(), _audited(
        "pause", user, _scheduler().pause(user, schedule_id))))


@bp.post("/<schedule_id>/resume")
def resume_schedule(schedule_id: str) -> Response:
    """Fire again from the next due time after now."""
    user = _user()
    return jsonify(schedule_json(get_realtime(), _audited(
        "resume", user, _scheduler().resume(user, schedule_id))))


@bp.post("/<schedule_id>/run")
def run_schedule_now(schedule_id: str) -> tuple[Response, int, dict[str, str]]:
    """Start the schedule's job now (the run limits apply: 429 with a sentence)."""
    rt = get_realtime()
    user = _user()
    run = _scheduler().run_now(user, schedule_id)
    _audited("run_now", user, _scheduler().get(user, schedule_id), run=run)
    return jsonify(rt.run_json(run)), 201, {"Location": f"/api/runs/{run.id}"}


def _audited(op: str, user: str, schedule: Schedule, run: Run | None = None) -> Schedule:
    """Record what ``user`` did to ``schedule`` in the audit trail (action ``schedule``,
    docs/access.md) and return the schedule."""
    audit.record("schedule", user, run=run, detail={
        "op": op, "schedule_id": schedule.id, "name": schedule.name, "job": schedule.job})
    return schedule


# -- Socket.IO ---------------------------------------------------------------------------

def _socket_action(data: Any, act: Any) -> dict[str, Any]:
    def guarded(rt: Realtime, user: str) -> dict[str, Any]:
        scheduler = rt.system.scheduler
        if scheduler is None:
            raise ValueError(NO_SCHEDULER)
        try:
            return dict(act(rt, scheduler, user))
        except (ScheduleNotFoundError, ScheduleLimitError) as exc:
            raise ValueError(exc.args[0]) from None
    return _handle(guarded)


def _id(data: Any) -> Any:
    schedule_id = data.get("schedule_id") if isinstance(data, dict) else None
    if not isinstance(schedule_id, str):
        raise ValueError("Send {\"schedule_id\": \"...\"} with the id of one of your "
                         "schedules.")
    return schedule_id


def _fields(data: Any) -> Any:
    fields = data.get("schedule") if isinstance(data, dict) else None
    if not isinstance(fields, dict):
        raise ValueError("Send {\"schedule\": {\"name\", \"job\", \"cron\" or \"interval\", "
                         "...}}.")
    return fields


def register_events(socketio: SocketIO) -> None:
    """The schedule events of docs/protocol.md, each answered through its ack."""

    @socketio.on("schedules")
    def schedules(data: Any = None, *_extra: Any) -> dict[str, Any]:
        return _socket_action(data, lambda rt, sc, user: {
            "schedules": [schedule_json(rt, s) for s in sc.list_schedules(user)]})

    @socketio.on("schedule_preview")
    def preview(data: Any = None, *_extra: Any) -> dict[str, Any]:
        def act(rt: Realtime, sc: Scheduler, user: str) -> dict[str, Any]:
            draft, fires = sc.preview(user, _fields(data))
            return {"timezone": draft.timezone, "fires": fires_json(draft, fires)}
        return _socket_action(data, act)

    @socketio.on("schedule_create")
    def create(data: Any = None, *_extra: Any) -> dict[str, Any]:
        return _socket_action(data, lambda rt, sc, user: {
            "schedule": schedule_json(rt, _audited("create", user,
                                                   sc.create(user, _fields(data))))})

    @socketio.on("schedule_update")
    def update(data: Any = None, *_extra: Any) -> dict[str, Any]:
        return _socket_action(data, lambda rt, sc, user: {
            "schedule": schedule_json(rt, _audited("update", user, sc.update(
                user, _id(data), _fields(data))))})

    @socketio.on("schedule_pause")
    def pause(data: Any = None, *_extra: Any) -> dict[str, Any]:
        return _socket_action(data, lambda rt, sc, user: {
            "schedule": schedule_json(rt, _audited("pause", user, sc.pause(user, _id(data))))})

    @socketio.on("schedule_resume")
    def resume(data: Any = None, *_extra: Any) -> dict[str, Any]:
        return _socket_action(data, lambda rt, sc, user: {
            "schedule": schedule_json(rt, _audited("resume", user,
                                                   sc.resume(user, _id(data))))})

    @socketio.on("schedule_delete")
    def delete(data: Any = None, *_extra: Any) -> dict[str, Any]:
        def act(rt: Realtime, sc: Scheduler, user: str) -> dict[str, Any]:
            _audited("delete", user, sc.delete(user, _id(data)))
            return {"ok": True}
        return _socket_action(data, act)

    @socketio.on("schedule_run_now")
    def run_now(data: Any = None, *_extra: Any) -> dict[str, Any]:
        def act(rt: Realtime, sc: Scheduler, user: str) -> dict[str, Any]:
            run = sc.run_now(user, _id(data))
            _audited("run_now", user, sc.get(user, _id(data)), run=run)
            return {"run_id": run.id}
        return _socket_action(data, act)


def init_app(app: Flask, socketio: SocketIO, realtime: Realtime) -> None:
    """The routes, the events, and a ``schedule`` event to every socket of the owner
    whenever one of their schedules is saved or deleted (``deleted: true``)."""
    app.register_blueprint(bp)
    register_events(socketio)
    scheduler = realtime.system.scheduler
    if scheduler is None:
        return

    def announce(schedule: Schedule, deleted: bool) -> None:
        data = {**schedule_json(realtime, schedule, with_run=False), "deleted": deleted}
        socketio.emit("schedule", data, to=user_room(schedule.user), namespace="/")

    scheduler.subscribe(announce)
