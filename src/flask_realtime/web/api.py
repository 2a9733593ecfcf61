"""The HTTP API: JSON over the same run service the Socket.IO events use."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from ..core.jobs import JobError, ParamError
from ..core.output import render_text
from ..core.runs import NotifyError, Run, RunState
from ..core.service import (
    InputError,
    InputTooLargeError,
    JobForbiddenError,
    LimitReachedError,
    RequestIdError,
    RunNotFoundError,
)
from . import audit, files, openapi
from .access import may_see_job
from .delivery import output_event
from .events import end_shared_watches
from .identity import current_user
from .realtime import get_realtime

bp = Blueprint("api", __name__, url_prefix="/api")
bp.register_blueprint(files.bp)  # uploads, artifacts, pictures, CSV (web/files.py)

LOG_PAGE_LINES = 5_000
SHARE_DEFAULT_SECONDS = 7 * 86_400
SHARE_MAX_SECONDS = 30 * 86_400
SHARE_GONE = ("This share link has expired or was revoked: ask the run's owner for a "
              "new one.")
#: A store's ``retention_lines`` at or above this is no cap (SQLite's default, 2**62).
NO_LINE_CAP = 1 << 60


def _size(n: int) -> str:
    """``n`` bytes in binary units, as the settings are usually written: "1 GiB"."""
    if n < 1024:
        return f"{n} bytes"
    value, units = n / 1024, ["KiB", "MiB", "GiB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.3g} {units[0]}"


def _retention_words(store: object) -> str:
    """The limits that drop a run's oldest lines, in words with the setting's name: a
    line cap only where one applies (SQLite has none unless RETENTION_LINES is set).
    Read by name: each store has the budgets its kind of storage needs."""
    limits = []
    per_run_lines = getattr(store, "retention_lines", NO_LINE_CAP)
    if per_run_lines < NO_LINE_CAP:
        limits.append(f"the newest {per_run_lines:,} lines per run, RETENTION_LINES")
    per_run = getattr(store, "retention_bytes", None)
    if per_run:
        limits.append(f"{_size(per_run)} of stored output per run, RETENTION_BYTES")
    everyone = getattr(store, "disk_budget_bytes", None)
    if everyone:
        limits.append(f"{_size(everyone)} for all runs' output, DISK_BUDGET_BYTES")
    shared = getattr(store, "output_budget_bytes", None)
    if shared:
        limits.append(f"{_size(shared)} for all runs' output, REDIS_OUTPUT_BUDGET_BYTES")
    return "retention limit: " + "; or ".join(limits or ["the store's limit"])


def _user() -> str:
    user = current_user()
    if user is None:
        abort(401, "Log in first: open the start page.")
    return user


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"{name} must be a whole number.")
    if not low <= value <= high:
        abort(400, f"{name} must be between {low} and {high}.")
    return value


@bp.errorhandler(RunNotFoundError)
def _not_found(exc: RunNotFoundError) -> tuple[Response, int]:
    return jsonify(error=exc.args[0]), 404


@bp.errorhandler(ParamError)
def _bad_params(exc: ParamError) -> tuple[Response, int]:
    return jsonify(error=str(exc), errors=exc.errors), 400


@bp.errorhandler(JobForbiddenError)
def _forbidden_job(exc: JobForbiddenError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 403


@bp.errorhandler(JobError)
def _bad_job(exc: JobError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.errorhandler(RequestIdError)
def _bad_request_id(exc: RequestIdError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.errorhandler(NotifyError)
def _bad_notify(exc: NotifyError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.errorhandler(LimitReachedError)
def _limit(exc: LimitReachedError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 429


@bp.errorhandler(InputError)
def _bad_input(exc: InputError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 413 if isinstance(exc, InputTooLargeError) else 400


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """``GET /api/openapi.json``: the OpenAPI 3.1 description of this API; 401 without a
    login."""
    _user()
    return jsonify(openapi.document())


@bp.get("/jobs")
def jobs() -> Response:
    """``GET /api/jobs``: every job the user may run (its ``allowed`` rule,
    docs/access.md) with its parameters; 401 without a login."""
    user = _user()
    return jsonify(jobs=[files.job_json(spec)
                         for spec in get_realtime().service.jobs_for(user)])


@bp.get("/runs")
def runs() -> Response:
    """``GET /api/runs``: the user's runs, newest first, filtered by ``job`` and ``state``,
    at most ``limit`` (1 to 1000); 400 for a bad filter."""
    user = _user()
    rt = get_realtime()
    state = request.args.get("state") or None
    if state is not None and state not in {s.value for s in RunState}:
        abort(400, f"state must be one of {', '.join(s.value for s in RunState)}.")
    found = rt.service.list(user, job=request.args.get("job") or None, state=state,
                            limit=_int_arg("limit", 100, 1, 1000))
    return jsonify(runs=[rt.run_json(r) for r in found])


def _json_body(shape: str, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object (``shape`` shows one in the error sentences); with
    ``optional``, no body at all is an empty object."""
    if optional and not request.get_data(cache=True):
        return {}
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # json.loads raises it, not ValueError, past ~1,000 levels
        abort(400, f"The JSON is nested too deeply: send {shape}.")
    if not isinstance(data, dict):
        abort(400, f"Send a JSON object: {shape}.")
    return data


