"""Configuration: defaults here, overridden by the instance folder and the environment.

Every setting can be given as an environment variable with the ``FLASK_REALTIME_``
prefix (``FLASK_REALTIME_RETENTION_LINES=50000``; values are parsed as JSON when they
can be). ``SECRET_KEY`` and ``REDIS_URL`` are also read without the prefix, as most
deployment tools spell them. docs/configuration.md lists every key.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Config

DEFAULTS: dict[str, Any] = {
    # Jobs: comma-separated modules whose @job functions are offered besides the built-ins.
    "JOBS": "",
    # Output
    "RETENTION_LINES": 100_000,
    "MAX_LINE_CHARS": 16_384,
    "PARTIAL_FLUSH_SECONDS": 0.1,
    "BATCH_INTERVAL_SECONDS": 0.01,
    "MAX_BATCH_CHARS": 65_536,
    "MAX_BATCH_LINES": 2_000,
    # Packets queued for one client before it counts as slow and catches up from the log.
    "MAX_CLIENT_QUEUE": 32,
    # Runs
    "STOP_GRACE_SECONDS": 2.0,
    "RUNS_PER_USER": 5,
    "RUNS_TOTAL": 50,
    # Socket.IO: largest inbound packet; origins allowed besides the page's own.
    "MAX_HTTP_BUFFER_SIZE": 64 * 1024,
    "ALLOWED_ORIGINS": [],
    # Behind a reverse proxy: how many proxies' X-Forwarded-* headers to trust (0: none).
    "PROXY_COUNT": 0,
    # Webex: unset CLIENT_ID means demo mode (the built-in Webex simulator).
    "WEBEX_BASE_URL": "https://webexapis.com/v1",
    "REDIS_URL": None,
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
    origins = config["ALLOWED_ORIGINS"]
    if isinstance(origins, str):
        config["ALLOWED_ORIGINS"] = [o.strip() for o in origins.split(",") if o.strip()]
    if "*" in config["ALLOWED_ORIGINS"]:
        raise ValueError("ALLOWED_ORIGINS must list origins; '*' would let any site connect.")
