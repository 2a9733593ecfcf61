"""gunicorn settings for the web processes: graceful shutdown (docs/deployment.md,
"Graceful shutdown") and metrics ("Metrics"):

    gunicorn -c python:flask_realtime.web.gunicorn_conf -k gthread -w 1 --threads 100 \\
        -b 127.0.0.1:5001 'flask_realtime.web.wsgi:app'

With ``PROMETHEUS_MULTIPROC_DIR`` set, each worker keeps its metric values in files
there and ``/metrics`` adds up every worker's (prometheus_client's multiprocess mode).
The folder must belong to this one gunicorn (a second one scraped separately would
count the same values twice); it is emptied when gunicorn starts, so a restart begins
from zero as a single process would, and a worker's live values go when it exits.
Without the variable the metrics hooks do nothing.

SIGTERM in a worker starts the app's graceful shutdown at once (``web.app.shutdown``:
no new starts, every socket closed so that pages reconnect through another process,
runs in threads given SHUTDOWN_GRACE_SECONDS), while gunicorn stops accepting
connections; the worker exits once it is done. ``graceful_timeout`` (how long the
master waits before SIGKILL) is set above that grace, unless given on the command line.
"""

from __future__ import annotations

import math
import os
import signal
import threading
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _graceful_timeout() -> int:
    """SHUTDOWN_GRACE_SECONDS and STOP_GRACE_SECONDS as configured, and 5 s to close."""
    from flask_realtime import config

    settings: dict[str, Any] = {}
    try:
        config.load(settings)
    except config.ConfigError:
        settings = dict(config.DEFAULTS)  # the worker says what is wrong when it loads
    return math.ceil(float(settings["SHUTDOWN_GRACE_SECONDS"])
                     + float(settings["STOP_GRACE_SECONDS"])) + 5


graceful_timeout = _graceful_timeout()
_shutdowns: dict[int, threading.Thread] = {}  # this worker's, by pid (one at most)


def _shutdown(worker: Any) -> threading.Thread | None:
    """The thread running the app's shutdown in this worker, started on first call;
    None when the worker has no app of ours (it failed to load)."""
    app = getattr(worker, "wsgi", None)
    if "flask_realtime" not in getattr(app, "extensions", {}):
        return None
    thread = _shutdowns.get(os.getpid())
    if thread is None:
        from flask_realtime.web.app import shutdown

        thread = threading.Thread(target=shutdown, args=(app,), name="flask-realtime-shutdown")
        _shutdowns[os.getpid()] = thread
        thread.start()
    return thread


def post_worker_init(worker: Any) -> None:
    """SIGTERM starts the app's shutdown too, then gunicorn's own (handle_exit)."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        _shutdown(worker)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn has it: requests go on


def worker_exit(server: Any, worker: Any) -> None:
    """The worker's loop has ended: wait for the app's shutdown (started now if no
    SIGTERM came: runs are failed, never left running)."""
    thread = _shutdown(worker)
    if thread is not None:
        thread.join()


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
