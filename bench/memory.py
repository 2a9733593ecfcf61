"""Server memory for each store: idle, after a flood, across finished runs (issue 21, item 3).

    .venv/bin/python bench/memory.py                     # memory, SQLite, Redis; 1 round
    .venv/bin/python bench/memory.py --rounds 3 --stores sqlite

Per store and round, two fresh ``flask-realtime run`` servers (fresh instance folder;
Redis: a redis-server of the benchmark's own, ``REDIS_URL`` set):

1. **idle**: RSS once the server answers ``/healthz`` and 2 s have passed, nothing run;
   then ``flood(lines=1,000,000, width=60)`` with no watcher, and the RSS once it has
   finished (1 s later, as bench/rss.py does).
2. **runs**: RSS idle, then ``--runs`` (100) finished runs of ``flood(lines=1,500)``
   one after the other (a run's last 500 lines are its open chunk on SQLite), the RSS
   read after every quarter of them.

The memory store keeps each run's newest RETENTION_LINES (100,000) lines and
HISTORY_RUNS (200) runs a user in the process, so its growth is what it keeps; SQLite
and Redis keep output out of the process. Targets (issue 21): idle <= 60 MB; after the
flood <= idle + 20 MB on SQLite; no growth across the runs beyond the history kept.
The load average is printed at the start and the end: a shared machine moves the
figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import redis_server, spawn_server
from bench.rss import ENV, run_to_end
from bench.sio import rss_mb

STORES = ("memory", "sqlite", "redis")


@contextlib.contextmanager
def server(store: str, redis_url: str | None) -> Iterator[tuple[str, int]]:
    """A fresh server on ``store``: (its URL, its pid)."""
    env = {**ENV, "FLASK_REALTIME_STORE": "sqlite" if store == "redis" else store}
    if store == "redis":
        assert redis_url is not None
        env["REDIS_URL"] = redis_url
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as instance, spawn_server(
            ["-m", "flask_realtime.cli", "run", "--port", "{port}", "--no-demo"],
            {**env, "FLASK_REALTIME_INSTANCE_PATH": instance}) as (url, proc):
        yield url, proc.pid


def idle_rss(pid: int) -> float:
    time.sleep(2)  # the threads a server starts at once have started
    return rss_mb(pid)


def run_many(url: str, count: int, params: dict[str, int], pid: int,
             every: int) -> list[tuple[int, float]]:
    """Run ``flood(**params)`` ``count`` times, one after the other; the RSS after each
    ``every`` runs as (runs finished, MB)."""
    sio = socketio.Client(reconnection=False)
    sio.connect(url, transports=["websocket"], wait_timeout=20)
    samples = []
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for n in range(1, count + 1):
                run_id = sio.call("start", {"job": "flood", "params": params},
                                  timeout=30)["run_id"]
                deadline = time.monotonic() + 120
                while client.get(f"/api/runs/{run_id}").json()["state"] not in (
                        "succeeded", "failed", "stopped"):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"run {n} of {count} did not finish in 120 s")
                    time.sleep(0.02)
                if n % every == 0:
                    time.sleep(0.5)  # its last batch stored, the delivery loop settled
                    samples.append((n, rss_mb(pid)))
    finally:
        sio.disconnect()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--lines", type=int, default=1_000_000, help="the flood's lines")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--run-lines", type=int, default=1_500)
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; loadavg at start: {_loadavg()}; "
          f"cpus={os.cpu_count()}", flush=True)
    figures: dict[tuple[str, str], list[float]] = {}
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server()).url if "redis" in stores else None
        for n in range(args.rounds):
            for store in stores:
                with server(store, redis_url) as (url, pid):
                    idle = idle_rss(pid)
                    t0 = time.monotonic()
                    record = run_to_end(url, {"lines": args.lines, "width": 60})
                    assert record["state"] == "succeeded", record
                    seconds = time.monotonic() - t0
                    time.sleep(1)
                    after = rss_mb(pid)
                figures.setdefault((store, "idle"), []).append(idle)
                figures.setdefault((store, "flood"), []).append(after - idle)
                print(f"round {n + 1} {store:6s}: idle {idle:6.1f} MB; after a "
                      f"{args.lines:,}-line flood ({seconds:.0f} s) {after:6.1f} MB "
                      f"({after - idle:+.1f} MB)", flush=True)
                with server(store, redis_url) as (url, pid):
                    idle = idle_rss(pid)
                    every = max(args.runs // 4, 1)
                    samples = run_many(url, args.runs, {"lines": args.run_lines, "width": 60},
                                       pid, every)
                figures.setdefault((store, "runs"), []).append(samples[-1][1] - idle)
                steps = ", ".join(f"{k}: {mb:.1f} ({mb - idle:+.1f})" for k, mb in samples)
                print(f"round {n + 1} {store:6s}: idle {idle:6.1f} MB; after runs {steps} MB",
                      flush=True)
    print(f"loadavg at end: {_loadavg()}")
    labels = {"idle": "idle RSS", "flood": f"growth after a {args.lines:,}-line flood",
              "runs": f"growth after {args.runs} runs of {args.run_lines:,} lines"}
    for store in stores:
        for kind, label in labels.items():
            values = figures[(store, kind)]
            sign = "" if kind == "idle" else "+"
            print(f"{store:6s} {label:40s} median {statistics.median(values):{sign}.1f} MB "
                  f"({min(values):{sign}.1f} to {max(values):{sign}.1f}, {len(values)} rounds)")


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    main()
