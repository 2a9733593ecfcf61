"""Secrets out of the request log of ``flask-realtime run`` (Werkzeug's server).

Werkzeug logs every request line, query included. Two kinds of query parameter are
worth something to whoever reads the log: the login callback's one-time ``code`` and
``state`` (``/redirect``; a code copied before Webex traded it is worth a login), and
Engine.IO's ``sid`` (``/socket.io/``; docs/reliability.md, section 7). Those are
redacted, on those paths only: ``/api/runs?state=failed`` is logged as it is.
gunicorn behind nginx logs no request lines here; nginx's access log keeps no query
string at all (deploy/nginx).
"""

from __future__ import annotations

import logging
import re

#: Query parameters redacted, by the path they arrive on.
SECRET_PARAMETERS: dict[str, frozenset[str]] = {
    "/redirect": frozenset({"code", "state"}),
    "/socket.io/": frozenset({"sid"}),
}
REDACTED = "[redacted]"

#: A request target in a log line: the path, then its query (up to a space or a quote).
_TARGET = re.compile(r"(?P<path>/[^\s?\"']*)\?(?P<query>[^\s\"']*)")


def _secret_names(path: str) -> frozenset[str]:
    for prefix, names in SECRET_PARAMETERS.items():
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return names
    return frozenset()


def _redact_target(match: re.Match[str]) -> str:
    path, query = match["path"], match["query"]
    names = _secret_names(path)
    if not names:
        return match[0]
    parts = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and name in names else part)
    return f"{path}?{'&'.join(parts)}"


def redact(text: str) -> str:
    """``text`` with the secret query parameters of every request target in it redacted."""
    return _TARGET.sub(_redact_target, text) if "?" in text else text


class RedactRequestSecrets(logging.Filter):
    """A filter for the ``werkzeug`` logger: see the module's docstring.

    Werkzeug passes the request line as an argument (``'"%s" %s %s'``), and a bad
    request's raw line as one too; both are covered, as is a message without arguments.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Let every record through, with the secret query parameters in its message and
        string arguments redacted (:func:`redact`)."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_request_log() -> None:
    """Install :class:`RedactRequestSecrets` on the ``werkzeug`` logger (once)."""
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactRequestSecrets) for f in werkzeug_log.filters):
        werkzeug_log.addFilter(RedactRequestSecrets())
