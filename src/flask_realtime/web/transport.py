"""What reaches the app over HTTP before any handler: the Host, and Engine.IO's transport.

Two WSGI middlewares, installed by ``create_app`` inside ProxyFix (so behind nginx they
see the public Host), and a guard on Engine.IO's websocket frames
(docs/reliability.md, section 7):

* :class:`HostGuard`: a request whose Host is not one of this server's names gets 400.
  A page of a DNS-rebinding attacker talks to this server under the attacker's name,
  so Origin and Host agree and, with ``LOGIN_REQUIRED=false``, nothing else stops it.
* :class:`SocketGuard`, on ``/socket.io/``: no JSONP polling (a script tag of a
  same-site page would read the sid from it); no handshake from a script tag or an
  image (Fetch Metadata says so); and every request on a polling sid carries the
  session cookie of the request that opened the sid, so a sid alone (from a page, a
  log, a proxy) opens nothing. Polling payloads python-engineio would fail on with a
  traceback close that connection with a warning instead.
* :func:`guard_websocket_frames`: the same for websocket frames.

Such warnings come from anyone, logged in or not, so they are rate-limited
(:class:`LogBudget`). What these guards reach into in python-engineio (its sockets, its
connect handler, its websocket class) is in web/socketio_internals.py.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import ipaddress
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from werkzeug.exceptions import SecurityError
from werkzeug.http import parse_cookie
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wsgi import get_host

from .socketio_internals import (
    close_without_waiting,
    engineio_socket,
    filter_websocket_frames,
    max_decode_packets,
    max_http_buffer_size,
    on_engineio_connect,
    socket_closed,
)

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

#: Names every server answers to besides IP addresses (see :func:`host_allowed`).
LOCAL_NAMES = ("localhost",)
ENGINEIO_PATH = "/socket.io/"
#: Engine.IO packet types (protocol 4) a client may send as text: open .. noop.
PACKET_TYPES = frozenset("0123456")


class LogBudget:
    """At most ``limit`` warnings per ``period`` seconds, for input anyone can send.

    The first warning of a new period says how many were left out in the one before,
    so a flood still shows in the log, as one line a minute instead of thousands.
    """

    def __init__(self, logger: logging.Logger, limit: int = 5, period: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.limit, self.period, self.clock = logger, limit, period, clock
        self._lock = threading.Lock()
        self._started = -period
        self._logged = self._dropped = 0

    def warning(self, message: str, *args: Any) -> None:
        """Log ``message`` as a warning if the period's budget allows, else count it for the
        next period's first warning. Thread-safe."""
        with self._lock:
            now = self.clock()
            dropped = 0
            if now - self._started >= self.period:
                dropped, self._started, self._logged, self._dropped = self._dropped, now, 0, 0
            if self._logged >= self.limit:
                self._dropped += 1
                return
            self._logged += 1
        if dropped:
            message += " (%d more like it in the minute before were not logged)"
            args = (*args, dropped)
        self.logger.warning(message, *args)


def _json_error(status: str, sentence: str) -> WSGIApp:
    body = json.dumps({"error": sentence}).encode()

    def respond(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(body)))])
        return [body]

    return respond


# --- Host ----------------------------------------------------------------------------

def allowed_host_names(config: Any) -> list[str]:
    """The names this server answers to: ``localhost``, ``ALLOWED_HOSTS`` (a name with
    a leading dot also allows its subdomains), and the hosts of the public URLs the
    config names (``WEBEX_REDIRECT_URI``, ``SERVER_NAME``)."""
    names = [*LOCAL_NAMES, *config.get("ALLOWED_HOSTS", [])]
    redirect_uri = config.get("WEBEX_REDIRECT_URI")
    if redirect_uri:
        names.append(urlsplit(str(redirect_uri)).hostname or "")
    if config.get("SERVER_NAME"):
        names.append(str(config["SERVER_NAME"]))
    return [n.strip().lower() for n in names if n and n.strip()]