def _started(run: Run) -> tuple[Response, int, dict[str, str]]:
    return (jsonify(get_realtime().run_json(run)), 201,
            {"Location": f"{bp.url_prefix}/runs/{run.id}"})


@bp.post("/runs")
def start_run() -> tuple[Response, int, dict[str, str]]:
    """Start a job, as the socket's ``start`` event does (without watching it); a job
    with file parameters is started with ``multipart/form-data`` (web/files.py)."""
    user = _user()
    rt = get_realtime()
    if request.mimetype == "multipart/form-data":
        job, params, request_id, uploads = files.multipart_start()
        run, made = rt.start_once(user, job, params, request_id=request_id, files=uploads,
                                  notify=request.form.get("notify"))
    else:
        data = _json_body('{"job": name, "params": {...}}')
        # The run service checks request_id, for HTTP and Socket.IO alike.
        run, made = rt.start_once(user, data.get("job"), data.get("params"),
                                  request_id=data.get("request_id"), notify=data.get("notify"))
    if made:  # a repeated request_id is the same start, recorded once
        audit.record("start", user, run=run, detail=audit.params_detail(rt.registry, run))
    return _started(run)


@bp.post("/runs/<run_id>/rerun")
def rerun(run_id: str) -> tuple[Response, int, dict[str, str]]:
    """Start the job of one of the user's runs again with that run's parameters, in any
    state. Validated as a new start is: a job no longer offered, or parameters it no
    longer accepts, are a 400 with the usual sentences. The body is optional,
    ``{"request_id": ...}``, and shares its ids with ``POST /runs``."""
    user = _user()
    data = _json_body('{"request_id": "..."} or nothing', optional=True)
    rt = get_realtime()
    old = rt.service.get(user, run_id)
    spec = rt.registry.get(old.job)  # UnknownJobError (400): no longer offered
    if not rt.service.may_run(user, spec):  # theirs: they know the job, so say why
        raise JobForbiddenError(old.job)
    params, uploads = files.stored_uploads(old, spec)
    run, made = rt.start_once(user, old.job, params, request_id=data.get("request_id"),
                              files=uploads, notify=data.get("notify"))
    if made:
        audit.record("rerun", user, run=run, detail={"from": old.id,
                                                     **audit.params_detail(rt.registry, run)})
    return _started(run)


@bp.post("/runs/<run_id>/stop")
def stop_run(run_id: str) -> Response:
    """Ask a run to stop; stopping twice, or a finished run, is harmless."""
    user = _user()
    audit.record("stop", user, run=get_realtime().service.stop(user, run_id))
    return jsonify(ok=True)


