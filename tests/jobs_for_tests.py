"""Jobs the tests start through the real server (loaded with JOBS=tests.jobs_for_tests)."""

from __future__ import annotations

import hashlib
import threading
import time

from flask_realtime import Running, job
from flask_realtime.core.jobs import RunContext

#: Tests set this to let ``gate`` finish.
gate_open = threading.Event()


@job
def numbers(running: Running, n: int = 5000, every: int = 100, pause: float = 0.005) -> None:
    """Print 1..n, pausing every `every` lines, so a test can act mid-run."""
    for i in range(1, n + 1):
        if not running():
            return
        print(i)
        if i % every == 0:
            time.sleep(pause)


@job
def gate(running: Running) -> None:
    """Print a line, then wait until the test opens the gate or Stop is pressed."""
    print("waiting at the gate")
    while running() and not gate_open.wait(0.02):
        pass


@job
def stubborn(running: Running, seconds: float = 60.0) -> None:
    """Ignores running(): only a forced stop ends it early (RQ work-horse kill)."""
    print("not listening", flush=True)
    time.sleep(seconds)
    print("done sleeping")


@job
async def webex_token_digest(running: Running, context: RunContext) -> str:
    """A hash of the Webex token the run's services hand out (never the token itself)."""
    token = await context.services["webex"].token_provider(False)
    return hashlib.sha256(token.encode()).hexdigest()
