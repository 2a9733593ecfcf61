"""Stop always works on a process job: politely, else SIGTERM, else SIGKILL."""

from __future__ import annotations

from flask_realtime.core.runner import SHUTDOWN_ERROR
from flask_realtime.core.system import build, isolating_runner
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for
from tests.core.conftest import Core

from . import jobs_for_process


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


def test_a_shutdown_fails_a_process_run_and_leaves_no_process_behind() -> None:
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=MemoryStore(),
                   registry=jobs_for_process.registry, runner=isolating_runner)
    store = system.store
    run = system.service.start("u", "tells_its_pid")
    pid = int(wait_for(lambda: [t for t in texts(store, run.id) if t.isdigit()])[0])
    system.shutdown(0)
    done = store.get_run(run.id)
    assert done is not None and (done.state, done.error) == ("failed", SHUTDOWN_ERROR)
    wait_for(lambda: not alive(pid))  # its group was killed as the runner closed


def texts(store: MemoryStore, run_id: str) -> list[str]:
    return [t for _s, t, _e in store.read_output(run_id, 0).lines]


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for a parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, even while it was read
        return False
