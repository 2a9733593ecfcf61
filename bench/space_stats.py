"""space_stats against the official SDK and against the critical-path lower bound.

    .venv/bin/python bench/space_stats.py                    # 200 spaces, 40,000 messages, 50 ms
    .venv/bin/python bench/space_stats.py --rate-limit 100   # also: never above the limit
    .venv/bin/python bench/space_stats.py --faults --skip-sdk  # also: a bad day at Webex
    .venv/bin/python bench/space_stats.py --charts --skip-sdk  # also: the charts' cost

The simulator runs in its own process (``flask-realtime webex-sim``) with 50 ms of
latency per request. Three figures, in the same run:

* ours: the ``space_stats`` job (asyncio, bounded concurrency, pages of 1,000);
* the SDK: ``webexpythonsdk`` doing the same work the way a user would write it,
  one request after another (``rooms.list``, then ``messages.list`` per space);
* the lower bound: the longest chain of requests that must follow one another
  (the room list's pages, then the largest space's message pages) times the latency.

With ``--faults``, ``space_stats`` also runs (``--repeat`` times, a fresh simulator
each) against the same data on a bad day: one space answering 403 "Failed to get
activity", an outage of ``--outage-seconds`` (503 with an honest Retry-After for every
request) starting after ``--outage-after`` requests, and a rate limit of
``--faults-rate-limit`` requests per second: time, requests, 429s, retries and pause
lines against the fault-free run, and a check that every other space's row is the
fault-free one.

The runs measured draw no charts (as before the charts existed, so the figures
compare); ``--charts`` adds as many runs that draw them (matplotlib), and their ratio.
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

import httpx
from tests.processes import ROOT, free_port, wait_http

from flask_realtime.core.jobs import RunContext
from flask_realtime.webex import charts
from flask_realtime.webex.client import WebexAccess, static_token
from flask_realtime.webex.jobs import space_stats
from flask_realtime.webex.simulator import (
    SimulatorConfig,
    start_simulator,
)


@contextlib.contextmanager
def simulator_process(args: argparse.Namespace, rate_limit: float | None = None,
                      extra: tuple[str, ...] = ()) -> Any:
    port = free_port()
    command = [sys.executable, "-m", "flask_realtime.cli", "webex-sim", "--port", str(port),
               "--spaces", str(args.spaces), "--messages", str(args.messages),
               "--latency-ms", str(args.latency_ms), "--seed", str(args.seed), *extra]
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


def run_ours(base: str, token: str, concurrency: int, output: list[str] | None = None,
             transport: str = "aiohttp", draw: bool = False,
             ) -> tuple[float, list[dict[str, Any]], WebexAccess]:
    """One scan; ``transport="httpcore"`` is the client as it was before 2026-12-02
    (httpx's own pool, at most 32 connections kept alive). The client's CPU time for
    the scan is left in ``webex.cpu_seconds``. Its charts are drawn only with ``draw``
    (and matplotlib), so that the scan's figures stay comparable with those measured
    before the charts."""
    pool = None
    if transport == "httpcore":
        pool = httpx.AsyncHTTPTransport(limits=httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=min(concurrency, 32)))
    webex = WebexAccess(base, static_token(token), transport=pool)
    context = RunContext("bench", "user1@example.com", {"webex": webex})
    printed = io.StringIO()
    could = charts.available
    charts.available = lambda: draw and could()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        with contextlib.redirect_stdout(printed):
            result = asyncio.run(space_stats(lambda: True, context, concurrency=concurrency))
    finally:
        charts.available = could
    webex.cpu_seconds = time.process_time() - cpu  # type: ignore[attr-defined]
    if output is not None:
        output += printed.getvalue().splitlines()
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


def faults_round(args: argparse.Namespace, clean: list[dict[str, Any]], clean_time: float,
                 clean_requests: int) -> None:
    """``space_stats`` on a bad day, each run on a fresh simulator (the outage is counted
    from its start); the same data as the fault-free run."""
    extra = ("--forbidden-spaces", "1", "--outage-seconds", str(args.outage_seconds),
             "--outage-after-requests", str(args.outage_after))
    runs = []
    for _ in range(max(args.repeat, 1)):
        with simulator_process(args, args.faults_rate_limit, extra) as (base, token):
            lines: list[str] = []
            elapsed, result, webex = run_ours(base, token, args.concurrency, lines)
            runs.append((elapsed, result, webex, lines))
    times = sorted(r[0] for r in runs)
    median = statistics.median(times)
    want = {r["id"]: r for r in clean}
    for _, result, _, _ in runs:
        unreadable = [r for r in result if r["error"]]
        assert len(unreadable) == 1 and unreadable[0]["error"].startswith(
            "403 Failed to get activity"), unreadable
        assert all({k: v for k, v in r.items() if k != "error"} == want[r["id"]]
                   for r in result if not r["error"]), "a readable space differs"
        assert len(result) == len(clean)
    sent = [r[2].requests_sent for r in runs]
    limited = [r[2].rate_limited for r in runs]
    retried = [r[2].retried for r in runs]
    pauses = [sum(line.startswith(("Webex asked us", "Webex answered", "Could not reach"))
                  for line in r[3]) for r in runs]
    print(f"with --faults (1 space answering 403, a {args.outage_seconds:g} s outage of 503 "
          f"after {args.outage_after} requests, {args.faults_rate_limit:g} requests/s): "
          f"{median:.2f} s median of {len(times)} ({times[0]:.2f} to {times[-1]:.2f}); "
          f"{median - clean_time:+.2f} s against the fault-free {clean_time:.2f} s "
          f"(the outage alone is {args.outage_seconds:g} s)")
    print(f"  requests {min(sent)} to {max(sent)} (fault-free {clean_requests}); 429 "
          f"answers {min(limited)} to {max(limited)}; retried {min(retried)} to "
          f"{max(retried)}; pause lines printed {min(pauses)} to {max(pauses)}; every run: "
          f"the 403 space reported, the {len(clean) - 1} others as without faults")


def compare_httpcore(args: argparse.Namespace, base: str, token: str,
                     result: list[dict[str, Any]], bound: float) -> None:
    """Ours and the httpcore client alternately, ``--repeat`` times each."""
    times: dict[str, list[float]] = {"aiohttp": [], "httpcore": []}
    cpus: dict[str, list[float]] = {"aiohttp": [], "httpcore": []}
    for _ in range(max(args.repeat, 1)):
        for name in ("httpcore", "aiohttp"):
            elapsed, other, webex = run_ours(base, token, args.concurrency, transport=name)
            assert other == result, "the httpcore client's answer differs"
            times[name].append(elapsed)
            cpus[name].append(webex.cpu_seconds)  # type: ignore[attr-defined]
    for name in ("httpcore", "aiohttp"):
        t = sorted(times[name])
        print(f"alternating, {name}: {statistics.median(t):.2f} s median of {len(t)} "
              f"({t[0]:.2f} to {t[-1]:.2f}), / bound = {statistics.median(t) / bound:.2f}x; "
              f"client CPU {statistics.median(cpus[name]):.2f} s median")
    print(f"  httpcore / aiohttp = "
          f"{statistics.median(times['httpcore']) / statistics.median(times['aiohttp']):.2f}x "
          f"time, {statistics.median(cpus['httpcore']) / statistics.median(cpus['aiohttp']):.2f}x"
          f" CPU")


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
    parser.add_argument("--faults", action="store_true",
                        help="also a run on a bad day (a 403 space, an outage, a rate limit)")
    parser.add_argument("--outage-seconds", type=float, default=30)
    parser.add_argument("--outage-after", type=int, default=60,
                        help="requests before the outage starts (mid-scan)")
    parser.add_argument("--faults-rate-limit", type=float, default=100)
    parser.add_argument("--compare-httpcore", action="store_true",
                        help="also the client on httpcore's pool (before 2026-12-02), "
                             "alternating with ours on the same simulator")
    parser.add_argument("--charts", action="store_true",
                        help="also runs that draw the two charts (matplotlib): their cost")
    args = parser.parse_args()
    print(f"loadavg at start: {Path('/proc/loadavg').read_text().split()[0]}")
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
        cpu = statistics.median(w.cpu_seconds for _, _, w in runs)  # type: ignore[attr-defined]
        print(f"  the client's CPU per scan: {cpu:.2f} s median")
        if args.compare_httpcore:
            compare_httpcore(args, base, token, result, bound)
        if args.charts:
            if not charts.available():
                print("charts: matplotlib is not installed (pip install "
                      "'flask-realtime[charts]')")
            else:
                drawn = sorted(run_ours(base, token, args.concurrency, draw=True)[0]
                               for _ in range(max(args.repeat, 1)))
                with_charts = statistics.median(drawn)
                print(f"ours with its two charts: {with_charts:.2f} s median of {len(drawn)} "
                      f"({drawn[0]:.2f} to {drawn[-1]:.2f}); with / without = "
                      f"{with_charts / ours:.2f}x")
        if not args.skip_sdk:
            sdk, rows = run_sdk(base, token)
            same = [(r["id"], r["messages"], r["oldest"], r["newest"]) for r in rows] == [
                (r["id"], r["messages"], r["oldest"], r["newest"]) for r in result]
            print(f"webexpythonsdk, sequential: {sdk:.2f} s; SDK / ours = {sdk / ours:.1f}x"
                  f"   (target >= 20x); same answer: {'yes' if same else 'NO'}")
    if args.rate_limit:
        rate_limited_round(args)
    if args.faults:
        faults_round(args, result, ours, webex.requests_sent)
    print(f"loadavg at end: {Path('/proc/loadavg').read_text().split()[0]}")


if __name__ == "__main__":
    main()
