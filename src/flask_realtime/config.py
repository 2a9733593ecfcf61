"""Configuration: defaults here, overridden by the instance folder and the environment.

Every setting can be given as an environment variable with the ``FLASK_REALTIME_``
prefix (``FLASK_REALTIME_RETENTION_LINES=50000``; values are parsed as JSON when they
can be). ``SECRET_KEY`` and ``REDIS_URL`` are also read without the prefix, as most
deployment tools spell them, and so are the Webex integration's ``CLIENT_ID``,
``CLIENT_SECRET``, ``REDIRECT_URI`` and ``SCOPE``, which a ``webexintegration.env`` file
may also hold (docs/auth.md). docs/configuration.md lists every key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Config

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
    # Runs
    "STOP_GRACE_SECONDS": 2.0,
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
    # GIL switch interval of server processes (web/app.py apply_switch_interval); 0: Python's.
    "SWITCH_INTERVAL_SECONDS": 0.0005,
    # ... and while a run floods and other runs share the process; 0: no change.
    "FLOOD_SWITCH_INTERVAL_SECONDS": 0.0002,
    # Where runs execute: "thread" (in the web process) or "rq" (on flask-realtime workers).
    "RUNNER": "thread",
    # RQ: a run no worker has taken after this many seconds is dropped from the queue
    # and fails.
    "QUEUE_TTL_SECONDS": 24 * 3600,
}

UNPREFIXED = ("SECRET_KEY", "REDIS_URL")


def load(config: Config, test_config: dict[str, Any] | None = None) -> None:
    """Fill ``config``: defaults, then environment, then ``test_config`` (tests only)."""
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)
    for key in UNPREFIXED:
        if os.environ.get(key):
            config[key] = os.environ[key]
    config.from_prefixed_env("FLASK_REALTIME")
    if test_config:
        config.update(test_config)
    for key in ("ALLOWED_ORIGINS", "ALLOWED_HOSTS"):
        if isinstance(config[key], str):
            config[key] = [item.strip() for item in config[key].split(",") if item.strip()]
    if config["RUNNER"] not in ("thread", "rq"):
        raise ValueError(f"RUNNER is {config['RUNNER']!r}: use \"thread\" (jobs run in the "
                         "web process) or \"rq\" (jobs run on flask-realtime workers).")
    if config["RUNNER"] == "rq" and not config.get("REDIS_URL"):
        raise ValueError("RUNNER is \"rq\" but REDIS_URL is not set: RQ workers take their "
                         "jobs from Redis (docs/scale-out.md).")
    if "*" in config["ALLOWED_ORIGINS"]:
        raise ValueError("ALLOWED_ORIGINS must list origins; '*' would let any site connect.")
    _load_integration(config)


#: The integration's settings as the 2019 seed's webexintegration.env names them.
INTEGRATION_KEYS = {"CLIENT_ID": "WEBEX_CLIENT_ID", "CLIENT_SECRET": "WEBEX_CLIENT_SECRET",
                    "REDIRECT_URI": "WEBEX_REDIRECT_URI", "SCOPE": "WEBEX_SCOPE"}
DEFAULT_SCOPE = "spark:all spark:kms"
ENV_FILE_NAME = "webexintegration.env"


def _load_integration(config: Config) -> None:
    """Webex integration settings: config, then unprefixed environment, then the env file.

    A half-configured integration stops here, with what is missing, rather than
    failing later at the first login.
    """
    from_file = read_env_file(_env_file(config))
    for short, key in INTEGRATION_KEYS.items():
        if not config.get(key):
            config[key] = os.environ.get(short) or from_file.get(short) or None
    config["WEBEX_SCOPE"] = config["WEBEX_SCOPE"] or DEFAULT_SCOPE
    required = ("CLIENT_ID", "CLIENT_SECRET") if config.get("DEMO_MODE") else (
        "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI")
    given = [short for short in required if config.get(INTEGRATION_KEYS[short])]
    missing = [short for short in required if short not in given]
    if given and missing:
        raise ValueError(
            f"The Webex integration is only half configured: {' and '.join(given)} "
            f"{'is' if len(given) == 1 else 'are'} set but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing. Set "
            f"{' and '.join(missing)} in {ENV_FILE_NAME} or the environment "
            "(docs/auth.md), or remove the others to run without Webex.")
    redirect_uri = config.get("WEBEX_REDIRECT_URI")
    if redirect_uri and not str(redirect_uri).rstrip("/").endswith("/redirect"):
        raise ValueError(
            f"REDIRECT_URI is {redirect_uri!r}, but the app answers the login callback at "
            "/redirect: register and set a URI ending in /redirect, such as "
            "http://localhost:5000/redirect.")
    if config.get("LOGIN_REQUIRED") is None:
        config["LOGIN_REQUIRED"] = bool(config.get("WEBEX_CLIENT_ID") or config.get("DEMO_MODE"))


def _env_file(config: Config) -> Path | None:
    setting = config.get("WEBEX_ENV_FILE")
    if setting == "":
        return None
    if setting is not None:
        path = Path(setting)
        if not path.is_file():
            raise ValueError(f"WEBEX_ENV_FILE is {setting!r}, which is not a file: create it "
                             f"from {ENV_FILE_NAME}.template or unset WEBEX_ENV_FILE.")
        return path
    for path in (Path.cwd() / ENV_FILE_NAME, Path(config.root_path) / ENV_FILE_NAME):
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
            raise ValueError(f"{path}, line {number}: expected NAME=value, found {line!r}.")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values