def host_allowed(host: str, names: Collection[str]) -> bool:
    """Whether ``host`` (``name[:port]``, any port) is an IP address or one of ``names``.

    Any IP address is fine: DNS rebinding needs a name the attacker controls, and a
    browser that sends ``Host: 192.0.2.7`` really connected to 192.0.2.7. So a server
    bound to an address (``--host 0.0.0.0`` included) answers to all of its addresses.
    """
    host = host.lower()
    if not host_is_trusted(host):  # characters and port (Werkzeug's check)
        return False
    name = host[:host.index("]") + 1] if host.startswith("[") else host.partition(":")[0]
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return host_is_trusted(host, list(names))


class HostGuard:
    """Answers 400, before any handler (Socket.IO's included), to a request whose Host
    is not one of the server's names (:func:`host_allowed`)."""

    REFUSAL = ("This server does not answer to the host name in this request. Open it "
               "by one of its own names, or ask its operator to add this name to "
               "FLASK_REALTIME_ALLOWED_HOSTS (docs/configuration.md).")

    def __init__(self, wsgi_app: WSGIApp, app: Flask) -> None:
        self.wsgi_app, self.app = wsgi_app, app
        self._names: tuple[tuple[Any, ...], list[str]] = ((), [])

    def names(self) -> list[str]:
        """From the app's config, read again when it changed (tests, ``configure_demo``)."""
        config = self.app.config
        key = (tuple(config.get("ALLOWED_HOSTS", [])), config.get("WEBEX_REDIRECT_URI"),
               config.get("SERVER_NAME"))
        if key != self._names[0]:
            self._names = (key, allowed_host_names(config))
        return self._names[1]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            host = get_host(environ)  # the Host header, else the server's own address
        except SecurityError:
            host = ""
        if not host_allowed(host, self.names()):
            return _json_error("400 BAD REQUEST", self.REFUSAL)(environ, start_response)
        return self.wsgi_app(environ, start_response)


# --- Engine.IO polling ---------------------------------------------------------------

def _session_cookie_digest(environ: dict[str, Any], cookie_name: str) -> bytes:
    """A digest of the request's session cookie (the one Flask reads: the first), or of
    nothing when it has none. Only digests are kept, not cookies."""
    value = parse_cookie(environ).get(cookie_name) or ""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


