"""Streaming benchmark: throughput, latency and capture cost, against baselines in the same run.

    .venv/bin/python bench/stream.py                 # full: 1,000,000 lines
    .venv/bin/python bench/stream.py --lines 200000  # quicker
    .venv/bin/python bench/stream.py --redis         # the same through Redis and two processes
    .venv/bin/python bench/stream.py --store sqlite  # SQLite store against the memory store

Throughput is lines/s received by a python-socketio client (websocket transport,
websocket-client with wsaccel for UTF-8 validation) from ``flood`` on our server,
compared with (a) the seed's one-emit-per-line design and (b) the ceiling: the same
batches over a raw ``websockets`` connection. Every server runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import socketio
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, redis_server, server_process

SERVER_ENV = {
    "FLASK_REALTIME_RETENTION_LINES": "3000000",
    "FLASK_REALTIME_JOBS": "bench.bench_jobs",
    "FLASK_REALTIME_LOGIN_REQUIRED": "false",
    "FLASK_REALTIME_DEMO": "false",
}


@contextlib.contextmanager
def our_server(redis_url: str | None, store: str = "memory") -> Iterator[tuple[str, str]]:
    """(url to start runs on, url to watch from): the same process, or two with Redis.
    Embedded, ``store`` is STORE ("memory" or "sqlite", in a fresh instance folder)."""
    if redis_url is None:
        with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance, \
                server_process(["-m", "flask_realtime.cli", "run", "--port", "{port}"], {
                    **SERVER_ENV, "FLASK_REALTIME_STORE": store,
                    "FLASK_REALTIME_INSTANCE_PATH": instance}) as url:
            yield url, url
        return
    env = {**SERVER_ENV, "REDIS_URL": redis_url}
    with server_process(["-m", "flask_realtime.cli", "run", "--port", "{port}"], env) as a, \
            server_process(["-m", "flask_realtime.cli", "run", "--port", "{port}"], env) as b:
        yield a, b


def connect(url: str) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=20)
    return client


def ours_throughput(start_url: str, watch_url: str, lines: int, width: int) -> float:
    done = threading.Event()
    received = [0]
    watcher = connect(watch_url) if watch_url != start_url else None
    starter = connect(start_url)
    client = watcher or starter

    def on_output(batch: dict) -> None:
        received[0] += len(batch["lines"])
        if received[0] >= lines:
            done.set()

    client.on("output", on_output)
    t0 = time.perf_counter()
    ack = starter.call("start", {"job": "flood", "params": {"lines": lines, "width": width}})
    if watcher is not None:
        watcher.call("watch", {"run_id": ack["run_id"], "after": 0})
    if not done.wait(600):
        raise RuntimeError(f"received only {received[0]} of {lines} lines")
    elapsed = time.perf_counter() - t0
    for c in {starter, client}:
        c.disconnect()
    return lines / elapsed


def raw_client_throughput(start_url: str, lines: int, width: int,
                          watch_url: str | None = None, job: str = "flood") -> float:
    """The same run read by a minimal Engine.IO/Socket.IO client on ``websockets``: it
    does not spawn a thread per message as python-socketio's client does, so it shows
    what the server delivers (docs/performance.md, "Streaming"). With ``watch_url``, the
    run is started on one process and read from another."""

    async def connect(url: str) -> Any:
        ws = await websockets.connect(
            url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", max_size=None)
        assert str(await ws.recv()).startswith("0")  # Engine.IO open
        await ws.send("40")  # connect the default namespace
        while not str(await ws.recv()).startswith("40"):
            pass
        return ws

    async def ack(ws: Any, ack_id: int) -> Any:
        while True:
            message = str(await ws.recv())
            if message == "2":
                await ws.send("3")
            elif message.startswith(f"43{ack_id}"):
                return json.loads(message[2 + len(str(ack_id)):])[0]

    async def run() -> float:
        starter = await connect(start_url)
        reader = await connect(watch_url) if watch_url else starter
        params = {"job": job, "params": {"lines": lines, "width": width}}
        t0 = time.perf_counter()
        await starter.send("421" + json.dumps(["start", params]))
        if watch_url:
            run_id = (await ack(starter, 1))["run_id"]
            await reader.send("422" + json.dumps(["watch", {"run_id": run_id, "after": 0}]))
        received = 0
        while received < lines:
            message = str(await reader.recv())
            if message == "2":
                await reader.send("3")  # pong
            elif message.startswith('42["output"'):
                received += len(json.loads(message[2:])[1]["lines"])
        elapsed = time.perf_counter() - t0
        for ws in {starter, reader}:
            await ws.close()
        return lines / elapsed

    return asyncio.run(run())


def per_line_throughput(lines: int, width: int) -> float:
    with server_process(["bench/baseline_per_line.py", "{port}"]) as url:
        client = connect(url)
        done = threading.Event()
        received = [0]

        def on_output(_line: dict) -> None:
            received[0] += 1
            if received[0] >= lines:
                done.set()

        client.on("output", on_output)
        t0 = time.perf_counter()
        client.call("start", {"lines": lines, "width": width})
        # The rate is what counts. Measured over at most 15 s: a client this far behind
        # answers Engine.IO's ping (every 25 s) too late and is disconnected.
        done.wait(15)
        elapsed = time.perf_counter() - t0
        counted = received[0]
        client.disconnect()
        if counted < 1000:
            raise RuntimeError(f"per-line baseline: only {counted} lines in {elapsed:.0f} s")
        return counted / elapsed


def ceiling_throughput(lines: int, width: int) -> float:
    async def run(url: str) -> float:
        async with websockets.connect(url, max_size=None) as ws:
            t0 = time.perf_counter()
            await ws.send(json.dumps({"lines": lines, "width": width}))
            received = 0
            while received < lines:
                received += len(json.loads(await ws.recv())[1]["lines"])
            return lines / (time.perf_counter() - t0)

    with server_process(["bench/baseline_websockets.py", "{port}"], ready_path="") as url:
        return asyncio.run(run(url.replace("http", "ws")))


def latency(start_url: str, watch_url: str, rate: int, seconds: float) -> list[float]:
    samples: list[float] = []
    expected = int(rate * seconds)
    done = threading.Event()
    watcher = connect(watch_url)
    starter = connect(start_url) if start_url != watch_url else watcher

    def on_output(batch: dict) -> None:
        now = time.time()
        for line in batch["lines"]:
            stamp, _, _ = line["text"].partition(" ")
            samples.append((now - float(stamp)) * 1000)
        if len(samples) >= expected:
            done.set()

    watcher.on("output", on_output)
    ack = starter.call("start", {"job": "ticker", "params": {"rate": rate, "seconds": seconds}})
    if watcher is not starter:
        watcher.call("watch", {"run_id": ack["run_id"], "after": 0})
    done.wait(seconds + 30)
    for c in {starter, watcher}:
        c.disconnect()
    return samples


def capture_overhead(lines: int, width: int, rounds: int = 5) -> tuple[float, float, float]:
    """Captured printing against printing into io.StringIO, in alternating rounds.

    Each round times the plain job and then the captured one, right after each other,
    so that both see the same machine; the figure is the median of the per-round
    ratios (a shared 2-core machine drifts by 30% from one second to the next).
    Returns (median plain seconds, median ratio until the job's last print returned,
    median ratio until every line was stored).
    """
    from flask_realtime.core.capture import CapturePump

    pad = "x" * max(width - 9, 0)

    def job() -> None:
        for i in range(1, lines + 1):
            print(f"{i:08d} {pad}")

    sink_done = threading.Event()
    stored = [0]
    wanted = lines  # the sink's own argument is named as LineSink's: ``lines``

    def sink(run_id: str, lines: list[tuple[str, str, str]], epoch_ms: int, *,
             writer: str | None = None, offset: int = 0) -> None:
        stored[0] += len(lines)
        if stored[0] >= wanted:
            sink_done.set()

    plain, printed, captured = [], [], []
    pump = CapturePump(sink)
    for _ in range(rounds):
        buffer = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(buffer):
            job()
        plain.append(time.perf_counter() - t0)

        stored[0] = 0
        sink_done.clear()
        capture = pump.open("bench")
        t0 = time.perf_counter()
        previous = pump.attach(capture)
        job()
        pump.detach(previous)
        printed.append((time.perf_counter() - t0) / plain[-1])
        pump.close(capture)
        if not sink_done.wait(120) or stored[0] != lines:
            raise RuntimeError(f"stored {stored[0]} lines of {lines}")
        captured.append((time.perf_counter() - t0) / plain[-1])
    return statistics.median(plain), statistics.median(printed), statistics.median(captured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--width", type=int, default=60)
    parser.add_argument("--baseline-lines", type=int, default=200_000,
                        help="lines for the per-line baseline (it is slow; rate is what counts: "
                             "measured over 15 s at most)")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--redis", action="store_true",
                        help="REDIS_URL set: start on one web process, watch from another")
    parser.add_argument("--store", choices=["sqlite"],
                        help="the SQLite store against the memory store, alternately, "
                             "--rounds times each: throughput, then latency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--capture-only", action="store_true",
                        help="only the capture overhead (no server, about 20 s)")
    parser.add_argument("--isolation", choices=["process"],
                        help="process jobs against thread jobs on one server, --rounds "
                             "times: flood throughput, Start to first line, another "
                             "run's latency during a flood")
    args = parser.parse_args()
    if args.isolation:
        compare_isolation(args)
        return
    if args.capture_only:
        print_capture_overhead(args.lines, args.width)
        return
    if args.store:
        compare_stores(args)
        return
    print(f"client: python-socketio {version('python-socketio')}, websocket transport; "
          f"wsaccel={'yes' if _has_wsaccel() else 'no'}; cpus={os.cpu_count()}")

    embedded = 0.0
    if args.redis:  # the embedded figure of this same run, for the ratio
        with our_server(None) as (url, _):
            embedded = raw_client_throughput(url, args.lines, args.width)
        print(f"{'ours (embedded), raw client':32s} {embedded:12,.0f} lines/s")
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server()).url if args.redis else None
        start_url, watch_url = stack.enter_context(our_server(redis_url))
        label = "ours (Redis, A -> B)" if args.redis else "ours (embedded)"
        client_figure = ours_throughput(start_url, watch_url, args.lines, args.width)
        print(f"{label + ', python-socketio':32s} {client_figure:12,.0f} lines/s  "
              f"({args.lines:,} lines of {args.width} B)")
        ours = raw_client_throughput(start_url, args.lines, args.width,
                                     watch_url if args.redis else None)
        print(f"{label + ', raw client':32s} {ours:12,.0f} lines/s  "
              f"({args.lines:,} lines of {args.width} B; the figure the ratios use)")
        if args.redis:
            print(f"ratio Redis/embedded = {ours / embedded:.0%}    (target >= 50%)")
        samples = latency(start_url, watch_url, args.rate, args.seconds)
    per_line = per_line_throughput(args.baseline_lines, args.width)
    print(f"{'(a) one emit per line':32s} {per_line:12,.0f} lines/s  "
          f"(rate over at most 15 s of {args.baseline_lines:,} lines)")
    ceiling = ceiling_throughput(args.lines, args.width)
    print(f"{'(b) raw websockets ceiling':32s} {ceiling:12,.0f} lines/s")
    print(f"ratio ours/(a) = {ours / per_line:.1f}x   (target >= 10x)")
    print(f"ratio ours/(b) = {ours / ceiling:.0%}    (target >= 50%)")
    if samples:
        print(f"latency at {args.rate} lines/s over {args.seconds:g} s ({len(samples)} lines): "
              f"p50 {percentile(samples, 50):.1f} ms, p99 {percentile(samples, 99):.1f} ms, "
              f"max {max(samples):.1f} ms   (target p99 <= {100 if args.redis else 50} ms)")
    if not args.redis:
        print_capture_overhead(args.lines, args.width)


def compare_stores(args: argparse.Namespace) -> None:
    """Throughput on the SQLite store as a ratio of the memory store's, then latency on
    both, each measured in alternating rounds (a fresh server each), with the load
    average before and after: on a shared machine the load moves both stores' figures."""
    print(f"loadavg at start: {_loadavg()}", flush=True)
    figures: dict[str, list[float]] = {"memory": [], "sqlite": []}
    for _ in range(args.rounds):
        for store in ("memory", "sqlite"):
            with our_server(None, store) as (url, _):
                figures[store].append(raw_client_throughput(url, args.lines, args.width))
            print(f"  {store:6s} {figures[store][-1]:12,.0f} lines/s", flush=True)
    ratios = [s / m for s, m in zip(figures["sqlite"], figures["memory"], strict=True)]
    for store, values in figures.items():
        print(f"{store + ' store, raw client':32s} {statistics.median(values):12,.0f} lines/s "
              f"median of {len(values)} ({min(values):,.0f}-{max(values):,.0f}); "
              f"{args.lines:,} lines of {args.width} B")
    print(f"ratio sqlite/memory = {statistics.median(ratios):.0%} median of the rounds' "
          f"ratios ({min(ratios):.0%}-{max(ratios):.0%})    (target >= 70%)")
    print(f"loadavg after throughput: {_loadavg()}", flush=True)
    p99s: dict[str, list[float]] = {"memory": [], "sqlite": []}
    for _ in range(args.rounds):
        for store in ("memory", "sqlite"):
            with our_server(None, store) as (url, _):
                samples = latency(url, url, args.rate, args.seconds)
            p99s[store].append(percentile(samples, 99))
            print(f"  {store:6s} latency at {args.rate} lines/s over {args.seconds:g} s "
                  f"({len(samples)} lines): p50 {percentile(samples, 50):.1f} ms, "
                  f"p99 {p99s[store][-1]:.1f} ms, max {max(samples):.1f} ms", flush=True)
    for store, values in p99s.items():
        print(f"{store + ' store, p99 latency':32s} {statistics.median(values):9.1f} ms "
              f"median of {len(values)} ({min(values):.1f}-{max(values):.1f})"
              + ("    (target p99 <= 50 ms)" if store == "sqlite" else ""))
    print(f"loadavg at end: {_loadavg()}")


