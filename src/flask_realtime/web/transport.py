"""What reaches the app over HTTP before any handler: the Host.

:class:`HostGuard`, a WSGI middleware installed by ``create_app`` inside ProxyFix (so
behind nginx it sees the public Host): a request whose Host is not one of this
server's names gets 400. A page of a DNS-rebinding attacker talks to this server under
the attacker's name, so Origin and Host agree and, with ``LOGIN_REQUIRED=false``,
nothing else stops it (docs/reliability.md, section 7).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.exceptions import SecurityError
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wsgi import get_host

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

#: Names every server answers to besides IP addresses (see :func:`host_allowed`).
LOCAL_NAMES = ("localhost",)


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


def install(app: Flask) -> None:
    """Wrap ``app.wsgi_app`` (Flask-SocketIO's middleware by now) in :class:`HostGuard`;
    ProxyFix, when on, goes around it afterwards."""
    app.wsgi_app = HostGuard(app.wsgi_app, app)  # type: ignore[method-assign]
