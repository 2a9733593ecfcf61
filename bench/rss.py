"""Server RSS before and after a flood, for the memory store and the SQLite store, in
the same run (issue 15: RSS must not grow with output size).

    .venv/bin/python bench/rss.py                       # 1,000,000 lines, then 1 GB
    .venv/bin/python bench/rss.py --gb 0 --rounds 3     # only the 1,000,000-line flood
    .venv/bin/python bench/rss.py --rounds 3 --gb-rounds 2

Each measure starts a fresh ``flask-realtime run`` (fresh instance folder), reads its
RSS once it answers and one small run went through (warm), runs ``flood`` with no
watcher until the run has finished and its output is stored, and reads the RSS again.
The memory store keeps RETENTION_LINES (100,000) lines a run; the SQLite store keeps
everything on disk (RETENTION_BYTES 1 GiB a run). Stores alternate inside each
round; the summary gives each store's median growth and its spread, and the load
average at the start and the end (a shared machine moves the figures).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import spawn_server
from bench.sio import rss_mb

ENV = {"FLASK_REALTIME_LOGIN_REQUIRED": "false", "FLASK_REALTIME_DEMO": "false"}


def run_to_end(url: str, params: dict[str, int], timeout: float = 1800) -> dict:
    """Start ``flood`` over Socket.IO (no watch: nobody reads it) and wait for its end."""
    sio = socketio.Client(reconnection=False)
    sio.connect(url, transports=["websocket"], wait_timeout=20)
    run = sio.call("start", {"job": "flood", "params": params}, timeout=30)
    sio.disconnect()
    run["id"] = run["run_id"]
    with httpx.Client(base_url=url, timeout=30) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = client.get(f"/api/runs/{run['id']}").json()
            if record["state"] in ("succeeded", "failed", "stopped"):
                return record
            time.sleep(0.5)
    raise RuntimeError(f"flood {params} did not finish in {timeout} s")


def measure(store: str, lines: int, width: int) -> tuple[float, float, float]:
    """(RSS before, RSS after, seconds) in MB for one flood on a fresh server."""
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as instance, spawn_server(
            ["-m", "flask_realtime.cli", "run", "--port", "{port}", "--no-demo"],
            {**ENV, "FLASK_REALTIME_STORE": store,
             "FLASK_REALTIME_INSTANCE_PATH": instance}) as (url, proc):
        run_to_end(url, {"lines": 10_000, "width": width})  # warm: imports, first chunks
        before = rss_mb(proc.pid)
        t0 = time.monotonic()
        record = run_to_end(url, {"lines": lines, "width": width})
        seconds = time.monotonic() - t0
        assert record["state"] == "succeeded", record
        time.sleep(1)  # the pump's last batch and the delivery loop settle
        return before, rss_mb(proc.pid), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--gb", type=float, default=1.0, help="the big flood (0: none)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--gb-rounds", type=int, help="rounds of the big flood (default --rounds)")
    args = parser.parse_args()
    floods = [(args.lines, 60, f"{args.lines:,} lines of 60 B", args.rounds)]
    if args.gb:
        big = int(args.gb * 1e9 / 100)
        floods.append((big, 100, f"{args.gb:g} GB ({big:,} lines of 100 B)",
                       args.gb_rounds or args.rounds))
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; loadavg at start: {_loadavg()}; "
          f"cpus={os.cpu_count()}", flush=True)
    growth: dict[tuple[str, str], list[float]] = {}
    for lines, width, label, rounds in floods:
        for n in range(rounds):
            for store in ("memory", "sqlite"):
                before, after, seconds = measure(store, lines, width)
                growth.setdefault((label, store), []).append(after - before)
                print(f"{label}, round {n + 1}, {store:6s}: RSS {before:6.1f} -> {after:6.1f} MB "
                      f"({after - before:+6.1f} MB; flood took {seconds:.0f} s)", flush=True)
    print(f"loadavg at end: {_loadavg()}")
    for (label, store), values in growth.items():
        print(f"{label}, {store:6s}: growth median {statistics.median(values):+.1f} MB "
              f"({min(values):+.1f} to {max(values):+.1f}, {len(values)} rounds)")


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    main()
