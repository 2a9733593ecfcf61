"""Configuration: defaults here, overridden by the environment, the Webex integration's
env file and (tests only) a test config; every value checked before the server starts.

Every setting can be given as an environment variable with the ``FLASK_REALTIME_``
prefix (``FLASK_REALTIME_RETENTION_LINES=50000``; values are parsed as JSON when they
can be). ``SECRET_KEY`` and ``REDIS_URL`` are also read without the prefix, as most
deployment tools spell them, and so are the Webex integration's ``CLIENT_ID``,
``CLIENT_SECRET``, ``REDIRECT_URI`` and ``SCOPE``, which a ``webexintegration.env`` file
may also hold (docs/auth.md). docs/configuration.md lists every key.

:func:`load` records where each value came from (:func:`source`), so that a value a
setting does not accept stops the start with one sentence naming the setting as the
user spelled it (``FLASK_REALTIME_RETENTION_LINES is 'abc', but it must be a whole
number of at least 1, or unset``): :class:`ConfigError`, which ``flask-realtime``
prints without a traceback. Other ``FLASK_REALTIME_*`` variables (Flask's own
settings, such as ``SESSION_COOKIE_SECURE``) are passed through unchecked.

Nothing here imports Flask: the core raises :class:`ConfigError` too (a job module
that cannot be loaded).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

DEFAULTS: dict[str, Any] = {
    # Jobs: comma-separated modules whose @job functions are offered besides the built-ins.
    "JOBS": "",
    # Where runs, output, sessions and tokens live without REDIS_URL: "sqlite" (a database
    # in the instance folder, kept across restarts) or "memory" (lost when the process ends).
    "STORE": "sqlite",
    # Output. Lines kept per run (the newest); None: 100,000 in memory and Redis, no line
    # cap in SQLite, where RETENTION_BYTES bounds each run's stored output instead.
    "RETENTION_LINES": None,
    "RETENTION_BYTES": 1 << 30,
    # SQLite: all runs' stored output; past it the oldest finished runs' output goes
    # first (with a warning in the log). None: no budget but the disk's.
    "DISK_BUDGET_BYTES": None,
    "MAX_LINE_CHARS": 16_384,
    "PARTIAL_FLUSH_SECONDS": 0.1,
    "BATCH_INTERVAL_SECONDS": 0.01,
    # A run printing over 100,000 lines/s pauses this long per batch while other runs
    # share the process (core/capture.py); 0: never.
    "FLOOD_GIVE_WAY_SECONDS": 0.005,
    "MAX_BATCH_CHARS": 65_536,
    "MAX_BATCH_LINES": 2_000,
    # Packets queued for one client before it counts as slow and catches up from the log.
    "MAX_CLIENT_QUEUE": 32,
    # Whether websockets may use permessage-deflate when the browser offers it: less
    # traffic, about 100 KiB more memory and more CPU a socket (docs/configuration.md).
    "WEBSOCKET_COMPRESSION": False,
    # Whether a packet for a websocket is written by the thread that sends it when
    # nothing is queued ahead of it, instead of by the socket's writer thread
    # (web/socketio_internals.py write_through; docs/configuration.md).
    "WEBSOCKET_WRITE_THROUGH": True,
    # Runs
    "STOP_GRACE_SECONDS": 2.0,
    # SIGTERM: how long a web process's runs, or an RQ worker's current run, may take to
    # end before they are asked to stop and then failed; keep it (plus STOP_GRACE_SECONDS)
    # below the time the process manager waits before SIGKILL (docs/deployment.md).
    "SHUTDOWN_GRACE_SECONDS": 8.0,
    "RUNS_PER_USER": 5,
    "RUNS_TOTAL": 50,
    # Runs kept per user (the newest); older finished runs and their output are deleted.
    "HISTORY_RUNS": 200,
    # Socket.IO: largest inbound packet; origins allowed besides the page's own.
    "MAX_HTTP_BUFFER_SIZE": 64 * 1024,
    "ALLOWED_ORIGINS": [],
    # Host names the server answers to besides localhost and any IP address (comma-
    # separated; ".example.com" also allows its subdomains); the host of REDIRECT_URI is
    # added. Any other Host gets 400 (DNS rebinding).
    "ALLOWED_HOSTS": [],
    # Behind a reverse proxy: how many proxies' X-Forwarded-* headers to trust (0: none).
    "PROXY_COUNT": 0,
    # Webex: unset CLIENT_ID means demo mode (the built-in Webex simulator).
    "WEBEX_BASE_URL": "https://webexapis.com/v1",
    # Login with Webex (docs/auth.md). Also read without the prefix and without WEBEX_
    # (CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SCOPE), and from webexintegration.env.
    "WEBEX_CLIENT_ID": None,
    "WEBEX_CLIENT_SECRET": None,
    "WEBEX_REDIRECT_URI": None,
    "WEBEX_SCOPE": None,
    # None: ./webexintegration.env, else the instance folder's; "" reads no file.
    "WEBEX_ENV_FILE": None,
    "DEMO_MODE": False,
    # None: required whenever an integration or demo mode is configured.
    "LOGIN_REQUIRED": None,
    # Comma-separated Fernet keys (the first encrypts); unset: derived from SECRET_KEY.
    "TOKEN_ENCRYPTION_KEY": None,
    "TOKEN_REFRESH_MARGIN_SECONDS": 60,
    "REDIS_URL": None,
    # Redis: all runs' stored (compressed) output; past it the oldest finished runs'
    # output goes first (their records stay; a warning in the log). None: no budget.
    "REDIS_OUTPUT_BUDGET_BYTES": None,
    # GIL switch interval of server processes (web/app.py apply_switch_interval); 0: Python's.
    "SWITCH_INTERVAL_SECONDS": 0.0005,
    # ... and while a run floods and other runs share the process; 0: no change.
    "FLOOD_SWITCH_INTERVAL_SECONDS": 0.0002,
    # Production (web/wsgi.py's servers): SECRET_KEY must be given, never generated.
    "PRODUCTION": False,
    # The instance folder (secret key, SQLite store, webexintegration.env); None: Flask's.
    # Read before the app exists (instance_path below).
    "INSTANCE_PATH": None,
    # Where runs execute: "thread" (in the web process) or "rq" (on flask-realtime workers).
    "RUNNER": "thread",
    # RQ: a run no worker has taken after this many seconds is dropped from the queue
    # and fails.
    "QUEUE_TTL_SECONDS": 24 * 3600,
    # Operations (docs/deployment.md): /metrics in Prometheus's format, answered only
    # to "Authorization: Bearer <METRICS_TOKEN>" (required when METRICS is on); the
    # server's log as plain text or one JSON object per line.
    "METRICS": False,
    "METRICS_TOKEN": None,
    "LOG_FORMAT": "text",
    # Jobs in their own process (docs/jobs.md, "Isolation and limits"): where a job runs
    # unless it says (@job(isolation=...)): "thread" (in the server process) or "process".
    "ISOLATION": "thread",
    # Each run's limits unless its job sets its own; 0: none. Memory (MiB of address
    # space) and CPU seconds apply to process jobs only.
    "JOB_TIMEOUT_SECONDS": 0.0,
    "JOB_MEMORY_MB": 0,
    "JOB_CPU_SECONDS": 0,
    "JOB_OUTPUT_BYTES": 0,
    # Input (docs/jobs.md, "Input"): the most UTF-8 bytes one send may hold (HTTP or
    # Socket.IO; a Socket.IO packet is bounded by MAX_HTTP_BUFFER_SIZE as well), and the
    # most a run may hold unread.
    "INPUT_MAX_BYTES": 16 * 1024,
    "INPUT_MAX_QUEUED_BYTES": 1 << 20,
    # Command jobs (docs/jobs.md, "Command jobs"): a TOML file of executables offered as
    # jobs, relative to the working directory; "" for none.
    "COMMANDS": "",
    # Schedules (docs/schedules.md): whether web processes fire them; schedules a user may
    # have; the shortest interval; the longest the scheduler sleeps; a fire later than
    # SCHEDULE_LATE_SECONDS counts as missed; threads starting the runs of one round.
    "SCHEDULER": True,
    "SCHEDULES_PER_USER": 50,
    "SCHEDULE_MIN_INTERVAL_SECONDS": 60,
    "SCHEDULE_TICK_SECONDS": 1.0,
    "SCHEDULE_LATE_SECONDS": 60.0,
    "SCHEDULE_WORKERS": 4,
    # Notifications (docs/notifications.md). The Webex bot that sends each user a direct
    # message (also read as WEBEX_BOT_TOKEN); without it, messages go into a space the
    # user picks, with their own login.
    "WEBEX_BOT_TOKEN": None,
    # The server's address as users reach it (https://realtime.example.com): the base of
    # the links to runs in messages; None: the origin of REDIRECT_URI, else no link.
    "PUBLIC_URL": None,
    # Networks (CIDR) a webhook may reach although they are private, loopback or
    # link-local (refused by default: SSRF).
    "NOTIFY_WEBHOOK_ALLOWED_NETWORKS": [],
    # Tries of one delivery (the first included), the wait before the second (doubled
    # each time, at most 5 minutes), each try's HTTP timeout.
    "NOTIFY_ATTEMPTS": 5,
    "NOTIFY_BACKOFF_SECONDS": 2.0,
    "NOTIFY_TIMEOUT_SECONDS": 10.0,
    # Deliveries waiting at most (more are recorded failed), and the threads sending them.
    "NOTIFY_QUEUE_SIZE": 1000,
    "NOTIFY_WORKERS": 2,
    # Access (docs/access.md). Who may log in: users whose e-mail address is at one of
    # these domains, and (both set: and) whose Webex organisation is one of these ids;
    # empty: anyone Webex logs in.
    "ALLOWED_EMAIL_DOMAINS": [],
    "ALLOWED_WEBEX_ORGS": [],
    # E-mail addresses of the admins: every user's runs, their live output, Stop, the audit.
    "ADMIN_USERS": [],
    # Groups a job's allowed= may name: {"ops": ["alice@example.com", "@example.com"]}
    # (JSON), or "ops = alice@example.com bob@example.com; dev = @example.com".
    "JOB_GROUPS": None,
    # The audit trail keeps entries this many days, and at most this many (None: no limit).
    "AUDIT_RETENTION_DAYS": 90,
    "AUDIT_RETENTION_ENTRIES": 100_000,
    # Files (docs/jobs.md): the largest file a start may upload for a job's file
    # parameter, and the bytes of artifacts one run may keep.
    "MAX_UPLOAD_BYTES": 10 * 1024 * 1024,
    "ARTIFACT_BUDGET_BYTES": 50 * 1024 * 1024,
}

class ConfigError(ValueError):
    """Configuration the user must fix before the server can start: a setting's value,
    a job module, a store that cannot be opened. The message is one sentence naming
    what to fix (a setting as the user spelled it) and what would be accepted."""


PREFIX = "FLASK_REALTIME_"
#: Read from the environment without the prefix as well (the prefixed name wins).
UNPREFIXED = ("SECRET_KEY", "REDIS_URL", "WEBEX_BOT_TOKEN")
#: ``FLASK_REALTIME_*`` variables that belong to the ``flask-realtime`` command, not to
#: the app: FLASK_REALTIME_DEBUG shows startup tracebacks and must not turn on Flask's
#: debug mode; PORT and HOST are ``run``'s --port and --host.
COMMAND_ONLY = ("DEBUG", "PORT", "HOST")
#: The key of the config under which :func:`load` leaves every setting's :class:`Source`.
SOURCES_KEY = "SETTING_SOURCES"


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from, and the setting's name as it was spelled there.

    ``str()`` is how an error names the setting: ``FLASK_REALTIME_RETENTION_LINES``,
    ``CLIENT_ID in /srv/webexintegration.env``, ``RUNS_TOTAL (test config)``.
    """

    kind: Literal["default", "environment", "file", "test config"]
    name: str
    path: str | None = None

    def __str__(self) -> str:
        if self.kind == "environment":
            return self.name
        if self.kind == "file":
            return f"{self.name} in {self.path}"
        return f"{self.name} ({self.kind})"

    @property
    def given(self) -> bool:
        """Whether the user set it (anywhere), rather than leaving the default."""
        return self.kind != "default"