@bp.post("/runs/<run_id>/input")
def send_input(run_id: str) -> Response:
    """Type into one of the user's runs: ``{"text": "Ada\\n"}`` is sent exactly (end it
    with a newline for a line), ``{"eof": true}`` ends its input. 413 past
    ``INPUT_MAX_BYTES``, 400 for a run that has ended or whose input has; 404 for a run
    that is not the user's (docs/jobs.md, "Input")."""
    user = _user()
    rt = get_realtime()
    # Escaped JSON may take 6 characters a byte (\u0000); the body is bounded before
    # it is read, so a huge one costs nothing.
    limit = 6 * rt.service.input_max_bytes + 1024
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        abort(413, f"The input is larger than the {rt.service.input_max_bytes} bytes one "
                   "send may hold (INPUT_MAX_BYTES): send it in parts.")
    data = _json_body('{"text": "a line\\n"} or {"eof": true}')
    eof = data.get("eof", False)
    if not isinstance(eof, bool) or (eof and "text" in data):
        abort(400, 'Send {"text": "..."} or {"eof": true}, not both; eof is true or false.')
    rt.service.send_input(user, run_id, data.get("text"), eof=eof)
    return jsonify(ok=True)


@bp.get("/runs/<run_id>")
def run(run_id: str) -> Response:
    """``GET /api/runs/<id>``: one of the user's runs, with its result; 404 for a run that
    is not theirs."""
    rt = get_realtime()
    return jsonify(rt.run_json(rt.service.get(_user(), run_id), with_result=True))


@bp.get("/runs/<run_id>/lines")
def lines(run_id: str) -> Response:
    """``GET /api/runs/<id>/lines``: output after seq ``after``, at most ``limit`` lines, as
    the Socket.IO ``output`` event has them, with ``end_seq``; 404 for a run that is not
    the user's."""
    rt = get_realtime()
    piece = rt.service.read(
        _user(), run_id, _int_arg("after", 0, 0, 2**62),
        max_lines=_int_arg("limit", 1000, 1, 10_000), max_chars=4 * 1024 * 1024)
    return jsonify(end_seq=piece.end_seq, **output_event(piece, run_id))


@bp.get("/runs/<run_id>/log")
def run_log(run_id: str) -> Response:
    """The whole retained log as plain text, streamed page by page."""
    user = _user()
    run = get_realtime().service.get(user, run_id)
    if request.args.get("download") != "0":
        audit.record("download", user, run=run)
    return _log_response(run)


def _log_response(run: Run) -> Response:
    """``run``'s retained log as plain text, streamed page by page; a download unless
    ``download=0``."""
    rt = get_realtime()

    def generate() -> Iterator[str]:
        after = 0
        while True:
            piece = rt.store.read_output(run.id, after, max_lines=LOG_PAGE_LINES,
                                         max_chars=8 * 1024 * 1024)
            if piece.skipped:
                yield (f"[flask-realtime: {piece.skipped} earlier lines were dropped "
                       f"({_retention_words(rt.store)})]\n")
            if not piece.lines:
                return
            yield "".join(render_text(piece.lines))
            after = piece.last_seq

    headers = {"Content-Disposition": f'attachment; filename="{run.job}-{run.id}.log"'}
    if request.args.get("download") == "0":
        headers = {}
    return Response(generate(), mimetype="text/plain", headers=headers)


# -- read-only share links (docs/ui.md, "Sharing a run") ------------------------------

def hash_token(token: str) -> str:
    """The SHA-256 hex digest a share link's token is stored as."""
    return hashlib.sha256(token.encode()).hexdigest()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _share_json(share: dict[str, Any]) -> dict[str, Any]:
    """A share as its owner's list shows it: never the token (it is not stored)."""
    return {"id": share["id"], "expires_at": _iso(share["expires_at"])}


def shared_run(token: Any) -> tuple[Run, dict[str, Any]]:
    """The run a share link's token opens and the share; RunNotFoundError (a 404 with a
    sentence) for a token unknown, expired or revoked, or a run since deleted."""
    rt = get_realtime()
    if not isinstance(token, str) or not 0 < len(token) <= 200:
        raise RunNotFoundError(SHARE_GONE)
    share = rt.store.get_share(hash_token(token))
    run = rt.store.get_run(share["run_id"]) if share is not None else None
    if share is None or run is None or run.user != share["owner"]:
        raise RunNotFoundError(SHARE_GONE)
    viewer = current_user()
    if viewer is not None and not may_see_job(viewer, run.job):
        raise JobForbiddenError(run.job)  # a job the viewer may not run: not its output
    return run, share