def first_line_ms(url: str, job: str, samples: int) -> list[float]:
    """Milliseconds from sending Start to receiving the run's first line, ``samples``
    times (one run at a time, each waited for)."""
    client = connect(url)
    got = threading.Event()
    client.on("output", lambda batch: got.set())
    times: list[float] = []
    for _ in range(samples):
        got.clear()
        t0 = time.perf_counter()
        client.call("start", {"job": job})
        if not got.wait(30):
            raise RuntimeError(f"{job}: no first line within 30 s")
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.05)  # its end announced before the next Start
    client.disconnect()
    return times


def latency_during(url: str, flood_job: str | None, rate: int, seconds: float) -> list[float]:
    """The ticker's print->receipt latencies while ``flood_job`` floods (watched by
    a client of its own), or with no flood (None)."""
    if flood_job is None:
        return latency(url, url, rate, seconds)
    flooder = connect(url)
    flooder.on("output", lambda batch: None)
    run_id = flooder.call("start", {"job": flood_job, "params": {
        "lines": 100_000_000, "width": 60}})["run_id"]
    time.sleep(0.5)  # the flood under way
    try:
        return latency(url, url, rate, seconds)
    finally:
        flooder.call("stop", {"run_id": run_id})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and httpx.get(
                f"{url}/api/runs/{run_id}", timeout=10).json()["state"] not in (
                    "stopped", "failed", "succeeded"):
            time.sleep(0.1)
        flooder.disconnect()


