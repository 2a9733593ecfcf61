"""A job's process that dies ends its run only: failed, saying how, output kept; the
server and the next run carry on."""

from __future__ import annotations

import pytest

from tests.core.conftest import Core


def crash_then_carry_on(core: Core, job: str, **params: object) -> tuple[str, str]:
    run = core.service.start("u", job, params)
    done = core.finished(run.id, timeout=15)
    assert done.state == "failed"
    after = core.service.start("u", "everything_writes")  # the server carries on
    assert core.finished(after.id).state == "succeeded"
    return run.id, str(done.error)


def test_a_segfault_fails_the_run_with_the_signal(core: Core) -> None:
    run_id, error = crash_then_carry_on(core, "segfaults")
    assert error == "the job's process died (SIGSEGV)"
    assert core.texts(run_id, "stdout") == ["about to crash"]
    assert core.texts(run_id, "system")[-1] == (
        "The job's process died (SIGSEGV): the run failed; the output above is what it "
        "printed.")


def test_os_exit_fails_the_run_with_the_status(core: Core) -> None:
    run_id, error = crash_then_carry_on(core, "exits", status=3)
    assert error == "the job's process exited with status 3"
    assert core.texts(run_id, "stdout") == ["leaving"]


def test_going_over_the_memory_limit_fails_the_run_naming_the_limit(core: Core) -> None:
    run_id, error = crash_then_carry_on(core, "eats_memory")
    assert error.startswith("The job went over its memory limit of 200 MiB (MemoryError")
    assert core.texts(run_id, "stdout") == ["eating"]


def test_going_over_the_cpu_limit_fails_the_run_naming_the_limit(core: Core) -> None:
    run_id, error = crash_then_carry_on(core, "spins")
    assert error.startswith("The job used more than its CPU limit of 1 s (SIGXCPU")
    assert core.texts(run_id, "stdout") == ["spinning"]


@pytest.mark.parametrize("job", ["segfaults", "exits"])
def test_a_crash_leaves_other_runs_going(core: Core, job: str) -> None:
    other = core.service.start("u", "obeys_stop")
    crash_then_carry_on(core, job)
    assert core.store.get_run(other.id).state == "running"  # type: ignore[union-attr]
    core.service.stop("u", other.id)
    assert core.finished(other.id).state == "stopped"
