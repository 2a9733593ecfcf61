"""gunicorn settings for the web processes when metrics are on (docs/deployment.md,
"Metrics"):

    gunicorn -c python:flask_realtime.web.gunicorn_conf -k gthread -w 1 --threads 100 \\
        -b 127.0.0.1:5001 'flask_realtime.web.wsgi:app'

With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker keeps its metric values in files
there and ``/metrics`` adds up every worker's (prometheus_client's multiprocess mode).
The folder must belong to this one gunicorn (a second one scraped separately would
count the same values twice); it is emptied when gunicorn starts, so a restart begins
from zero as a single process would, and a worker's live values go when it exits.
Without the variable these hooks do nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    """Before the first worker: the folder exists and holds no old process's values."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: its live gauges are no longer counted (its counters stay)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