class SocketGuard:
    """Engine.IO's HTTP requests (``/socket.io/``) checked before python-engineio sees
    them; see the module's docstring. ``eio`` is the app's ``engineio.Server``."""

    def __init__(self, wsgi_app: WSGIApp, app: Flask, eio: Any, budget: LogBudget) -> None:
        self.wsgi_app, self.app, self.eio, self.budget = wsgi_app, app, eio, budget
        #: Engine.IO socket -> digest of the session cookie that opened it (gone with it).
        self.opened_by: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
        on_engineio_connect(eio, self._opened)

    def _opened(self, socket: Any, environ: dict[str, Any]) -> None:
        self.opened_by[socket] = _session_cookie_digest(environ, self.cookie_name)

    @property
    def cookie_name(self) -> str:
        return str(self.app.config["SESSION_COOKIE_NAME"])

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).startswith(ENGINEIO_PATH):
            refusal = self._refusal(environ)
            if refusal is not None:
                return refusal(environ, start_response)
            if not self.app.config["WEBSOCKET_COMPRESSION"]:
                # The offer unread, the websocket is opened without permessage-deflate
                # (simple-websocket accepts it whenever offered): its compressor and
                # decompressor were about 100 KiB of each socket's 220, and a deflate
                # of every packet (docs/performance.md, "Sockets per process").
                environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return self.wsgi_app(environ, start_response)

    def _refusal(self, environ: dict[str, Any]) -> WSGIApp | None:
        query = parse_qs(environ.get("QUERY_STRING", ""))  # as python-engineio reads it
        if "j" in query:
            return _json_error("400 BAD REQUEST", "JSONP polling is not offered: connect "
                               "with the Socket.IO client (XHR polling or websocket).")
        site = environ.get("HTTP_SEC_FETCH_SITE")
        if "HTTP_ORIGIN" not in environ and site is not None and site != "same-origin":
            # No Origin, so python-engineio checks none: a script tag, an image or a
            # link of another page. The page's own XHR polling says "same-origin".
            return _json_error("403 FORBIDDEN", "Socket.IO connections are opened by the "
                               "console's own page, not loaded as a resource of another.")
        if "sid" not in query:
            return None  # a handshake: python-engineio checks Origin and opens it
        sid = query["sid"][0]
        socket = engineio_socket(self.eio, sid)
        if socket is None or socket_closed(socket):
            # What python-engineio answers too, without its ERROR line holding the sid.
            return _json_error("400 BAD REQUEST", "This Socket.IO session is closed or "
                               "unknown here: the client opens a new one.")
        opened_by = self.opened_by.get(socket)
        if opened_by is None or not hmac.compare_digest(
                opened_by, _session_cookie_digest(environ, self.cookie_name)):
            return _json_error("403 FORBIDDEN", "This Socket.IO session belongs to "
                               "another login session: reload the page to open your own.")
        if environ.get("REQUEST_METHOD") == "POST":
            problem = self._read_payload(environ)
            if problem is not None:
                self.budget.warning("closed an Engine.IO connection from %s that sent %s",
                                    environ.get("REMOTE_ADDR", "?"), problem)
                # Not eio.disconnect(sid): that waits until a poll has taken the close
                # packet, and this client may have no poll open. Its next one gets it.
                close_without_waiting(self.eio, socket)
                return _json_error("400 BAD REQUEST", "The Socket.IO payload could not be "
                                   "read: this connection is closed.")
        return None

    def _read_payload(self, environ: dict[str, Any]) -> str | None:
        """Read a polling POST's body (put back for python-engineio); what is wrong with
        it, or None. python-engineio logs a traceback (twice) for each of these."""
        raw_length = environ.get("CONTENT_LENGTH") or "0"
        if not raw_length.isdigit():
            return "an unreadable Content-Length"
        length = int(raw_length)
        if length > max_http_buffer_size(self.eio):
            return None  # python-engineio refuses it, quietly
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "a payload that is not UTF-8"
        if not text:
            return None
        packets = text.split("\x1e")
        if len(packets) > max_decode_packets():
            return f"a payload of {len(packets)} packets"
        if not all(_is_text_packet(p) for p in packets):
            return "an undecodable packet"
        return None


def _is_text_packet(packet: str) -> bool:
    """Whether python-engineio decodes ``packet`` without raising: a packet type digit
    first. (``b`` + base64, a binary packet, is refused too: nothing here takes binary.)
    """
    return bool(packet) and packet[0] in PACKET_TYPES


def guard_websocket_frames(eio: Any, budget: LogBudget) -> None:
    """Close, with a rate-limited warning, a websocket that sends a text frame
    python-engineio cannot decode (empty, or not starting with a packet type): its
    handler would raise out of the connection and the server log a traceback."""

    def refuse(frame: str, remote: str) -> bool:
        if _is_text_packet(frame):
            return False
        budget.warning("closed an Engine.IO connection from %s that sent %s", remote,
                       "an empty websocket frame" if not frame
                       else "an undecodable websocket frame")
        return True

    filter_websocket_frames(eio, refuse)


def install(app: Flask, eio: Any) -> None:
    """Wrap ``app.wsgi_app`` (Flask-SocketIO's middleware by now) in the guards above;
    ProxyFix, when on, goes around them afterwards."""
    budget = LogBudget(log)  # one for the process's Engine.IO trouble, whoever causes it
    guard_websocket_frames(eio, budget)
    app.wsgi_app = SocketGuard(app.wsgi_app, app, eio, budget)  # type: ignore[method-assign]
    app.wsgi_app = HostGuard(app.wsgi_app, app)  # type: ignore[method-assign]
