"""Input and command jobs on an RQ worker: what the user types in a web process is read
by the work-horse in another process through Redis, the wait and its prompt reach the
page from the worker (``state`` events); Stop ends a command that ignores SIGTERM,
with nothing left behind when the work-horse goes. One web process and one worker for
both (starting them is most of the time)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import Watcher, wait_for
from tests.redis.conftest import Process, WebProcess, finished

STUBBORN = '''import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(os.getpid(), flush=True)
time.sleep(120)
'''


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_input_and_stop_reach_jobs_on_a_worker(
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

    # input() in a job on the worker reads what was typed in the web process
    run_id = browser.call("start", {"job": "greet"})["run_id"]
    wait_for(lambda: any(s["id"] == run_id and s.get("waiting_input") == {
        "prompt": "Your name: ", "secret": False} for s in browser.states), timeout=30)
    assert browser.call("input", {"run_id": run_id, "text": "Ada\n"}) == {"ok": True}
    run = finished(a.url, run_id, timeout=20)
    assert run["state"] == "succeeded" and run["result"] == "Ada", w.output()
    assert "Ada\nHello, Ada!" in httpx.get(f"{a.url}/api/runs/{run_id}/log").text

    # Stop kills a command deaf to SIGTERM before the worker kills its work-horse
    run_id = browser.call("start", {"job": "deaf"})["run_id"]
    pid = int(wait_for(lambda: next(iter(browser.texts(run_id)), None), timeout=30))
    browser.call("stop", {"run_id": run_id})
    assert finished(a.url, run_id, timeout=20)["state"] == "stopped", w.output()
    assert wait_for(lambda: gone(pid), timeout=10)  # not left running on its own
    assert "got SIGKILL" in httpx.get(f"{a.url}/api/runs/{run_id}/log").text