@bp.post("/runs/<run_id>/shares")
def create_share(run_id: str) -> tuple[Response, int]:
    """Make a read-only link to one of the user's runs, valid ``expires_in`` seconds
    (default 7 days, at most 30); the token is in the answer's ``url`` only: the store
    keeps its hash."""
    user = _user()
    data = _json_body('{"expires_in": seconds} or nothing', optional=True)
    expires_in = data.get("expires_in", SHARE_DEFAULT_SECONDS)
    if (isinstance(expires_in, bool) or not isinstance(expires_in, int)
            or not 1 <= expires_in <= SHARE_MAX_SECONDS):
        abort(400, f"expires_in must be a whole number of seconds from 1 to "
                   f"{SHARE_MAX_SECONDS} (30 days).")
    rt = get_realtime()
    run = rt.service.get(user, run_id)
    if not may_see_job(user, run.job):
        raise JobForbiddenError(run.job)
    token = secrets.token_urlsafe(32)
    share = {"id": secrets.token_hex(8), "token_hash": hash_token(token), "run_id": run.id,
             "owner": user, "expires_at": time.time() + expires_in}
    rt.store.create_share(share)
    audit.record("share", user, run=run, detail={"share_id": share["id"],
                                                 "expires_in": expires_in})
    return jsonify(url=f"{request.host_url}#share={token}", **_share_json(share)), 201


@bp.get("/runs/<run_id>/shares")
def list_shares(run_id: str) -> Response:
    """The share links of one of the user's runs that have not expired: ids and expiry,
    never the tokens."""
    rt = get_realtime()
    run = rt.service.get(_user(), run_id)
    return jsonify(shares=[_share_json(s) for s in rt.store.list_shares(run.id)])


@bp.delete("/runs/<run_id>/shares/<share_id>")
def revoke_share(run_id: str, share_id: str) -> Response | tuple[Response, int]:
    """Revoke one of the run's share links: it opens nothing from now on, and no new
    live watch starts with it."""
    rt = get_realtime()
    user = _user()
    run = rt.service.get(user, run_id)
    if share_id not in {s["id"] for s in rt.store.list_shares(run.id)}:
        return jsonify(error="This run has no such share link: list them with GET "
                             f"/api/runs/{run.id}/shares."), 404
    rt.store.delete_share(share_id)
    end_shared_watches(share_id)
    audit.record("revoke_share", user, run=run, detail={"share_id": share_id})
    return jsonify(ok=True)


@bp.get("/shared/<token>")
def shared(token: str) -> Response:
    """A run shared with a link, for any logged-in user: the record with its result and
    ``shared_by``; 404 with a sentence once the link expired or was revoked."""
    _user()
    run, share = shared_run(token)
    return jsonify({**get_realtime().run_json(run, with_result=True),
                    "shared_by": share["owner"]})


@bp.get("/shared/<token>/lines")
def shared_lines(token: str) -> Response:
    """``GET /api/shared/<token>/lines``: as ``/runs/<id>/lines``, through a share link."""
    _user()
    run, _share = shared_run(token)
    piece = get_realtime().store.read_output(
        run.id, _int_arg("after", 0, 0, 2**62), max_lines=_int_arg("limit", 1000, 1, 10_000),
        max_chars=4 * 1024 * 1024)
    return jsonify(end_seq=piece.end_seq, **output_event(piece, run.id))


@bp.get("/shared/<token>/log")
def shared_log(token: str) -> Response:
    """A shared run's whole retained log as plain text."""
    user = _user()
    run = shared_run(token)[0]
    if request.args.get("download") != "0":
        audit.record("download", user, run=run, detail={"shared": True})
    return _log_response(run)
