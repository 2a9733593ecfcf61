"""A job in its own process: all it writes, its result, its error, as in a thread."""

from __future__ import annotations

import os

from tests.core.conftest import Core


def test_everything_the_job_and_its_children_write_is_in_the_run_in_order(core: Core) -> None:
    run = core.service.start("u", "everything_writes")
    done = core.finished(run.id)
    assert done.state == "succeeded", core.texts(run.id)
    assert core.texts(run.id, "stdout") == [
        "from print", "from os.system", "from C", "from a grandchild"]
    assert core.texts(run.id, "stderr") == ["grandchild error", "to stderr"]
    assert core.texts(run.id, "log") == ["INFO tests.process.jobs: a log record"]
    assert done.result["rows"] == [1, 2, 3]
    assert done.result["pid"] != os.getpid()  # it ran in a process of its own


def test_a_failing_job_fails_with_its_traceback_in_stderr(core: Core) -> None:
    run = core.service.start("u", "raises")
    done = core.finished(run.id)
    assert done.state == "failed"
    assert done.error == "ValueError: bad value"
    stderr = "\n".join(core.texts(run.id, "stderr"))
    assert "Traceback" in stderr and "ValueError: bad value" in stderr
    assert core.texts(run.id, "stdout") == ["before the error"]


def test_an_async_job_runs_in_its_process_too(core: Core) -> None:
    run = core.service.start("u", "async_in_process")
    done = core.finished(run.id)
    assert (done.state, done.result) == ("succeeded", "async done")
