"""The server's log, set up in one place for ``flask-realtime run``, ``flask-realtime
worker`` and ``web/wsgi.py`` (docs/deployment.md, "Logs").

``LOG_FORMAT=text`` (the default) writes ``time level logger: message`` lines;
``LOG_FORMAT=json`` writes one JSON object per line with the fields ``time`` (UTC,
ISO 8601), ``level``, ``logger``, ``message``, and when known ``run_id``, ``user``
(:func:`user_hash`: never the user id itself) and ``request_id``, plus ``exception``
(the traceback) when there is one.

Request ids: a request's is its ``X-Request-Id`` header (nginx sets it to its own
``$request_id``) when that is a short token, else one made here (:func:`request_id_of`);
it is answered in the response's ``X-Request-Id`` and kept with a run queued for an RQ
worker (adapters/rq.py), whose log lines for that run carry it (:func:`bind`).

Records made in a run's threads are not the server's: they go to the run's output
(core/capture), and the handler here leaves them out as the capture hooks would.
Redaction of secrets (web/requestlog.py) happens on the records, before either format.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

from .config import PREFIX, check_for

REQUEST_ID_HEADER = "X-Request-Id"
#: Where a request's id is kept in its WSGI environ (Socket.IO events see their
#: connection's environ, so an event's records carry the id of the request that opened it).
ENVIRON_KEY = "flask_realtime.request_id"
#: An ``X-Request-Id`` taken as given: nginx's ``$request_id`` is 32 hex digits. Anything
#: else (too long, spaces, quotes, newlines: a way to forge log lines) is replaced.
_GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: ``log.warning("run %s failed ...", run_id)``: how the package's records name a run.
_RUN_FIRST = ("run %s", "run %r")
_THREAD_OF_RUN = "flask-realtime-run-"  # core/runner.py ThreadRunner names its threads so
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flask_realtime_request_id", default=None)
_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flask_realtime_run_id", default=None)


def user_hash(user: str) -> str:
    """A user's id in the log: the first 12 hex digits of its SHA-256. Enough to follow
    one user through the log, without the address (or id) itself."""
    return hashlib.sha256(user.encode("utf-8", "replace")).hexdigest()[:12]


def request_id_of(environ: MutableMapping[str, Any]) -> str:
    """The request's id: its ``X-Request-Id`` when that is a short token, else a new
    random one; kept in ``environ`` so every record of the request carries the same."""
    found = environ.get(ENVIRON_KEY)
    if found is None:
        given = str(environ.get("HTTP_X_REQUEST_ID", ""))
        found = given if _GOOD_REQUEST_ID.fullmatch(given) else secrets.token_hex(16)
        environ[ENVIRON_KEY] = found
    return str(found)


def current_request_id() -> str | None:
    """The id of the request being handled (or :func:`bind`'s), None outside of one."""
    bound = _request_id.get()
    if bound is not None:
        return bound
    try:
        from flask import has_request_context, request
    except ImportError:  # pragma: no cover - Flask is a dependency
        return None
    return request_id_of(request.environ) if has_request_context() else None


@contextlib.contextmanager
def bind(*, run_id: str | None = None, request_id: str | None = None) -> Iterator[None]:
    """The calling thread's records name ``run_id`` and ``request_id`` until the block
    ends (an RQ work-horse executing a run started by that request)."""
    run_token = _run_id.set(run_id)
    request_token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(request_token)
        _run_id.reset(run_token)


def _run_of(record: logging.LogRecord) -> str | None:
    given = getattr(record, "run_id", None) or _run_id.get()
    if given:
        return str(given)
    if (isinstance(record.msg, str) and record.msg.startswith(_RUN_FIRST)
            and isinstance(record.args, tuple) and record.args):
        return str(record.args[0])
    if record.threadName and record.threadName.startswith(_THREAD_OF_RUN):
        return record.threadName.removeprefix(_THREAD_OF_RUN)
    return None


def _user_of(record: logging.LogRecord) -> str | None:
    user = getattr(record, "user", None)
    if user is None:
        try:
            from flask import current_app, g, has_request_context
        except ImportError:  # pragma: no cover
            return None
        if not has_request_context():
            return None
        # Only a user already looked up for this request: a log record must never
        # cost a session read. Without login every visitor is web/identity.py's "local".
        user = (g.get("flask_realtime_user") if current_app.config.get("LOGIN_REQUIRED")
                else "local")
    return user_hash(str(user)) if user else None


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in (("run_id", _run_of(record)), ("user", _user_of(record)),
                           ("request_id", current_request_id())):
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _ServerRecordsOnly(logging.Filter):
    """Leaves out records made in a run's threads: they belong to the run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .core.capture.context import current_capture

        return current_capture() is None


class _ServerHandler(logging.StreamHandler):
    """The handler :func:`setup` installs (and replaces when called again)."""


_setup_lock = threading.Lock()


def log_format_from_environment() -> str:
    """``FLASK_REALTIME_LOG_FORMAT`` (or ``LOG_FORMAT``), read before the app exists;
    "text" when unset or not a format (the app's configuration then stops the start
    with a sentence naming the setting)."""
    raw = os.environ.get(PREFIX + "LOG_FORMAT") or os.environ.get("LOG_FORMAT") or "text"
    try:
        return str(check_for("LOG_FORMAT").convert(raw))
    except ValueError:
        return "text"


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` ("text" or "json")."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def setup(log_format: str | None = None, *, level: int = logging.INFO) -> logging.Handler:
    """Send the server's records to stderr, as ``log_format`` says (None: the
    environment's, :func:`log_format_from_environment`), at ``level`` and above.

    Call it before the app is created, once per process; calling it again replaces the
    handler it installed, and leaves other handlers alone. Returns the handler."""
    log_format = log_format or log_format_from_environment()
    handler = _ServerHandler(sys.__stderr__)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(_ServerRecordsOnly())
    root = logging.getLogger()
    with _setup_lock:
        for old in [h for h in root.handlers if isinstance(h, _ServerHandler)]:
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(level)
    return handler


def init_app(app: Any) -> None:
    """Answer every request's id in its ``X-Request-Id`` header."""

    @app.after_request
    def answer_request_id(response: Any) -> Any:
        from flask import request

        response.headers.setdefault(REQUEST_ID_HEADER, request_id_of(request.environ))
        return response
