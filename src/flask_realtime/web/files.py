"""Files over HTTP: uploads with a start, a run's artifacts and pictures, its result as CSV.

A start with files is ``POST /api/runs`` as ``multipart/form-data`` (docs/protocol.md):
the body's size is limited before it is read (:func:`limit_form_bodies`, Flask's
``max_content_length`` of the request) and every file again by the run service
(``MAX_UPLOAD_BYTES``). A run's artifacts are downloads (``attachment``, a safe file
name, ``nosniff``, a CSP that allows nothing); PNG and JPEG artifacts, recognised by
their first bytes, are also served as images for the page's ``<img>``: an SVG never is.

Who may read a run's files is :func:`readable_run`: the run's owner and the admins
(``ADMIN_USERS``; an admin's read of another user's files is in the audit trail).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from ..core.files import ARTIFACT_PREFIX, UPLOAD_PREFIX, IncomingFile, picture_kind
from ..core.jobs import JobSpec, ParamError
from ..core.runs import Run
from ..core.service import RunNotFoundError
from . import audit
from .access import is_admin
from .identity import current_user
from .realtime import get_realtime

bp = Blueprint("files", __name__)

#: Room in a form body for everything but the files (job, params, request_id, the
#: multipart boundaries).
FORM_OVERHEAD_BYTES = 256 * 1024
#: What a file artifact is served as: never a type the browser would run or render.
DOWNLOAD_TYPE = "application/octet-stream"
#: The CSP of a file served from a run: nothing in it may run or load anything.
FILE_CSP = "default-src 'none'; sandbox"
#: Characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def readable_run(user: str, run_id: str) -> Run:
    """The run ``run_id`` if ``user`` may read its files: its owner, or an admin
    (docs/access.md; recorded as ``admin_download`` when the run is another user's).
    For everyone else another user's run is indistinguishable from none: raises
    :class:`RunNotFoundError` (a 404)."""
    service = get_realtime().service
    if not is_admin(user):
        return service.get(user, run_id)
    run = service.get_any(run_id)
    if run.user != user:
        audit.record("admin_download", user, run=run, detail={"file": request.path})
    return run


def _user() -> str:
    user = current_user()
    if user is None:
        abort(401, "Log in first: open the start page.")
    return user


def upload_limit(app: Flask) -> int:
    """The most bytes a form body may have: ``MAX_UPLOAD_BYTES`` for each file parameter
    of the job that has the most (at least one), plus :data:`FORM_OVERHEAD_BYTES`;
    never more than the app's own ``MAX_CONTENT_LENGTH`` when one is set."""
    realtime = app.extensions["flask_realtime"]
    files = max([len(spec.file_params) for spec in realtime.registry] + [1])
    limit = int(app.config["MAX_UPLOAD_BYTES"]) * files + FORM_OVERHEAD_BYTES
    configured = app.config.get("MAX_CONTENT_LENGTH")
    return min(limit, int(configured)) if configured else limit


def too_large_sentence() -> str:
    """What a body past :func:`upload_limit` is refused with (413)."""
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    return (f"The upload is too large: a file may have at most {limit:,} bytes "
            "(MAX_UPLOAD_BYTES). Choose a smaller file.")


def limit_form_bodies() -> None:
    """Before any handler (CSRF's reads form fields): a form body (multipart or
    urlencoded) may not pass :func:`upload_limit`; Werkzeug refuses it with 413 as it
    reads, or at once when its Content-Length says so, before reading it all."""
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        request.max_content_length = upload_limit(current_app)


def init_app(app: Flask) -> None:
    """Limit form bodies before every other check of ``app`` (CSRF's included), and
    answer a body too large with :func:`too_large_sentence`."""
    app.before_request_funcs.setdefault(None, []).insert(0, limit_form_bodies)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
        return jsonify(error=too_large_sentence()), 413


def job_json(spec: JobSpec) -> dict[str, Any]:
    """A job as ``GET /api/jobs`` lists it, with ``max_bytes`` (MAX_UPLOAD_BYTES) on each
    file parameter, so that the page refuses a file too large before sending it."""
    data = spec.to_json()
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    for param in data["params"]:
        if param["type"] == "file":
            param["max_bytes"] = limit
    return data


def multipart_start() -> tuple[Any, Any, Any, dict[str, IncomingFile]]:
    """A ``multipart/form-data`` start: (job, params, request_id, files) from the fields
    ``job``, ``params`` (a JSON object, optional) and ``request_id`` (optional), and one
    file field per file parameter. 413 past :func:`upload_limit`, 400 for a bad
    ``params``; a file larger than ``MAX_UPLOAD_BYTES`` is a ParamError, as the run
    service says it."""
    form, uploaded = request.form, request.files  # RequestEntityTooLarge past the limit
    raw_params = form.get("params") or "{}"
    try:
        params = json.loads(raw_params)
    except ValueError:
        params = None
    if not isinstance(params, dict):
        abort(400, 'The "params" field must be a JSON object of name: value (files go in '
                   "fields of their own, named after their parameters).")
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    files: dict[str, IncomingFile] = {}
    errors: dict[str, str] = {}
    for name in uploaded:
        storages = uploaded.getlist(name)
        if len(storages) != 1:
            errors[name[:100]] = "takes one file; send one"
            continue
        storage = storages[0]
        storage.stream.seek(0, io.SEEK_END)
        size = storage.stream.tell()
        storage.stream.seek(0)
        if size == 0 and not storage.filename:
            continue  # a file field left empty: no file given
        if size > limit:  # the run service's sentence, without reading the file
            errors[name[:100]] = (f"is {size:,} bytes, larger than the {limit:,} bytes a "
                                  "file may have (MAX_UPLOAD_BYTES)")
            continue
        files[name] = IncomingFile(storage.filename or "", storage.stream.read())
    if errors:
        raise ParamError(errors)
    return form.get("job"), params, form.get("request_id") or None, files


def stored_uploads(run: Run, spec: JobSpec) -> tuple[dict[str, Any], dict[str, IncomingFile]]:
    """A run's params for a re-run, with its uploaded files read back from the store:
    (params without the files, files). A file the store lost is a ParamError."""
    store = get_realtime().store
    params = dict(run.params)
    files: dict[str, IncomingFile] = {}
    for name in spec.file_params:
        kept = params.pop(name, None)
        if kept is None:
            continue
        data = store.get_blob(run.id, UPLOAD_PREFIX + name)
        if data is None:
            raise ParamError({name: "was uploaded for that run but is not stored any more: "
                                    "start the job again with the file"})
        filename = kept.get("filename", "") if isinstance(kept, Mapping) else ""
        files[name] = IncomingFile(str(filename), data)
    return params, files


def _artifact(run: Run, name: str) -> tuple[dict[str, Any], bytes]:
    """The listing entry and bytes of ``run``'s artifact ``name``; 404 with a sentence."""
    entry = next((a for a in run.artifacts if a.get("name") == name), None)
    data = get_realtime().store.get_blob(run.id, ARTIFACT_PREFIX + name) if entry else None
    if entry is None or data is None:
        abort(404, f"This run has no file named {name[:100]!r}: its record lists the files "
                   "it kept (artifacts).")
    return entry, data


def _download_name(name: str) -> str:
    """A safe file name for Content-Disposition: the artifact's last part, ASCII letters,
    digits, dots, dashes and underscores only."""
    return secure_filename(name.rsplit("/", 1)[-1]) or "artifact"


def result_csv_name(job: str, run_id: str) -> str:
    """The download name of a run's table as CSV: ``<job>-<run id>.csv``, made safe as a
    whole (a run id may start with ``_`` or ``-``, which a name made safe on its own
    loses: the file would not name its run)."""
    return _download_name(f"{job}-{run_id}.csv")


def _guarded(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/runs/<run_id>/artifacts/<path:name>")
def download_artifact(run_id: str, name: str) -> Response:
    """One of the run's artifacts as a download (``attachment``, whatever it holds);
    404 for a run not the user's or a name it did not keep."""
    run = readable_run(_user(), run_id)
    _entry, data = _artifact(run, name)
    return _guarded(send_file(io.BytesIO(data), mimetype=DOWNLOAD_TYPE, as_attachment=True,
                              download_name=_download_name(name), etag=False))


@bp.get("/runs/<run_id>/pictures/<path:name>")
def picture(run_id: str, name: str) -> Response:
    """A PNG or JPEG artifact as an image for the page's ``<img>`` (its first bytes
    decide, not its name); 404 with a sentence for anything else, an SVG included."""
    run = readable_run(_user(), run_id)
    _entry, data = _artifact(run, name)
    kind = picture_kind(data)
    if kind is None:
        abort(404, f"The file {name[:100]!r} is not a PNG or JPEG picture, so it is not "
                   "shown: download it instead.")
    return _guarded(send_file(io.BytesIO(data), mimetype=f"image/{kind}",
                              download_name=_download_name(name), etag=False))


def csv_cell(value: Any) -> Any:
    """A result cell as the page shows it (JSON for objects and lists, ``true``/``false``,
    nothing for null), text that a spreadsheet would take for a formula prefixed with
    ``'``; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def result_rows(result: Any) -> tuple[list[str], list[dict[str, Any]]] | None:
    """(columns, rows) when ``result`` is a table, a list of objects (the columns in the
    order they first appear, as the page shows them); else None."""
    if not isinstance(result, list) or not result or not all(
            isinstance(row, dict) for row in result):
        return None
    columns: dict[str, None] = {}
    for row in result:
        columns.update(dict.fromkeys(row))
    return list(columns), result


@bp.get("/runs/<run_id>/result.csv")
def result_csv(run_id: str) -> Response:
    """The run's result as CSV, when it is a table (a list of objects); 404 with a
    sentence otherwise. Cells that would start a formula are prefixed with ``'``."""
    run = readable_run(_user(), run_id)
    table = result_rows(run.result) if run.has_result else None
    if table is None:
        abort(404, "This run's result is not a table (a list of objects), so there is no "
                   "CSV of it: GET /api/runs/<id> has the result as JSON.")
    columns, rows = table

    def generate() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([csv_cell(c) for c in columns])
        for row in rows:
            writer.writerow([csv_cell(row.get(c)) for c in columns])
            if out.tell() > 64 * 1024:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    response = Response(generate(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{result_csv_name(run.job, run.id)}"'})
    return _guarded(response)


def run_not_found(exc: RunNotFoundError) -> tuple[Response, int]:
    """A run that is not the user's: 404 with the run service's sentence."""
    return jsonify(error=exc.args[0]), 404


bp.register_error_handler(RunNotFoundError, run_not_found)