@dataclass(frozen=True)
class Check:
    """How a setting's value is read: ``convert`` returns the value to use or raises
    ValueError; ``accepts`` ends the sentence "..., but it must be <accepts>." ``text``
    settings keep an environment value as typed unless it is a JSON string, so that
    ``CLIENT_ID=12345`` stays the string it is."""

    accepts: str
    convert: Callable[[Any], Any]
    text: bool = False


def whole(minimum: int = 0) -> Check:
    """A whole number of at least ``minimum``; a float without a fraction is taken."""
    def convert(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError
        return value
    return Check(f"a whole number of at least {minimum}", convert)


def number(minimum: float = 0.0) -> Check:
    """A number of at least ``minimum`` (seconds, mostly), as a float."""
    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                minimum <= value < float("inf")):
            raise ValueError
        return float(value)
    return Check(f"a number of at least {minimum:g}", convert)


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str | int) else None
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)  # a copy: the default's list is shared by every app
    raise ValueError


def _domains(value: Any) -> list[str]:
    domains = [d.strip().lower().removeprefix("@") for d in _names(value)]
    if not all(d and "." in d and not set(d) & set("@ /\\") for d in domains):
        raise ValueError
    return domains


def _emails(value: Any) -> list[str]:
    emails = [e.strip().lower() for e in _names(value)]
    if not all(e.count("@") == 1 and e.split("@")[0] and "." in e.split("@")[1]
               and " " not in e for e in emails):
        raise ValueError
    return emails