def compare_isolation(args: argparse.Namespace) -> None:
    """Process jobs against thread jobs, on one server, in alternating rounds, with
    the load average before and after: throughput of a flood as a ratio, the time
    from Start to the first line, and a ticker's p99 latency during a flood in a
    thread job and in a process job against no flood."""
    print(f"loadavg at start: {_loadavg()}", flush=True)
    ratios: list[float] = []
    first: dict[str, list[float]] = {"thread": [], "process": []}
    p99s: dict[str, list[float]] = {"quiet": [], "thread": [], "process": []}
    with our_server(None) as (url, _):
        first_line_ms(url, "first_line_process", 3)  # the zygote started, modules warm
        for round_ in range(1, args.rounds + 1):
            thread = raw_client_throughput(url, args.lines, args.width, job="flood")
            process = raw_client_throughput(url, args.lines, args.width,
                                            job="flood_in_process")
            ratios.append(process / thread)
            print(f"  round {round_}: flood thread {thread:,.0f} lines/s, process "
                  f"{process:,.0f} lines/s, ratio {process / thread:.0%}", flush=True)
            for kind in ("thread", "process"):
                times = first_line_ms(url, f"first_line_{kind}", 20)
                first[kind].extend(times)
                print(f"  round {round_}: Start to first line, {kind} job: median "
                      f"{statistics.median(times):.1f} ms ({min(times):.1f}-{max(times):.1f})",
                      flush=True)
            for kind, flood_job in (("quiet", None), ("thread", "flood"),
                                    ("process", "flood_in_process")):
                samples = latency_during(url, flood_job, args.rate, args.seconds)
                p99s[kind].append(percentile(samples, 99))
                print(f"  round {round_}: ticker p99 with {kind} flood: "
                      f"{p99s[kind][-1]:.1f} ms ({len(samples)} lines)", flush=True)
    print(f"loadavg at end: {_loadavg()}")
    print(f"flood throughput process/thread = {statistics.median(ratios):.0%} median of "
          f"{len(ratios)} rounds ({min(ratios):.0%}-{max(ratios):.0%})    (target >= 80%); "
          f"{args.lines:,} lines of {args.width} B")
    for kind, times in first.items():
        print(f"Start to first line, {kind} job: median {statistics.median(times):.1f} ms, "
              f"p90 {percentile(times, 90):.1f} ms of {len(times)}"
              + ("    (target median <= 150 ms)" if kind == "process" else ""))
    quiet = statistics.median(p99s["quiet"])
    for kind, values in p99s.items():
        print(f"ticker p99, {kind + (' flood' if kind != 'quiet' else ''):14s} "
              f"{statistics.median(values):7.1f} ms median of {len(values)} "
              f"({min(values):.1f}-{max(values):.1f}); {statistics.median(values) / quiet:.1f}x "
              "quiet" + ("    (target process flood within 1.5x of quiet)"
                         if kind == "process" else ""))


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def print_capture_overhead(lines: int, width: int) -> None:
    plain, printed, stored = capture_overhead(lines, width)
    print(f"capture: {lines:,} prints into io.StringIO {plain:.2f} s (median of 5 rounds); "
          f"captured, median of the rounds' ratios: job done {printed:.2f}x "
          f"(target <= 1.5x), all stored {stored:.2f}x")


def _has_wsaccel() -> bool:
    try:
        import wsaccel  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
