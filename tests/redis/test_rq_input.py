"""Input for a job on an RQ worker: typed into one web process, read by the work-horse
in another process through Redis; the wait and its prompt reach the page from the
worker (``state`` events), and what was typed is in the output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import Process, WebProcess, finished


def test_a_job_on_a_worker_reads_what_the_user_typed_elsewhere(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    a, b = web(FLASK_REALTIME_RUNNER="rq"), web(FLASK_REALTIME_RUNNER="rq")
    w = worker()
    browser = client(a.url)
    run_id = browser.call("start", {"job": "greet"})["run_id"]
    wait_for(lambda: any(s["id"] == run_id and s.get("waiting_input") == {
        "prompt": "Your name: ", "secret": False} for s in browser.states), timeout=30)
    other = client(b.url)  # another web process than the one that started it
    assert other.call("input", {"run_id": run_id, "text": "Ada\n"}) == {"ok": True}
    run = finished(a.url, run_id, timeout=20)
    assert run["state"] == "succeeded" and run["result"] == "Ada", w.output()
    log = httpx.get(f"{a.url}/api/runs/{run_id}/log").text
    assert "Ada\nHello, Ada!" in log


STUBBORN = '''import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(os.getpid(), flush=True)
time.sleep(120)
'''


def test_stop_on_a_worker_kills_a_command_that_ignores_sigterm(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher], tmp_path: Path) -> None:
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    (tmp_path / "jobs.toml").write_text(
        f'[jobs.deaf]\nargv = [{json.dumps(sys.executable)}, '
        f'{json.dumps(str(tmp_path / "stubborn.py"))}]\n')
    commands = {"FLASK_REALTIME_COMMANDS": str(tmp_path / "jobs.toml")}
    a = web(FLASK_REALTIME_RUNNER="rq", **commands)
    w = worker(**commands)
    browser = client(a.url)
    run_id = browser.call("start", {"job": "deaf"})["run_id"]
    pid = int(wait_for(lambda: next(iter(browser.texts(run_id)), None), timeout=30))
    browser.call("stop", {"run_id": run_id})
    run = finished(a.url, run_id, timeout=20)
    assert run["state"] == "stopped", w.output()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    assert wait_for(gone, timeout=10)  # not left behind by the work-horse's kill
    assert "got SIGKILL" in httpx.get(f"{a.url}/api/runs/{run_id}/log").text
