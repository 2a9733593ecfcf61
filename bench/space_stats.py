"""space_stats against the official SDK and against the critical-path lower bound.

    .venv/bin/python bench/space_stats.py                    # 200 spaces, 40,000 messages, 50 ms
    .venv/bin/python bench/space_stats.py --rate-limit 100   # also: never above the limit

The simulator runs in its own process (``flask-realtime webex-sim``) with 50 ms of
latency per request. Three figures, in the same run:

* ours: the ``space_stats`` job (asyncio, bounded concurrency, pages of 1,000);
* the SDK: ``webexpythonsdk`` doing the same work the way a user would write it,
  one request after another (``rooms.list``, then ``messages.list`` per space);
* the lower bound: the longest chain of requests that must follow one another
  (the room list's pages, then the largest space's message pages) times the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.processes import ROOT, free_port, wait_http

from flask_realtime.core.jobs import RunContext
from flask_realtime.webex.client import WebexAccess, static_token
from flask_realtime.webex.jobs import space_stats
from flask_realtime.webex.simulator import (
    SimulatorConfig,
    start_simulator,
)


@contextlib.contextmanager
def simulator_process(args: argparse.Namespace, rate_limit: float | None = None) -> Any:
    port = free_port()
    command = [sys.executable, "-m", "flask_realtime.cli", "webex-sim", "--port", str(port),
               "--spaces", str(args.spaces), "--messages", str(args.messages),
               "--latency-ms", str(args.latency_ms), "--seed", str(args.seed)]
    if rate_limit:
        command += ["--rate-limit", str(rate_limit)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        token = ""
        for line in proc.stdout:
            if "a token for" in line:
                token = line.rsplit(" ", 1)[1].strip()
                break
        base = f"http://127.0.0.1:{port}/v1"
        wait_http(f"{base}/people/me")
        yield base, token
    finally:
        proc.terminate()
        proc.wait(10)


def run_ours(base: str, token: str, concurrency: int
             ) -> tuple[float, list[dict[str, Any]], WebexAccess]:
    webex = WebexAccess(base, static_token(token))
    context = RunContext("bench", "user1@example.com", {"webex": webex})
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = asyncio.run(space_stats(lambda: True, context, concurrency=concurrency))
    return time.perf_counter() - started, result, webex


def run_sdk(base: str, token: str) -> tuple[float, list[dict[str, Any]]]:
    import webexpythonsdk

    api = webexpythonsdk.WebexAPI(access_token=token, base_url=base + "/")
    started = time.perf_counter()
    rows = []
    for room in api.rooms.list():  # the SDK's and Webex's default page sizes
        count, newest, oldest = 0, None, None
        for message in api.messages.list(roomId=room.id):
            created = message.to_dict()["created"]
            newest = newest or created
            oldest = created
            count += 1
        rows.append({"id": room.id, "messages": count, "oldest": oldest, "newest": newest})
    return time.perf_counter() - started, rows


def lower_bound(result: list[dict[str, Any]], latency_s: float) -> tuple[float, int]:
    chain = math.ceil(max(len(result), 1) / 1000) + max(
        max(math.ceil(r["messages"] / 1000), 1) for r in result)
    return chain * latency_s, chain


def rate_limited_round(args: argparse.Namespace) -> None:
    """In-process simulator (to read its own count of accepted requests per second)."""
    config = SimulatorConfig(seed=args.seed, spaces=args.spaces, messages=args.messages,
                             latency_ms=args.latency_ms, rate_limit=args.rate_limit)
    sim = start_simulator(config)
    try:
        elapsed, _result, webex = run_ours(sim.base_url, sim.token_for(), args.concurrency)
        peak = sim.simulator.limiter.max_per_second()
        print(f"with --rate-limit {args.rate_limit:g}/s: {elapsed:.2f} s, "
              f"{webex.requests_sent} requests sent ({webex.rate_limited} answered 429), "
              f"peak {peak} accepted in any 1 s window "
              f"({'never above the limit' if peak <= args.rate_limit else 'ABOVE the limit'})")
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", type=int, default=200)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of ours; the median counts (this machine is shared)")
    parser.add_argument("--skip-sdk", action="store_true", help="the SDK takes about a minute")
    args = parser.parse_args()
    with simulator_process(args) as (base, token):
        runs = [run_ours(base, token, args.concurrency) for _ in range(max(args.repeat, 1))]
        times = sorted(elapsed for elapsed, _, _ in runs)
        _, result, webex = runs[0]
        ours = statistics.median(times)
        assert all(r[1] == result for r in runs), "runs disagree"
        bound, chain = lower_bound(result, args.latency_ms / 1000)
        print(f"simulator: {args.spaces} spaces, {args.messages:,} messages, "
              f"{args.latency_ms:g} ms per request; largest space "
              f"{max(r['messages'] for r in result):,} messages")
        print(f"ours (space_stats, concurrency {args.concurrency}): {ours:.2f} s median of "
              f"{len(times)} ({times[0]:.2f} to {times[-1]:.2f}), {webex.requests_sent} requests")
        print(f"lower bound: {chain} requests in a chain x {args.latency_ms:g} ms = {bound:.2f} s;"
              f" ours / bound = {ours / bound:.2f}x   (target <= 1.5x)")
        if not args.skip_sdk:
            sdk, rows = run_sdk(base, token)
            same = [(r["id"], r["messages"], r["oldest"], r["newest"]) for r in rows] == [
                (r["id"], r["messages"], r["oldest"], r["newest"]) for r in result]
            print(f"webexpythonsdk, sequential: {sdk:.2f} s; SDK / ours = {sdk / ours:.1f}x"
                  f"   (target >= 20x); same answer: {'yes' if same else 'NO'}")
    if args.rate_limit:
        rate_limited_round(args)


if __name__ == "__main__":
    main()