def _groups(value: Any) -> dict[str, tuple[str, ...]]:
    from .core.access import AccessRuleError, parse_groups

    try:
        return parse_groups(value)
    except AccessRuleError as exc:
        raise ValueError(str(exc)) from None


BOOLEAN = Check("true or false (also yes/no, on/off, 1/0)", _boolean)
TEXT = Check("a string", _text, text=True)
NAMES = Check("a comma-separated list (or a JSON list of strings)", _names, text=True)


def one_of(*choices: str) -> Check:
    """One of ``choices``, in any case."""
    def convert(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError
    return Check(" or ".join(repr(c) for c in choices), convert, text=True)


def optional(check: Check) -> Check:
    """``check``, or None (unset)."""
    return Check(f"{check.accepts}, or unset", lambda v: None if v is None else check.convert(v),
                 text=check.text)


def _fernet_keys(value: Any) -> str:
    from cryptography.fernet import Fernet

    keys = [key.strip() for key in _text(value).split(",") if key.strip()]
    for key in keys:
        Fernet(key)  # ValueError for anything that is not a key
    if not keys:
        raise ValueError
    return str(value)


#: The settings whose type their default does not tell (None, or a narrower range).
#: Every other setting is read as its default's type: a bool as :data:`BOOLEAN`, an
#: int as a whole number of at least 0, a float as a number of at least 0, a string
#: as :data:`TEXT` and a list as :data:`NAMES`.
CHECKS: dict[str, Check] = {
    "JOBS": NAMES,
    "STORE": one_of("sqlite", "memory"),
    "RUNNER": one_of("thread", "rq"),
    "RETENTION_LINES": optional(whole(1)),
    "RETENTION_BYTES": whole(1),
    "DISK_BUDGET_BYTES": optional(whole(1)),
    "MAX_LINE_CHARS": whole(1),
    "MAX_BATCH_CHARS": whole(1),
    "MAX_BATCH_LINES": whole(1),
    "MAX_HTTP_BUFFER_SIZE": whole(1),
    "RUNS_PER_USER": whole(1),
    "RUNS_TOTAL": whole(1),
    "WEBEX_CLIENT_ID": optional(TEXT),
    "WEBEX_CLIENT_SECRET": optional(TEXT),
    "WEBEX_REDIRECT_URI": optional(TEXT),
    "WEBEX_SCOPE": optional(TEXT),
    "WEBEX_ENV_FILE": optional(TEXT),
    "LOGIN_REQUIRED": optional(BOOLEAN),
    "TOKEN_ENCRYPTION_KEY": optional(Check(
        "comma-separated Fernet keys (make one with: python -c 'from cryptography.fernet "
        "import Fernet; print(Fernet.generate_key().decode())')", _fernet_keys, text=True)),
    "REDIS_URL": optional(TEXT),
    "REDIS_OUTPUT_BUDGET_BYTES": optional(whole(1)),
    "INSTANCE_PATH": optional(TEXT),
    "SECRET_KEY": optional(TEXT),
    "METRICS_TOKEN": optional(TEXT),
    "LOG_FORMAT": one_of("text", "json"),
    "ISOLATION": one_of("thread", "process"),
    "INPUT_MAX_BYTES": whole(1),
    "INPUT_MAX_QUEUED_BYTES": whole(1),
    "SCHEDULES_PER_USER": whole(1),
    "SCHEDULE_MIN_INTERVAL_SECONDS": whole(1),
    "SCHEDULE_WORKERS": whole(1),
    "SCHEDULE_TICK_SECONDS": number(0.01),
    "WEBEX_BOT_TOKEN": optional(TEXT),
    "PUBLIC_URL": optional(Check("an http:// or https:// URL", lambda v: _public_url(v),
                                 text=True)),
    "NOTIFY_WEBHOOK_ALLOWED_NETWORKS": Check(
        "a comma-separated list of networks such as 10.1.0.0/16 or ::1/128",
        lambda v: _networks(v), text=True),
    "NOTIFY_ATTEMPTS": whole(1),
    "NOTIFY_QUEUE_SIZE": whole(1),
    "NOTIFY_WORKERS": whole(1),
    "ALLOWED_EMAIL_DOMAINS": Check("a comma-separated list of domains (example.com)",
                                   _domains, text=True),
    "ADMIN_USERS": Check("a comma-separated list of e-mail addresses", _emails, text=True),
    "JOB_GROUPS": Check('groups of members, as JSON {"ops": ["alice@example.com", '
                        '"@example.com"]} or as text ops = alice@example.com '
                        "bob@example.com; dev = @example.com", _groups),
    "AUDIT_RETENTION_DAYS": optional(whole(1)),
    "AUDIT_RETENTION_ENTRIES": optional(whole(1)),
    "MAX_UPLOAD_BYTES": whole(1),
    "ARTIFACT_BUDGET_BYTES": whole(1),
}


def _public_url(value: Any) -> str | None:
    from urllib.parse import urlsplit

    if value == "":
        return None  # empty counts as unset (a Compose override cannot remove it)
    parts = urlsplit(_text(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError
    return value.rstrip("/")


def _networks(value: Any) -> list[str]:
    import ipaddress

    names = _names(value)
    for name in names:
        ipaddress.ip_network(name, strict=False)  # ValueError for anything else
    return names


def check_for(key: str) -> Check:
    """How ``key`` is read: from :data:`CHECKS`, else from its default's type."""
    if key in CHECKS:
        return CHECKS[key]
    default = DEFAULTS[key]
    if isinstance(default, bool):
        return BOOLEAN
    if isinstance(default, int):
        return whole(0)
    if isinstance(default, float):
        return number(0)
    if isinstance(default, str):
        return TEXT
    if isinstance(default, list):
        return NAMES
    # A setting whose default (None) tells no type and that CHECKS forgot: taken as
    # given, and tests/auth/test_config.py fails until it gets its check.
    return Check("", lambda value: value)


def instance_path(test_config: Mapping[str, Any] | None = None) -> str | None:
    """The instance folder, needed before the app (and :func:`load`) exists: the test
    config's ``INSTANCE_PATH``, else ``FLASK_REALTIME_INSTANCE_PATH``, else None (Flask's)."""
    if test_config and test_config.get("INSTANCE_PATH"):
        return str(test_config["INSTANCE_PATH"])
    return os.environ.get(PREFIX + "INSTANCE_PATH") or None


def load(config: MutableMapping[str, Any], test_config: Mapping[str, Any] | None = None) -> None:
    """Fill ``config``: defaults, then the environment, then ``test_config`` (tests only),
    then the Webex integration (:func:`_load_integration`); convert every known setting
    to its type and record where each came from (:func:`source`).

    Raise :class:`ConfigError` naming the setting as the user spelled it when a value is
    not one it accepts, or when settings contradict each other.
    """
    sources: dict[str, Source] = {}
    raw: dict[str, str] = {}  # environment values as typed
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)
        sources[key] = Source("default", key)
    for key in UNPREFIXED:
        if os.environ.get(key):
            config[key] = raw[key] = os.environ[key]
            sources[key] = Source("environment", key)
    for name in sorted(os.environ):
        key = name.removeprefix(PREFIX)
        if key == name or key in COMMAND_ONLY:
            continue
        raw[key] = os.environ[name]
        config[key] = _parse(raw[key])
        sources[key] = Source("environment", name)
    for key, value in (test_config or {}).items():
        config[key] = value
        sources[key] = Source("test config", key)
        raw.pop(key, None)
    for key in [*DEFAULTS, "SECRET_KEY"]:
        if key in config:
            config[key] = _checked(key, config[key], sources.get(key), raw.get(key))
    config[SOURCES_KEY] = sources
    if config["RUNNER"] == "rq" and not config.get("REDIS_URL"):
        raise ConfigError(f"{sources['RUNNER']} is \"rq\" but REDIS_URL is not set: RQ "
                          "workers take their jobs from Redis (docs/scale-out.md).")
    if config["METRICS"] and not config["METRICS_TOKEN"]:
        raise ConfigError(f"{sources['METRICS']} is on but METRICS_TOKEN is not set: set "
                          "FLASK_REALTIME_METRICS_TOKEN to a long random string, the bearer "
                          "token Prometheus sends (docs/deployment.md, Metrics).")
    if "*" in config["ALLOWED_ORIGINS"]:
        raise ConfigError(f"{sources['ALLOWED_ORIGINS']} must list origins; '*' would let "
                          "any site connect.")
    _load_integration(config, sources)


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _checked(key: str, value: Any, origin: Source | None, typed: str | None) -> Any:
    """``value`` converted by ``key``'s :class:`Check`, or ConfigError naming ``origin``."""
    check = check_for(key)
    if check.text and typed is not None and not isinstance(value, str | None):
        value = typed  # CLIENT_ID=12345 is an id, not a number
    try:
        return check.convert(value)
    except ValueError:
        shown = typed if typed is not None and not isinstance(value, int | float) else value
        raise ConfigError(f"{origin or key} is {shown!r}, but it must be "
                          f"{check.accepts}.") from None


def source(config: Mapping[str, Any], key: str) -> Source:
    """Where ``config[key]`` came from. For a mapping :func:`load` did not fill (a test's
    dict), the environment is asked, as :func:`load` would have."""
    recorded = config.get(SOURCES_KEY)
    if isinstance(recorded, Mapping) and key in recorded:
        found: Source = recorded[key]
        return found
    if os.environ.get(PREFIX + key) is not None:
        return Source("environment", PREFIX + key)
    if key in UNPREFIXED and os.environ.get(key):
        return Source("environment", key)
    return Source("default", key)


def given(config: Mapping[str, Any], key: str) -> bool:
    """Whether the user set ``key`` (environment, file or test config), not its default."""
    return source(config, key).given


#: The integration's settings as the 2019 seed's webexintegration.env names them.
INTEGRATION_KEYS = {"CLIENT_ID": "WEBEX_CLIENT_ID", "CLIENT_SECRET": "WEBEX_CLIENT_SECRET",
                    "REDIRECT_URI": "WEBEX_REDIRECT_URI", "SCOPE": "WEBEX_SCOPE"}
DEFAULT_SCOPE = "spark:all spark:kms"
ENV_FILE_NAME = "webexintegration.env"


def _load_integration(config: MutableMapping[str, Any], sources: dict[str, Source]) -> None:
    """Webex integration settings: config, then unprefixed environment, then the env file.

    A half-configured integration stops here, with what is missing, rather than
    failing later at the first login.
    """
    path = _env_file(config, sources)
    from_file = read_env_file(path)
    for short, key in INTEGRATION_KEYS.items():
        if config.get(key):
            continue
        if os.environ.get(short):
            config[key], sources[key] = os.environ[short], Source("environment", short)
        elif from_file.get(short):
            config[key], sources[key] = from_file[short], Source("file", short, str(path))
        else:
            config[key] = None
    config["WEBEX_SCOPE"] = config["WEBEX_SCOPE"] or DEFAULT_SCOPE
    required = ("CLIENT_ID", "CLIENT_SECRET") if config.get("DEMO_MODE") else (
        "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI")
    present = [short for short in required if config.get(INTEGRATION_KEYS[short])]
    missing = [short for short in required if short not in present]
    if present and missing:
        raise ConfigError(
            f"The Webex integration is only half configured: {' and '.join(present)} "
            f"{'is' if len(present) == 1 else 'are'} set but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing. Set "
            f"{' and '.join(missing)} in {ENV_FILE_NAME} or the environment "
            "(docs/auth.md), or remove the others to run without Webex.")
    redirect_uri = config.get("WEBEX_REDIRECT_URI")
    if redirect_uri and not str(redirect_uri).rstrip("/").endswith("/redirect"):
        raise ConfigError(
            f"{sources['WEBEX_REDIRECT_URI']} is {redirect_uri!r}, but the app answers the "
            "login callback at /redirect: register and set a URI ending in /redirect, such as "
            "http://localhost:5000/redirect.")
    if config.get("LOGIN_REQUIRED") is None:
        config["LOGIN_REQUIRED"] = bool(config.get("WEBEX_CLIENT_ID") or config.get("DEMO_MODE"))


def _env_file(config: Mapping[str, Any], sources: Mapping[str, Source]) -> Path | None:
    setting = config.get("WEBEX_ENV_FILE")
    if setting == "":
        return None
    if setting is not None:
        path = Path(setting)
        if not path.is_file():
            name = sources["WEBEX_ENV_FILE"]
            raise ConfigError(f"{name} is {setting!r}, which is not a file: create it from "
                              f"{ENV_FILE_NAME}.template or unset {name.name}.")
        return path
    # A Flask config's root_path is the instance folder (instance_relative_config).
    instance = getattr(config, "root_path", None)
    for folder in (Path.cwd(), *([Path(instance)] if instance else [])):
        path = folder / ENV_FILE_NAME
        if path.is_file():
            return path
    return None


def read_env_file(path: Path | None) -> dict[str, str]:
    """``NAME=value`` lines; blank lines and ``#`` comments are skipped, quotes removed."""
    if path is None:
        return {}
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{path}, line {number}: expected NAME=value, found {line!r}.")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values
