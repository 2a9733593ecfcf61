"""Limits per job and per server: timeout (thread and process jobs), output bytes."""

from __future__ import annotations

import pytest

from flask_realtime.config import ConfigError, load
from flask_realtime.core.jobs import JobError, JobLimits
from tests.core.conftest import Core


def test_a_process_job_past_its_timeout_is_stopped_and_fails_naming_the_timeout(
        core: Core) -> None:
    run = core.service.start("u", "overstays")
    done = core.finished(run.id)
    assert (done.state, done.error) == ("failed", "The job ran longer than its timeout of 0.5 s.")
    assert core.texts(run.id, "system") == [
        "The job ran longer than its timeout of 0.5 s: it was asked to stop (running() is "
        "now False).",
        "The job did not return within 0.3 s of its timeout: its process group was ended "
        "with SIGTERM."]


def test_a_thread_job_past_its_timeout_sees_running_turn_false_and_fails(core: Core) -> None:
    run = core.service.start("u", "thread_overstays")
    done = core.finished(run.id)
    assert (done.state, done.error) == ("failed", "The job ran longer than its timeout of 0.5 s.")


def test_output_past_the_limit_is_dropped_and_fails_the_run(core: Core) -> None:
    run = core.service.start("u", "floods")
    done = core.finished(run.id)
    assert (done.state, done.error) == (
        "failed", "The job wrote more than its output limit of 10000 bytes.")
    printed = "".join(f"{t}\n" for t in core.texts(run.id, "stdout"))
    assert printed.startswith("0123456789\n") and len(printed) <= 10_000 + 1
    assert "done flooding" not in core.texts(run.id, "stdout")


def test_a_jobs_own_limit_wins_over_the_servers() -> None:
    mine = JobLimits(timeout=5)
    assert mine.over(JobLimits(timeout=60, memory_mb=512)) == JobLimits(
        timeout=5, memory_mb=512)


@pytest.mark.parametrize("bad", [{"timeout": -1}, {"memory_mb": 1.5}, {"cpu_seconds": True}])
def test_a_bad_limit_is_refused_with_a_sentence(bad: dict[str, object]) -> None:
    with pytest.raises(JobError, match="must be a number of at least 0"):
        JobLimits(**bad)  # type: ignore[arg-type]


def test_the_server_settings_are_checked() -> None:
    config: dict[str, object] = {}
    load(config, {"ISOLATION": "process", "JOB_TIMEOUT_SECONDS": 30, "JOB_MEMORY_MB": 512})
    assert (config["ISOLATION"], config["JOB_TIMEOUT_SECONDS"]) == ("process", 30.0)
    with pytest.raises(ConfigError, match="ISOLATION"):
        load({}, {"ISOLATION": "container"})
    with pytest.raises(ConfigError, match="JOB_MEMORY_MB"):
        load({}, {"JOB_MEMORY_MB": -1})


def test_a_thread_job_past_its_output_limit_is_asked_to_stop_and_fails(core: Core) -> None:
    run = core.service.start("u", "thread_floods")
    done = core.finished(run.id)
    assert (done.state, done.error) == (
        "failed", "The job wrote more than its output limit of 10000 bytes.")
    stdout = core.texts(run.id, "stdout")
    assert stdout[:3] == ["000000000", "000000001", "000000002"]
    assert len(stdout) == 1000  # 10 bytes a line: exactly the limit is kept
    assert core.texts(run.id, "system") == [
        "The job wrote more than its output limit of 10000 bytes: the rest is dropped, "
        "and it was asked to stop (running() is now False)."]
