"""A System closes what it started: after ``close()`` no thread of it is left."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading

from flask_realtime.assembly import build as assemble
from flask_realtime.core.jobs import JobRegistry, Running, job
from flask_realtime.core.system import build
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for

jobs = JobRegistry()


@job(registry=jobs)
def hello(running: Running) -> None:
    print("hello")


def threads_left(before: set[threading.Thread]) -> list[str]:
    return sorted(t.name for t in set(threading.enumerate()) - before if t.is_alive())


def assert_none_left(before: set[threading.Thread]) -> None:
    """Threads may take a moment to end after close(): poll, then name what is left."""
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not threads_left(before), timeout=10)
    assert threads_left(before) == []


def test_closing_a_system_that_ran_a_job_leaves_no_thread_behind() -> None:
    before = set(threading.enumerate())
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=MemoryStore(), registry=jobs,
                   shared=True).start()
    run = system.service.start("alice", "hello", {})
    wait_for(lambda: (r := system.store.get_run(run.id)) and r.state.finished)
    assert {"flask-realtime-capture", "flask-realtime-heartbeat",
            "flask-realtime-reaper"} <= set(threads_left(before))
    system.close()
    assert_none_left(before)


def test_closing_an_rq_system_ends_its_reapers_and_forced_stops(redis_url: str) -> None:
    before = set(threading.enumerate())
    system = assemble({"REDIS_URL": redis_url, "RUNNER": "rq", "STOP_GRACE_SECONDS": 0.01,
                       "JOBS": ""}).start()
    system.runner.stop("no-such-run")  # arms a deadline, then a forced stop
    wait_for(lambda: {"flask-realtime-stop-deadlines", "flask-realtime-reaper"}
             <= set(threads_left(before))
             and any(n.startswith("flask-realtime-force") for n in threads_left(before)))
    system.close()
    assert_none_left(before)


def test_the_assembly_needs_no_web_framework() -> None:
    code = ("import sys, flask_realtime.assembly, flask_realtime.adapters.rq\n"
            "print('\\n'.join(sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout.split()
    assert [m for m in loaded if m.split(".")[0] in (
        "flask", "flask_socketio", "socketio", "engineio", "werkzeug")] == []
