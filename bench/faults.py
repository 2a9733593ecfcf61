"""Faults: kill -9 a web process, a worker, Redis; start them again; what was lost, and
how long until every run's state was right again?

    .venv/bin/python bench/faults.py              # all five scenarios, about a minute
    .venv/bin/python bench/faults.py --outage 20  # Redis away 20 s (docs/reliability.md, req. 13)

Every process is real and of the benchmark's own: redis-server (AOF ``everysec``),
``flask-realtime run`` web processes, ``flask-realtime worker`` RQ workers. Each run is
``countdown`` (built in), so its log must read n, n-1, n-2, ... with no number missing
or repeated; the script checks that and counts the numbers lost. Times are measured from
the fault to the moment an HTTP poll (every 20 ms) first saw the right answer.

Scenarios:

1. embedded, web process killed: runs live in its memory, so they are lost by design;
   measured: the restart until ``/healthz`` answers.
2. Redis, web process A executing a run is killed; B answers: the run becomes ``failed``
   ("executor lost") with its output kept; A started again serves the same run.
3. Redis + RQ, the worker and its work-horse are killed: the run becomes ``failed``, its
   output kept, and it is not run again; a new worker takes the next run.
4. Redis killed (kill -9) mid-run and started again after ``--outage`` seconds: the job
   goes on (it ends during the outage), and the run shows ``succeeded`` with every line
   once its output buffered in the web process is stored; finished runs are still there.
5. Redis stopped cleanly (SIGTERM) for ``--outage`` seconds: the same.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.processes import ROOT, Process, WebProcess
from tests.redis_server import RedisServer

from bench.common import redis_server

FINISHED = ("succeeded", "failed", "stopped")


def until(check: Callable[[], Any], timeout: float, what: str) -> tuple[Any, float]:
    """Poll ``check`` every 20 ms until it returns something true: (that, seconds taken)."""
    t0 = time.monotonic()
    while True:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"not within {timeout:g} s: {what}")
        time.sleep(0.02)


def run(url: str, run_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/runs/{run_id}", timeout=2)
    return answer.json() if answer.status_code == 200 else {}


def start(url: str, n: int, delay: float) -> str:
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=20)
    try:
        answer = client.call("start", {"job": "countdown", "params": {"n": n, "delay": delay}},
                             timeout=10)
    finally:
        client.disconnect()
    if "run_id" not in answer:
        raise RuntimeError(f"start refused: {answer}")
    return str(answer["run_id"])


def countdown_check(url: str, run_id: str, n: int) -> tuple[int, int, int, list[str]]:
    """(numbers kept, numbers missing before the last kept one, repeated, other lines) of
    a countdown run's log."""
    lines = httpx.get(f"{url}/api/runs/{run_id}/log", timeout=10).text.splitlines()
    numbers = [int(t) for t in lines if t.isdigit()]
    others = [t for t in lines if not t.isdigit() and t != "Liftoff!"]
    lowest = min(numbers, default=n + 1)
    missing = len(set(range(lowest, n + 1)) - set(numbers))
    return len(numbers), missing, len(numbers) - len(set(numbers)), others


@contextmanager
def environment(redis_url: str | None) -> Iterator[tuple[dict[str, str], Path]]:
    """The processes' environment, and a folder for their instance files and logs."""
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as folder:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SECRET_KEY": "bench-faults-secret",
               "FLASK_REALTIME_LOGIN_REQUIRED": "false", "FLASK_REALTIME_DEMO": "false",
               "FLASK_REALTIME_WEBEX_ENV_FILE": '""', "FLASK_REALTIME_INSTANCE_PATH": folder}
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        yield env, Path(folder)


def embedded_web_killed(rows: list[list[str]]) -> None:
    with environment(None) as (env, logs):
        web = WebProcess(env, logs / "web.log").start()
        try:
            run_id = start(web.url, 100_000, 0.001)
            until(lambda: run(web.url, run_id).get("lines", 0) >= 300, 20, "300 lines")
            web.kill()
            t0 = time.monotonic()
            web.start()
            up = time.monotonic() - t0
            gone = httpx.get(f"{web.url}/api/runs/{run_id}").status_code == 404
        finally:
            web.kill()
    rows.append(["embedded: web process killed, restarted",
                 f"the running run and its output (in memory, by design; 404 afterwards: "
                 f"{'yes' if gone else 'NO'})", f"{up:.2f} s to answer /healthz again"])


