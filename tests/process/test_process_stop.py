"""Stop always works on a process job: politely, else SIGTERM, else SIGKILL."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.core.conftest import Core


def started(core: Core, job: str, first_line: str) -> str:
    run = core.service.start("u", job)
    wait_for(lambda: first_line in core.texts(run.id))
    return run.id


def test_a_job_that_watches_running_stops_by_itself(core: Core) -> None:
    run_id = started(core, "obeys_stop", "waiting")
    core.service.stop("u", run_id)
    done = core.finished(run_id)
    assert (done.state, done.result) == ("stopped", "stopped politely")
    assert core.texts(run_id)[-2:] == ["Stop requested.", "saw the stop"]


def test_a_job_that_ignores_running_is_ended_with_sigterm(core: Core) -> None:
    run_id = started(core, "ignores_stop", "busy")
    core.service.stop("u", run_id)
    done = core.finished(run_id)
    assert done.state == "stopped"
    assert core.texts(run_id, "system")[-1] == (
        "The job did not return within 0.3 s of Stop: its process group was ended with "
        "SIGTERM.")


def test_a_job_that_ignores_sigterm_too_is_ended_with_sigkill(core: Core) -> None:
    run_id = started(core, "ignores_sigterm", "stubborn")
    core.service.stop("u", run_id)
    done = core.finished(run_id, timeout=15)
    assert done.state == "stopped"
    assert core.texts(run_id, "system")[-1].endswith("ended with SIGKILL.")


def test_a_stop_asked_through_the_store_reaches_the_process(core: Core) -> None:
    run_id = started(core, "obeys_stop", "waiting")
    core.store.request_stop(run_id)  # as another web process does, with Redis
    assert core.finished(run_id).state == "stopped"
