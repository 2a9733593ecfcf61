"""The RQ adapter speaks the store's language: its keys, its error."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flask_realtime.adapters.rq import RQRunner
from flask_realtime.core.jobs import JobRegistry, RunContext, Running, job
from flask_realtime.core.ports import StoreUnavailableError
from flask_realtime.core.runs import Run
from flask_realtime.core.service import RunService
from flask_realtime.store.memory import MemoryStore
from redis import Redis
from tests.processes import free_port


def test_a_stop_deadline_is_kept_under_the_stores_prefix(redis_url: str) -> None:
    runner = RQRunner(RunService(MemoryStore(), JobRegistry()), redis_url, stop_grace=600)
    runner.stop("r1")
    with Redis.from_url(redis_url) as redis:
        assert redis.keys("*") == [b"fr:stop-deadlines"]
        assert redis.zscore("fr:stop-deadlines", "r1") is not None


def _submit(runner: RQRunner) -> None:
    registry = JobRegistry()

    @job(registry=registry)
    def noop(running: Running) -> None:
        """Does nothing."""

    run = Run(id="r1", job="noop", title="noop", user="alice", params={})
    runner.submit(run, registry.get("noop"), {}, RunContext("r1", "alice", {}))


@pytest.mark.parametrize("call", [_submit, RQRunner.reap], ids=["submit", "reap"])
def test_redis_away_is_the_stores_unavailable_error(call: Callable[[RQRunner], object]) -> None:
    service = RunService(MemoryStore(), JobRegistry())
    runner = RQRunner(service, f"redis://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        call(runner)
