"""The application factory."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template
from flask_socketio import SocketIO
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import WSGIRequestHandler

from .. import __version__, logs
from .. import config as settings
from ..assembly import Store, build
from ..config import DEFAULTS, ConfigError
from ..core.capture import install as install_capture
from ..core.ports import StoreUnavailableError
from ..core.system import SHUTTING_DOWN
from . import admin, api, audit, auth, csrf, events, files, preferences, schedules, transport
from .access import is_admin
from .identity import current_user
from .packets import TextPacket, guard_inbound
from .realtime import Realtime
from .sessions import StoreSessionInterface
from .socketio_imports import restore_redis
from .socketio_internals import redis_manager, share_pings, write_through
from .states import CHANNEL

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: config, store, run service, Socket.IO, HTTP routes."""
    app = Flask("flask_realtime", instance_path=settings.instance_path(test_config),
                instance_relative_config=True,
                template_folder="web/templates", static_folder="web/static")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # documented field order
    settings.load(app.config, test_config)
    _ensure_secret_key(app)
    install_capture()

    from ..jobs import builtin  # noqa: F401  (registers the built-in jobs)
    from ..webex import jobs as webex_jobs  # noqa: F401  (and the Webex jobs)

    queue: dict[str, Any] = {}
    if app.config.get("REDIS_URL"):
        restore_redis()  # python-socketio's Redis manager (web/socketio_imports.py)
        # Several web processes: state events reach every process's sockets, through
        # a manager whose client waits for a free connection (web/socketio_internals.py).
        queue["client_manager"] = redis_manager(app.config["REDIS_URL"], channel=CHANNEL,
                                                write_only=False)
    socketio = SocketIO(
        app,
        # Explicit: Flask-SocketIO picks eventlet (deprecated) when it is importable, and gevent
        # with simple-websocket corrupts frames (docs/deployment.md).
        async_mode="threading",
        cors_allowed_origins=_origin_check(app.config["ALLOWED_ORIGINS"]),
        max_http_buffer_size=app.config["MAX_HTTP_BUFFER_SIZE"],
        logger=False,
        engineio_logger=False,
        serializer=TextPacket,
        # Events run on guard_inbound's bounded pool, never on a thread each (web/packets.py).
        async_handlers=False,
        **queue,
    )
    guard_inbound(socketio.server)
    share_pings(socketio.server.eio)  # one thread for every socket's pings, not one each
    if app.config["WEBSOCKET_WRITE_THROUGH"]:
        write_through(socketio.server.eio)  # packets written by their sender when it can
    # The core's parts, as `flask-realtime exec` and `worker` get them (flask_realtime/assembly.py).
    system = build(app.config, instance_path=app.instance_path, store=_store_opener(app),
                   schedules=bool(app.config["SCHEDULER"]))
    realtime = Realtime(app, socketio, system)
    app.session_interface = StoreSessionInterface(realtime.store)
    _init_access(app, realtime)
    login = auth.init_app(app, realtime)
    csrf.init_app(app)
    files.init_app(app)  # form bodies limited before CSRF reads them (web/files.py)
    _install_notifier(app, realtime, login)
    system.start()  # after the login's services and checks: scheduled runs use them

    events.register(socketio)
    app.register_blueprint(api.bp)
    app.register_blueprint(preferences.bp)
    schedules.init_app(app, socketio, realtime)
    admin.init_app(app, realtime)
    logs.init_app(app)
    if app.config["METRICS"]:
        from . import metrics  # prometheus_client only when asked for

        metrics.init_app(app, realtime)
    _register_pages(app)
    # Outermost first: proxy headers are applied (when trusted) before the Host
    # allow-list, the Engine.IO guards and the origin check.
    transport.install(app, socketio.server.eio)
    app.wsgi_app = _nodelay(app.wsgi_app)  # type: ignore[method-assign]
    app.wsgi_app = _no_new_sockets_when_closing(  # type: ignore[method-assign]
        app.wsgi_app, realtime)
    if app.config["PROXY_COUNT"]:
        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)
    return app


def _install_notifier(app: Flask, realtime: Realtime, login: auth.Auth) -> None:
    """The notifier of the runs this process ends (docs/notifications.md): messages
    into a user's space use their login's token, webhook secrets the tokens' key."""
    from ..notify import install
    from .tokens import encryption

    notifier = install(realtime.system, app.config, fernet=encryption(app.config),
                       user_token=lambda user: login.vault.access_token(user))
    app.extensions["flask_realtime_notifier"] = notifier

