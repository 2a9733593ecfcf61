"""Process jobs on RQ workers: the same child-process path as in a web process."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import (  # noqa: F401  (the fixtures)
    Process,
    WebProcess,
    client,
    finished,
    processes,
    stack_env,
    web,
    worker,
)

PROCESS_JOBS = {"FLASK_REALTIME_JOBS": "tests.process.jobs_for_process",
                "FLASK_REALTIME_ISOLATION": "process"}


def test_a_process_job_on_a_worker_streams_its_shell_output_and_a_stop_is_forced(
        web: Callable[..., WebProcess], worker: Callable[..., Process],  # noqa: F811
        client: Callable[[str], Watcher]) -> None:  # noqa: F811
    a = web(FLASK_REALTIME_RUNNER="rq", **PROCESS_JOBS)
    w = worker(**PROCESS_JOBS)
    browser = client(a.url)
    run_id = browser.call("start", {"job": "default_isolation"})["run_id"]
    assert finished(a.url, run_id)["state"] == "succeeded", w.output()
    wait_for(lambda: browser.texts(run_id) == ["from the shell"])

    stubborn = browser.call("start", {"job": "ignores_sigterm"})["run_id"]
    wait_for(lambda: "stubborn" in httpx.get(f"{a.url}/api/runs/{stubborn}/log").text,
             timeout=20)
    browser.call("stop", {"run_id": stubborn})
    assert finished(a.url, stubborn, timeout=20)["state"] == "stopped", w.output()
    crashed = browser.call("start", {"job": "segfaults"})["run_id"]
    run = finished(a.url, crashed)
    assert (run["state"], run["error"]) == ("failed", "the job's process died (SIGSEGV)")
