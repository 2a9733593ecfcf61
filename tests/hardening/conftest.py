"""Hardening tests: a live server whose every log record and thread crash is kept.

``server_problems`` collects what an operator would see as a server fault: log records
at ERROR or above, any record with a traceback, and exceptions that ended a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

JOBS = "tests.jobs_for_tests,tests.hardening.jobs_for_hardening"


@pytest.fixture
def app_config(tmp_path: Any) -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "STOP_GRACE_SECONDS": 0.5,
            "JOBS": JOBS, "WEBEX_ENV_FILE": "", "LOGIN_REQUIRED": False}


class ServerProblems(logging.Handler):
    """Log records and thread crashes that mean something in the server went wrong."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.thread_errors: list[str] = []
        self.all: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.all.append(record)
        if record.name == "werkzeug" and "code 400, message Bad" in record.getMessage():
            # Werkzeug's development server reads a client's websocket close frame, sent
            # after the server closed the websocket, as a bad HTTP request (tests/conftest.py,
            # Watcher.close). Not a fault of ours, and not seen behind gunicorn.
            return
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def thread_crashed(self, args: Any) -> None:
        self.thread_errors.append(f"{args.thread}: {args.exc_type.__name__}: {args.exc_value}")

    def summary(self) -> list[str]:
        return [f"{r.name} {r.levelname}: {r.getMessage()}" for r in self.records] + \
            self.thread_errors

    def text(self) -> str:
        """Everything logged, formatted as a log file would hold it (tracebacks too)."""
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        return "\n".join(formatter.format(r) for r in self.all)


@pytest.fixture
def server_problems(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProblems]:
    problems = ServerProblems()
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(problems)
    monkeypatch.setattr(threading, "excepthook", problems.thread_crashed)
    yield problems
    root.removeHandler(problems)
    root.setLevel(old_level)
