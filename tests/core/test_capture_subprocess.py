"""A child process's output is all in the run before what the job prints next."""

from __future__ import annotations

import subprocess

from flask_realtime.core.capture.hooks import SUBPROCESS_DRAIN_SECONDS
from flask_realtime.core.jobs import Running, job

from .conftest import Core

#: When the child's own child writes, after the child has exited: well within the drain.
LATE_SECONDS = SUBPROCESS_DRAIN_SECONDS / 8
#: The child exits at once; what it started still holds its stdout and writes later.
CHILD = ["sh", "-c", f"echo early; (sleep {LATE_SECONDS}; echo late) &"]


def test_output_written_after_the_child_exited_comes_before_the_jobs_next_line(
        core: Core) -> None:
    @job(registry=core.registry)
    def shell(running: Running) -> None:
        subprocess.run(CHILD, check=True)
        print("after the child")

    run = core.service.start("u", "shell")
    assert core.finished(run.id).state == "succeeded"
    assert core.texts(run.id, "stdout") == ["early", "late", "after the child"]
