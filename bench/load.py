"""Load: many concurrent runs with several watchers each, and many idle sockets.

    .venv/bin/python bench/load.py                       # 100 runs x 3 watchers, 500 idle
    .venv/bin/python bench/load.py --runs 20 --idle 100  # quicker

Every watcher must get every line of its run in order (seq checked, no ``skipped``);
the figures are the print->receipt latency of all lines (p50/p99/max), the server's
RSS, and whether the idle sockets all stayed connected through a ping cycle. The
baseline, in the same run, is one run with one watcher at the same rate. Runs and
limits: RUNS_PER_USER and RUNS_TOTAL are raised for the server this starts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, spawn_server
from bench.sio import Client, rss_mb


@contextmanager
def server(extra_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """``flask-realtime run`` in a subprocess: (url, pid)."""
    env = {"FLASK_REALTIME_LOGIN_REQUIRED": "false", "FLASK_REALTIME_JOBS": "bench.bench_jobs",
           **extra_env}
    with spawn_server(["-m", "flask_realtime.cli", "run", "--port", "{port}"], env) as (
            url, proc):
        yield url, proc.pid


async def gather_limited(coros: list, limit: int = 50) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(coro):  # type: ignore[no-untyped-def]
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def runs_with_watchers(url: str, pid: int | Sequence[int], runs: int, watchers: int,
                             rate: int, seconds: float,
                             local_hosts: Sequence[str] = ()) -> dict[str, Any]:
    """``runs`` tickers with ``watchers`` each: completeness, seq errors, latencies, and
    ``others``, the lines that were not a ticker's (a system line, a traceback). RSS is
    ``pid``'s (the sum of several); with ``local_hosts`` the clients connect from those
    addresses in turn (bench/sio.py, through nginx)."""
    lines = int(rate * seconds)
    clients = await gather_limited(
        [Client.connect(url, stamps=True,
                        local_host=local_hosts[i % len(local_hosts)] if local_hosts else None)
         for i in range(runs * watchers)])
    rss = [rss_mb(pid)]
    t0 = time.monotonic()
    run_ids = []
    for r in range(runs):
        group = clients[r * watchers:(r + 1) * watchers]
        # A loaded server may take long to answer (each start is announced to every
        # socket of its user, here all of them): the figures say how late, not a timeout.
        ack = await group[0].call(
            "start", {"job": "ticker", "params": {"rate": rate, "seconds": seconds}},
            timeout=300)
        run_ids.append(ack["run_id"])
        await asyncio.gather(*(c.call("watch", {"run_id": ack["run_id"], "after": 0},
                                      timeout=300) for c in group[1:]))
    started = time.monotonic() - t0  # every run started and watched
    started_at = time.time()
    deadline = time.monotonic() + seconds + 120
    while time.monotonic() < deadline:
        rss.append(rss_mb(pid))
        done = sum(1 for r, run_id in enumerate(run_ids)
                   for c in clients[r * watchers:(r + 1) * watchers]
                   if c.last.get(run_id, 0) >= lines)
        if done == runs * watchers:
            break
        await asyncio.sleep(0.5)
    wall = time.monotonic() - t0
    complete = sum(1 for r, run_id in enumerate(run_ids)
                   for c in clients[r * watchers:(r + 1) * watchers]
                   if c.last.get(run_id, 0) == lines)
    errors = [e for c in clients for e in c.errors]
    latencies = [v for c in clients for v in c.latencies]
    # The lines that arrived once every run was started and watched: the steady state.
    steady = [v for c in clients for v, at in zip(c.latencies, c.received, strict=True)
              if at >= started_at]
    others = sorted({o for c in clients for o in c.others})  # the same line, many watchers
    await asyncio.gather(*(c.close() for c in clients))
    return {"watchers": runs * watchers, "complete": complete, "seq_errors": len(errors),
            "lines": len(latencies), "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99), "max": max(latencies), "wall": wall,
            "rss_peak": max(rss), "others": others, "started": started,
            "steady_p99": percentile(steady, 99) if steady else float("nan")}


async def idle_sockets(url: str, pid: int, count: int, hold: float) -> dict[str, float]:
    before = rss_mb(pid)
    t0 = time.monotonic()
    clients = await gather_limited([Client.connect(url) for _ in range(count)])
    connect_time = time.monotonic() - t0
    rss = []
    end = time.monotonic() + hold
    while time.monotonic() < end:
        rss.append(rss_mb(pid))
        await asyncio.sleep(1)
    alive = sum(1 for c in clients if not c.closed.is_set())
    answers = await gather_limited([c.call("unwatch", {"run_id": "x"}) for c in clients
                                    if not c.closed.is_set()])
    answered = sum(1 for a in answers if a == {"ok": True})
    await gather_limited([c.close() for c in clients])
    return {"count": count, "alive": alive, "answered": answered, "connect_s": connect_time,
            "rss_before": before, "rss_peak": max(rss), "per_socket_kb": (max(rss) - before)
            * 1024 / count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--watchers", type=int, default=3)
    parser.add_argument("--rate", type=int, default=20, help="lines/s of each run")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--hold", type=float, default=30,
                        help="seconds the idle sockets are held (the server pings every 25)")
    args = parser.parse_args()
    limits = {"FLASK_REALTIME_RUNS_PER_USER": str(args.runs + 10),
              "FLASK_REALTIME_RUNS_TOTAL": str(args.runs + 10)}
    with server(limits) as (url, pid):
        base = asyncio.run(runs_with_watchers(url, pid, 1, 1, args.rate, args.seconds))
        load = asyncio.run(runs_with_watchers(url, pid, args.runs, args.watchers, args.rate,
                                              args.seconds))
    with server(limits) as (url, pid):
        idle = asyncio.run(idle_sockets(url, pid, args.idle, args.hold))
    total = args.runs * args.rate
    print(f"load: {args.runs} runs x {args.watchers} watchers, {args.rate} lines/s each "
          f"({total:,} lines/s stored, {total * args.watchers:,} lines/s delivered), "
          f"{args.seconds:g} s")
    print(f"  watchers with every line: {load['complete']:.0f}/{load['watchers']:.0f}; "
          f"seq errors: {load['seq_errors']:.0f}; lines received: {load['lines']:,.0f}")
    print(f"  latency ms: p50 {load['p50']:.1f}  p99 {load['p99']:.1f}  max {load['max']:.1f}"
          f"   (baseline 1 run x 1 watcher: p50 {base['p50']:.1f}  p99 {base['p99']:.1f}; "
          f"p99 ratio {load['p99'] / base['p99']:.1f}x)")
    print(f"  server RSS peak {load['rss_peak']:.0f} MiB; finished in {load['wall']:.1f} s")
    print(f"idle: {idle['alive']:.0f}/{idle['count']:.0f} sockets still connected after "
          f"{args.hold:g} s, {idle['answered']:.0f} answered a call; connected in "
          f"{idle['connect_s']:.1f} s; server RSS {idle['rss_before']:.0f} -> "
          f"{idle['rss_peak']:.0f} MiB ({idle['per_socket_kb']:.0f} KiB a socket)")


if __name__ == "__main__":
    main()