def _init_access(app: Flask, realtime: Realtime) -> None:
    """Who may run which job (JOB_GROUPS, each job's ``allowed``) and the audit trail
    (docs/access.md). A job of a ``JOBS`` module naming a group JOB_GROUPS does not
    define stops the start with a sentence: the job would otherwise be hidden from
    everyone. Jobs registered in the process by other means (the process-wide registry
    keeps every module loaded, by any app of the process) only get a warning."""
    from ..core.access import JobAccess

    access = JobAccess(app.config.get("JOB_GROUPS") or {})
    unknown = access.unknown_groups(realtime.registry)
    configured = {Path(name.strip()).stem if name.strip().endswith(".py") else name.strip()
                  for name in app.config["JOBS"]}
    ours = {job: groups for job, groups in unknown.items()
            if realtime.registry.get(job).func.__module__ in configured}
    for job, groups in unknown.items():
        if job not in ours:
            log.warning("job %r allows the group %r, which JOB_GROUPS does not define: "
                        "nobody may run it", job, groups[0])
    if ours:
        job, groups = next(iter(ours.items()))
        realtime.close()
        raise ConfigError(
            f"Job {job!r} allows the group {groups[0]!r}, which "
            f"{settings.source(app.config, 'JOB_GROUPS')} does not define: add it to "
            "JOB_GROUPS (docs/access.md) or take it out of the job's allowed list.")
    realtime.service.access = access
    audit.init_app(app, realtime.store)


_shutting_down = threading.Lock()


def shutdown(app: Flask, grace: float | None = None) -> None:
    """End this web process gracefully (SIGTERM; docs/deployment.md, "Graceful
    shutdown"); the caller has stopped taking new connections first.

    Starts are refused from now on (503 and a sentence; a socket's start gets the
    sentence), every socket is closed at the Engine.IO level, so that the page
    reconnects by itself (through another process behind nginx) and resumes by seq,
    the thread runner's runs get ``grace`` seconds (SHUTDOWN_GRACE_SECONDS) to end,
    the rest end ``failed`` with "The server was shut down." and their output, then
    everything closes. Called again (atexit after the signal), it waits for the first
    call and does nothing more."""
    realtime: Realtime = app.extensions["flask_realtime"]
    with _shutting_down:
        if realtime.closing.is_set():
            return
        realtime.service.closing = SHUTTING_DOWN
        app.extensions["socketio"].server.eio.disconnect()  # every client, this process's
        realtime.system.shutdown(float(app.config["SHUTDOWN_GRACE_SECONDS"]
                                       if grace is None else grace))
        realtime.close()


