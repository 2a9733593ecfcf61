"""The package's gunicorn settings with ``threading.stack_size`` set to BENCH_STACK_KIB
KiB in the worker before it starts any thread (bench/sockets.py --stack-kib)."""

from __future__ import annotations

import os
import threading
from typing import Any

from flask_realtime.web.gunicorn_conf import *  # noqa: F403


def post_fork(server: Any, worker: Any) -> None:
    """Before the worker's thread pool and the app's threads exist."""
    threading.stack_size(int(os.environ["BENCH_STACK_KIB"]) * 1024)