def redis_web_killed(redis: RedisServer, rows: list[list[str]], n: int) -> None:
    with environment(redis.url) as (env, logs):
        a, b = WebProcess(env, logs / "a.log").start(), WebProcess(env, logs / "b.log").start()
        try:
            run_id = start(a.url, n, 0.002)
            until(lambda: run(b.url, run_id).get("lines", 0) >= 300, 20, "300 lines")
            a.kill()
            final, took = until(lambda: (r := run(b.url, run_id)).get("state") in FINISHED
                                and r, 30, "the run failed")
            kept, missing, repeated, others = countdown_check(b.url, run_id, n)
            a.start()
            again = run(a.url, run_id).get("state")
        finally:
            a.kill()
            b.kill()
    rows.append(["Redis: web process executing a run killed",
                 f"the run's last <= 20 ms of output (not stored yet); kept {kept} lines, "
                 f"{missing} missing before them, {repeated} repeated; marker "
                 f"{'yes' if any('lost' in t for t in others) else 'NO'}",
                 f"{took:.2f} s until `{final['state']}` ({final.get('error')}) on the other "
                 f"process; restarted A shows `{again}`"])


def rq_worker_killed(redis: RedisServer, rows: list[list[str]], n: int) -> None:
    with environment(redis.url) as (env, logs):
        env["FLASK_REALTIME_RUNNER"] = "rq"
        a = WebProcess(env, logs / "web.log").start()
        worker = Process(["worker"], env, logs / "worker.log").start()
        try:
            run_id = start(a.url, n, 0.002)
            until(lambda: run(a.url, run_id).get("lines", 0) >= 300, 30, "300 lines")
            horses = worker.children()
            worker.kill()
            for pid in horses:
                os.kill(pid, signal.SIGKILL)
            final, took = until(lambda: (r := run(a.url, run_id)).get("state") in FINISHED
                                and r, 30, "the run failed")
            kept, missing, repeated, others = countdown_check(a.url, run_id, n)
            replacement = Process(["worker"], env, logs / "worker2.log").start()
            t1 = time.monotonic()
            next_id = start(a.url, 5, 0)
            until(lambda: run(a.url, next_id).get("state") == "succeeded", 60, "a new run")
            served = time.monotonic() - t1
            rerun = run(a.url, run_id).get("lines", 0) != kept + len(others)
            replacement.kill()
        finally:
            worker.kill()
            a.kill()
    rows.append(["Redis + RQ: worker and work-horse killed",
                 f"the run's last <= 20 ms of output; kept {kept} lines, {missing} missing "
                 f"before them, {repeated} repeated; re-run: {'YES' if rerun else 'no'}",
                 f"{took:.2f} s until `{final['state']}` ({final.get('error')}); a new worker "
                 f"ran the next run {served:.2f} s after it was started"])


def redis_away(redis: RedisServer, rows: list[list[str]], n: int, outage: float,
               sig: int) -> None:
    with environment(redis.url) as (env, logs):
        a = WebProcess(env, logs / "web.log").start()
        try:
            done_id = start(a.url, 5, 0)
            until(lambda: run(a.url, done_id).get("state") == "succeeded", 20, "a short run")
            # about 0.5 ms a line: the job ends during the outage, so what is measured
            # after the restart is the catching up alone
            run_id = start(a.url, n, 0.0005)
            until(lambda: run(a.url, run_id).get("lines", 0) >= 300, 20, "300 lines")
            redis.stop(sig)
            time.sleep(outage)  # the outage itself: its length is the scenario's input
            redis.start()
            t0 = time.monotonic()
            _, healthy = until(lambda: httpx.get(f"{a.url}/healthz", timeout=2).json()
                               .get("status") == "ok", 30, "/healthz ok")
            final, _ = until(lambda: (r := run(a.url, run_id)).get("state") in FINISHED
                             and r, 120, "the run finished")
            caught_up = time.monotonic() - t0
            kept, missing, repeated, _ = countdown_check(a.url, run_id, n)
            earlier = run(a.url, done_id).get("state")
        finally:
            a.kill()
    how = "killed (kill -9)" if sig == signal.SIGKILL else "stopped (SIGTERM)"
    rows.append([f"Redis {how} mid-run for {outage:g} s, started again",
                 f"{n - kept} of {n} lines, {missing} missing, {repeated} repeated; "
                 f"the finished run: `{earlier}`",
                 f"{healthy:.2f} s to /healthz ok after the restart; {caught_up:.2f} s until "
                 f"the run showed `{final['state']}` with every line"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=3000, help="lines of each countdown run")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Redis is away")
    args = parser.parse_args()
    rows: list[list[str]] = []
    embedded_web_killed(rows)
    with redis_server() as redis:
        redis_web_killed(redis, rows, args.lines)
        rq_worker_killed(redis, rows, args.lines)
        redis_away(redis, rows, args.lines, args.outage, signal.SIGKILL)
        redis_away(redis, rows, args.lines, args.outage, signal.SIGTERM)
    print("| fault | lost | recovery |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