def _no_new_sockets_when_closing(wsgi_app: Any, realtime: Realtime) -> Any:
    """While shutting down, a new Socket.IO connection gets 503 (nginx then tries another
    process; the page retries); the sockets open are closed by :func:`shutdown`."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if (realtime.service.closing is not None
                and environ.get("PATH_INFO", "").startswith("/socket.io")
                and "sid=" not in environ.get("QUERY_STRING", "")):
            start_response("503 Service Unavailable", [
                ("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "1")])
            return [b"This server is shutting down: connect again (another server takes it)."]
        return wsgi_app(environ, start_response)

    return app


def _store_opener(app: Flask) -> Callable[[], Store] | None:
    """With METRICS, the configured store timed (web/metrics.py) before the pump and the
    run service take its methods; else None: the configured store as it is."""
    if not app.config.get("METRICS"):
        return None
    from ..store import open_store
    from .metrics import observe_store

    return lambda: observe_store(open_store(app.config, app.instance_path))


def apply_switch_interval(app: Flask) -> None:
    """Shorten the GIL switch interval in a server process (SWITCH_INTERVAL_SECONDS), and
    shorten it further while a run floods and others share the process
    (FLOOD_SWITCH_INTERVAL_SECONDS).

    Every line crosses several threads (job, capture pump, delivery, the client's
    writer), and each hop waits for the GIL. When a job computes or prints flat out,
    a thread that blocked on I/O waits a full switch interval (5 ms by default) to get
    the GIL back at every hop: other runs' lines then took about 100 ms instead of 10
    (bench/flood.py). 0.2 ms kept them within 1.6x during a flood, but made a hundred
    ordinary runs slower than 0.5 ms did (bench/load.py), hence two settings, switched
    by the capture pump. Process-wide, so it is set by the server entry points
    (``flask-realtime run``, ``web/wsgi.py``), not by ``create_app``.
    """
    config = app.config
    interval = config.get("SWITCH_INTERVAL_SECONDS")
    if interval:
        sys.setswitchinterval(float(interval))
    usual = sys.getswitchinterval()
    flooded = config.get("FLOOD_SWITCH_INTERVAL_SECONDS")
    realtime = app.extensions.get("flask_realtime")
    if flooded and realtime is not None:
        realtime.pump.on_contention = lambda contended: sys.setswitchinterval(
            float(flooded) if contended else usual)


def check_production_settings(config: Mapping[str, Any]) -> None:
    """Refuse, in ``web/wsgi.py``, what works on one machine but not behind nginx: nobody
    logging in (unless asked for), demo mode without a shared simulator, several
    processes each with a secret key of its own."""
    if config.get("REDIS_URL") and not settings.given(config, "SECRET_KEY"):
        raise RuntimeError(
            "REDIS_URL is set but SECRET_KEY is not: give every web process and worker the "
            "same SECRET_KEY (a long random string), or sessions and tokens one process "
            "wrote are unreadable in the others.")
    if config.get("DEMO_MODE") and config["WEBEX_BASE_URL"] == DEFAULTS["WEBEX_BASE_URL"]:
        raise RuntimeError(
            "DEMO_MODE is on but WEBEX_BASE_URL is the real Webex: start `flask-realtime "
            "webex-sim` and set FLASK_REALTIME_WEBEX_BASE_URL to its URL (http://host:port/v1) "
            "and CLIENT_ID and CLIENT_SECRET to its --client-id and --client-secret "
            "(docs/deployment.md).")
    if not config.get("LOGIN_REQUIRED") and not settings.given(config, "LOGIN_REQUIRED"):
        raise RuntimeError(
            "No Webex integration is configured, so nobody would have to log in: set "
            "CLIENT_ID, CLIENT_SECRET and REDIRECT_URI (docs/auth.md), or demo mode "
            "(docs/deployment.md), or FLASK_REALTIME_LOGIN_REQUIRED=false for a server "
            "only you can reach.")


def _ensure_secret_key(app: Flask) -> None:
    """Production needs SECRET_KEY; development keeps a generated one in the instance folder."""
    if app.config.get("SECRET_KEY"):
        return
    if app.config["PRODUCTION"]:
        raise ConfigError(f"{settings.source(app.config, 'PRODUCTION')} is on but SECRET_KEY "
                          "is not set: set SECRET_KEY (a long random string).")
    path = Path(app.instance_path) / "secret_key"
    try:
        app.config["SECRET_KEY"] = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        app.config["SECRET_KEY"] = key


def _origin_check(extra: Iterable[str]) -> Callable[[str | None, dict[str, Any]], bool]:
    """Socket.IO accepts the page's own origin and the configured ones, nothing else.

    Unlike engine.io's default, this ignores ``X-Forwarded-Host`` from the client: proxy
    headers count only after ProxyFix, which is on only when PROXY_COUNT says so.
    """
    allowed = {o.rstrip("/") for o in extra}

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True  # not a browser: browsers always send Origin on websocket/XHR
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin.rstrip("/") == own or origin.rstrip("/") in allowed

    return check


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler (``flask-realtime run``), closing the connection once
    a websocket on it has ended.

    Werkzeug kept it open for a next HTTP request: a thread stayed blocked on every
    closed websocket until the client hung up, and the client's closing frame, read
    as a request, was logged at ERROR ("code 400, message Bad request syntax") once
    for every tab closed. gunicorn closes such connections itself.
    """

    def run_wsgi(self) -> None:
        """Serve the request as Werkzeug does, then close the connection if it was a
        websocket, so that no thread waits on it and its closing frame is not read as a
        request."""
        super().run_wsgi()
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.close_connection = True


def _nodelay(wsgi_app: Any) -> Any:
    """Turn Nagle off on the connection: Werkzeug leaves it on, adding up to 40 ms a batch."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return wsgi_app(environ, start_response)

    return app


def _register_pages(app: Flask) -> None:
    @app.get("/")
    def index() -> str:
        user = current_user()
        if user is None:
            return auth.login_page()  # docs/auth.md: the page asks to log in
        return render_template(
            "index.html", demo_mode=app.config.get("DEMO_MODE", False), user=user,
            login_required=bool(app.config.get("LOGIN_REQUIRED")), is_admin=is_admin(user),
            csrf_token=csrf.csrf_token(), version=__version__)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        realtime: Realtime = app.extensions["flask_realtime"]
        store_ok = realtime.store.healthy()
        body = {"status": "ok" if store_ok else "degraded", "store": "ok" if store_ok
                else "unavailable", "version": __version__}
        return jsonify(body), 200

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    @app.errorhandler(StoreUnavailableError)
    def store_unavailable(exc: StoreUnavailableError) -> tuple[Response, int]:
        return jsonify(error=str(exc)), 503

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.description or exc.name), exc.code or 500
