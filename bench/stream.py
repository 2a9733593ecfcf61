"""Streaming benchmark: throughput, latency and capture cost, against baselines in the same run.

    .venv/bin/python bench/stream.py                 # full: 1,000,000 lines
    .venv/bin/python bench/stream.py --lines 200000  # quicker
    .venv/bin/python bench/stream.py --redis         # the same through Redis and two processes
    .venv/bin/python bench/stream.py --store sqlite  # SQLite store against the memory store
    .venv/bin/python bench/stream.py --against d096271  # and an older tree, alternately
    .venv/bin/python bench/stream.py --isolation process --against f970409  # the same

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
import subprocess
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

from bench.common import ROOT, percentile, redis_server, server_process, spawn_server

SERVER_ENV = {
    "FLASK_REALTIME_RETENTION_LINES": "3000000",
    "FLASK_REALTIME_JOBS": "bench.bench_jobs",
    "FLASK_REALTIME_LOGIN_REQUIRED": "false",
    "FLASK_REALTIME_DEMO": "false",
}


@contextlib.contextmanager
def our_server(redis_url: str | None, store: str = "sqlite",
               src: str | None = None) -> Iterator[tuple[str, str]]:
    """(url to start runs on, url to watch from): the same process, or two with Redis.
    Embedded, ``store`` is STORE ("sqlite", the default, or "memory", in a fresh
    instance folder). ``src``: the package from another tree (see :func:`old_tree`)."""
    path = {"PYTHONPATH": f"{src}{os.pathsep}{ROOT}"} if src else {}
    if redis_url is None:
        with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance, \
                spawn_server(["-m", "flask_realtime.cli", "run", "--port", "{port}"], {
                    **SERVER_ENV, **path, "FLASK_REALTIME_STORE": store,
                    "FLASK_REALTIME_INSTANCE_PATH": instance}) as (url, proc):
            SERVER_PIDS[url] = proc.pid
            yield url, url
        return
    env = {**SERVER_ENV, **path, "REDIS_URL": redis_url}
    with spawn_server(["-m", "flask_realtime.cli", "run", "--port", "{port}"], env) as (a, pa), \
            spawn_server(["-m", "flask_realtime.cli", "run", "--port", "{port}"], env) as (b, pb):
        SERVER_PIDS.update({a: pa.pid, b: pb.pid})
        yield a, b


#: The process of each server :func:`our_server` started, by URL (for its CPU time).
SERVER_PIDS: dict[str, int] = {}


def cpu_seconds(*urls: str) -> float:
    """User and system CPU seconds used so far by the servers at ``urls`` (/proc)."""
    total = 0
    for pid in {SERVER_PIDS[url] for url in urls}:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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
        # Uncompressed, as the console's websockets are by default (WEBSOCKET_COMPRESSION):
        # websockets would negotiate permessage-deflate with its own server.
        async with websockets.connect(url, max_size=None, compression=None) as ws:
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


def per_line_latency(rate: int, seconds: float) -> list[float]:
    """Baseline (a)'s latency: the same ticker, one emit per line (bench/baseline_per_line.py)."""
    samples: list[float] = []
    expected = int(rate * seconds)
    done = threading.Event()
    with server_process(["bench/baseline_per_line.py", "{port}"]) as url:
        client = connect(url)

        def on_output(line: dict) -> None:
            samples.append((time.time() - float(line["text"].partition(" ")[0])) * 1000)
            if len(samples) >= expected:
                done.set()

        client.on("output", on_output)
        client.call("ticker", {"rate": rate, "seconds": seconds})
        done.wait(seconds + 30)
        client.disconnect()
    return samples


@contextlib.contextmanager
def old_tree(rev: str) -> Iterator[str]:
    """The ``src`` folder of git revision ``rev`` (``git archive``), for the length of
    the block: today's code as the baseline of the same run."""
    with tempfile.TemporaryDirectory(prefix="bench-tree-") as folder:
        archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield str(Path(folder) / "src")


def capture_overhead(lines: int, width: int, rounds: int = 7) -> tuple[
        list[float], list[float], list[float]]:
    """Captured printing against printing into io.StringIO, in alternating rounds.

    Each round times the plain job and then the captured one, right after each other,
    so that both see the same machine; the figure is the median of the per-round
    ratios (a shared 2-core machine drifts by 30% from one second to the next).
    Returns each round's (plain seconds), (ratio until the job's last print returned),
    (ratio until every line was stored).
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
    return plain, printed, captured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--width", type=int, default=60)
    parser.add_argument("--baseline-lines", type=int, default=200_000,
                        help="lines for the per-line baseline (it is slow; rate is what counts: "
                             "measured over 15 s at most)")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--slow-rate", type=int, default=10,
                        help="the second latency measure: a quiet run")
    parser.add_argument("--slow-seconds", type=float, default=20)
    parser.add_argument("--against", metavar="REV",
                        help="also measure the server of git revision REV (e.g. d096271), "
                             "alternately with ours, and print the throughput ratio")
    parser.add_argument("--capture-rounds", type=int, default=7,
                        help="rounds of the capture measure (0: none)")
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
    parser.add_argument("--flood-watcher", choices=["own", "same"], default="own",
                        help="with --isolation: the flood's client in a process of its "
                             "own (default), or in this one beside the ticker's")
    parser.add_argument("--watch-flood", nargs=2, metavar=("URL", "JOB"),
                        help=argparse.SUPPRESS)  # latency_during's flood client
    args = parser.parse_args()
    if args.watch_flood:
        watch_flood(*args.watch_flood)
        return
    if args.isolation:
        compare_isolation(args)
        return
    if args.capture_only:
        print_capture_overhead(args.lines, args.width, args.capture_rounds)
        return
    if args.store:
        compare_stores(args)
        return
    print(f"client: python-socketio {version('python-socketio')}, websocket transport; "
          f"wsaccel={'yes' if _has_wsaccel() else 'no'}; cpus={os.cpu_count()}")
    print(f"loadavg at start: {_loadavg()}", flush=True)
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server()).url if args.redis else None
        variants: list[tuple[str, str | None]] = [("ours", None)]
        if args.against:
            variants.append((f"today ({args.against})", stack.enter_context(
                old_tree(args.against))))
        stream_rounds(args, redis_url, variants)
    print(f"loadavg at end: {_loadavg()}", flush=True)
    if not args.redis and args.capture_rounds > 0:  # --capture-rounds 0: streaming only
        print_capture_overhead(args.lines, args.width, args.capture_rounds)


def _spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    return (f"{fmt.format(statistics.median(values))} median of {len(values)} "
            f"({fmt.format(min(values))}-{fmt.format(max(values))})")


def stream_rounds(args: argparse.Namespace, redis_url: str | None,
                  variants: list[tuple[str, str | None]]) -> None:
    """Throughput and latency of each variant (ours, and today's tree with --against),
    of the one-emit-per-line baseline's latency and of the raw websockets ceiling, in
    alternating rounds (a fresh server each), then medians, spreads and ratios."""
    rates = [(args.rate, args.seconds), (args.slow_rate, args.slow_seconds)]
    where = "Redis A -> B" if redis_url else "embedded, SQLite"
    throughput: dict[str, list[float]] = {name: [] for name, _ in variants}
    cpu: dict[str, list[float]] = {name: [] for name, _ in variants}  # server µs a line
    ceiling: list[float] = []
    embedded: list[float] = []
    p50: dict[tuple[str, int], list[float]] = {}
    p99: dict[tuple[str, int], list[float]] = {}

    def record(name: str, rate: int, seconds: float, samples: list[float]) -> None:
        if len(samples) < rate * seconds * 0.9:
            print(f"  {name}: only {len(samples)} of {int(rate * seconds)} lines arrived")
        if not samples:
            return
        p50.setdefault((name, rate), []).append(percentile(samples, 50))
        p99.setdefault((name, rate), []).append(percentile(samples, 99))
        print(f"  {name:24s} latency at {rate:5d} lines/s over {seconds:g} s: "
              f"p50 {p50[name, rate][-1]:6.2f} ms, p99 {p99[name, rate][-1]:6.2f} ms, "
              f"max {max(samples):6.1f} ms", flush=True)

    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds} (loadavg {_loadavg()})", flush=True)
        for name, src in variants if round_ % 2 == 0 else variants[::-1]:  # no order bias
            if redis_url:  # the embedded figure of this same round, for the ratio
                with our_server(None, src=src) as (url, _):
                    if name == "ours":
                        embedded.append(raw_client_throughput(url, args.lines, args.width))
            with our_server(redis_url, src=src) as (start_url, watch_url):
                if round_ == 0 and name == "ours":
                    figure = ours_throughput(start_url, watch_url, args.lines, args.width)
                    print(f"  {'ours, python-socketio':24s} {figure:12,.0f} lines/s", flush=True)
                used = cpu_seconds(start_url, watch_url)
                throughput[name].append(raw_client_throughput(
                    start_url, args.lines, args.width, watch_url if redis_url else None))
                cpu[name].append((cpu_seconds(start_url, watch_url) - used) / args.lines * 1e6)
                print(f"  {name + ', raw client':24s} {throughput[name][-1]:12,.0f} lines/s; "
                      f"server CPU {cpu[name][-1]:.2f} us a line", flush=True)
                for rate, seconds in rates:
                    record(name, rate, seconds, latency(start_url, watch_url, rate, seconds))
        if not redis_url:
            for rate, seconds in rates:
                record("(a) one emit per line", rate, seconds, per_line_latency(rate, seconds))
            ceiling.append(ceiling_throughput(args.lines, args.width))
            print(f"  {'(b) raw websockets':24s} {ceiling[-1]:12,.0f} lines/s", flush=True)

    print(f"summary ({where}; {args.lines:,} lines of {args.width} B; "
          f"latency: print time to receipt by the python-socketio client):")
    for name, values in throughput.items():
        print(f"  {name + ', raw client':28s} {_spread(values)} lines/s; server CPU "
              f"{_spread(cpu[name], '{:.2f}')} us a line")
    ours = throughput["ours"]
    for name, values in list(throughput.items())[1:]:
        ratios = [a / b for a, b in zip(ours, values, strict=True)]
        print(f"  ratio ours / {name} = {_spread(ratios, '{:.0%}')}    (target >= 100%); "
              "server CPU a line, ours / theirs = " + _spread(
                  [a / b for a, b in zip(cpu["ours"], cpu[name], strict=True)], "{:.0%}"))
    if embedded:
        ratios = [a / b for a, b in zip(ours, embedded, strict=True)]
        print(f"  ratio Redis/embedded = {_spread(ratios, '{:.0%}')}    (target >= 50%)")
    if ceiling:
        print(f"  {'(b) raw websockets ceiling':28s} {_spread(ceiling)} lines/s")
        ratios = [a / b for a, b in zip(ours, ceiling, strict=True)]
        print(f"  ratio ours/(b) = {_spread(ratios, '{:.0%}')}    (target >= 50%, aim 70%)")
    for (name, rate), values in p99.items():
        target = ""
        if name == "ours" and rate == args.rate:
            target = "    (target p99 <= 10 ms)" if redis_url else \
                "    (target p50 <= 1 ms, p99 <= 5 ms)"
        print(f"  {name:24s} at {rate:5d} lines/s: p50 {_spread(p50[name, rate], '{:.2f}')} ms, "
              f"p99 {_spread(values, '{:.2f}')} ms{target}")
    if not redis_url:
        per_line = per_line_throughput(args.baseline_lines, args.width)
        print(f"  {'(a) one emit per line':28s} {per_line:12,.0f} lines/s (rate over at most "
              f"15 s of {args.baseline_lines:,} lines); ratio ours/(a) = "
              f"{statistics.median(ours) / per_line:.1f}x   (target >= 10x)")


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


#: A process that is not ours keeping one core busy (:func:`beside_busy_core`).
BUSY_CORE = [sys.executable, "-c", "while True: pass"]


def beside_busy_core(url: str, rate: int, seconds: float) -> list[float]:
    """The ticker's print->receipt latencies, no flood, while a process that has
    nothing to do with the server (:data:`BUSY_CORE`) keeps one core busy: what this
    machine does to the ticker's tail whenever anything else runs, the floor under
    the "within 1.5x of quiet" target (docs/performance.md, "A busy core that is not
    ours")."""
    busy = subprocess.Popen(BUSY_CORE)
    try:
        time.sleep(0.3)  # under way
        return latency(url, url, rate, seconds)
    finally:
        busy.kill()
        busy.wait()


def latency_during(url: str, flood_job: str | None, rate: int, seconds: float,
                   flood_watcher: str = "own") -> list[float]:
    """The ticker's print->receipt latencies while ``flood_job`` floods (watched by
    a client of its own), or with no flood (None).

    ``flood_watcher``: "own", the flood's client runs in a process of its own, as
    another user's browser would (:func:`watch_flood`); "same", in this process,
    beside the ticker's client: then the ticker's latency also counts the time its
    client waits for this process's GIL while the flood's batches are decoded here
    (how it was measured before 2026-12-02)."""
    if flood_job is None:
        return latency(url, url, rate, seconds)
    if flood_watcher == "same":
        flooder = connect(url)
        flooder.on("output", lambda batch: None)
        run_id = flooder.call("start", {"job": flood_job, "params": {
            "lines": 100_000_000, "width": 60}})["run_id"]
        try:
            time.sleep(0.5)  # the flood under way
            return latency(url, url, rate, seconds)
        finally:
            flooder.call("stop", {"run_id": run_id})
            _wait_ended(url, run_id)
            flooder.disconnect()
    watcher = subprocess.Popen(
        [sys.executable, __file__, "--watch-flood", url, flood_job],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert watcher.stdin is not None and watcher.stdout is not None
    try:
        run_id = watcher.stdout.readline().strip()
        if not run_id:
            raise RuntimeError(f"the flood's watcher did not start {flood_job}")
        time.sleep(0.5)  # the flood under way
        return latency(url, url, rate, seconds)
    finally:
        watcher.stdin.close()  # the watcher stops the run and disconnects
        watcher.wait(60)
        if run_id:
            _wait_ended(url, run_id)


def watch_flood(url: str, job: str) -> None:
    """The flood's client (``--watch-flood URL JOB``, run by :func:`latency_during`):
    start ``job``, print its run id, read its output until stdin closes, stop it."""
    flooder = connect(url)
    flooder.on("output", lambda batch: None)
    run_id = flooder.call("start", {"job": job, "params": {
        "lines": 100_000_000, "width": 60}})["run_id"]
    print(run_id, flush=True)
    sys.stdin.read()
    flooder.call("stop", {"run_id": run_id})
    flooder.disconnect()


def _wait_ended(url: str, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and httpx.get(
            f"{url}/api/runs/{run_id}", timeout=10).json()["state"] not in (
                "stopped", "failed", "succeeded"):
        time.sleep(0.1)


def compare_isolation(args: argparse.Namespace) -> None:
    """Process jobs against thread jobs, on one server, in rounds, with the load
    average before and after: throughput of a flood as a ratio, the time from Start to
    the first line, and a ticker's p99 latency during a flood in a thread job and in a
    process job against no flood. With ``--against REV``, the same on a server of that
    revision too (a server each, kept for all rounds), alternately in each round."""
    print(f"loadavg at start: {_loadavg()}; the flood's client in "
          f"{'a process of its own' if args.flood_watcher == 'own' else 'this process'}",
          flush=True)
    with contextlib.ExitStack() as stack:
        names = ["ours"] + ([f"{args.against}"] if args.against else [])
        urls: dict[str, str] = {}
        for name in names:
            src = stack.enter_context(old_tree(name)) if name != "ours" else None
            urls[name] = stack.enter_context(our_server(None, src=src))[0]
            first_line_ms(urls[name], "first_line_process", 3)  # the zygote started
        figures = {name: _IsolationFigures() for name in names}
        for round_ in range(1, args.rounds + 1):
            for name in names if round_ % 2 else names[::-1]:  # no order bias
                label = f"round {round_}{'' if len(names) == 1 else ', ' + name}"
                figures[name].measure(urls[name], args, label)
    print(f"loadavg at end: {_loadavg()}")
    for name in names:
        if len(names) > 1:
            print(f"-- {name}:")
        figures[name].summary(args)


def _beside(kind: str) -> str:
    """What the ticker ran beside, for a kind of :class:`_IsolationFigures`."""
    return f"{kind} flood" if kind in ("thread", "process") else kind


class _IsolationFigures:
    """One server's figures of :func:`compare_isolation`, round by round."""

    def __init__(self) -> None:
        self.ratios: list[float] = []
        self.first: dict[str, list[float]] = {"thread": [], "process": []}
        kinds = ("quiet", "busy core", "thread", "process")
        self.p99s: dict[str, list[float]] = {kind: [] for kind in kinds}
        self.p50s: dict[str, list[float]] = {kind: [] for kind in kinds}

    def measure(self, url: str, args: argparse.Namespace, label: str) -> None:
        thread = raw_client_throughput(url, args.lines, args.width, job="flood")
        process = raw_client_throughput(url, args.lines, args.width, job="flood_in_process")
        self.ratios.append(process / thread)
        print(f"  {label}: flood thread {thread:,.0f} lines/s, process "
              f"{process:,.0f} lines/s, ratio {process / thread:.0%}", flush=True)
        for kind in ("thread", "process"):
            times = first_line_ms(url, f"first_line_{kind}", 20)
            self.first[kind].extend(times)
            print(f"  {label}: Start to first line, {kind} job: median "
                  f"{statistics.median(times):.1f} ms ({min(times):.1f}-{max(times):.1f})",
                  flush=True)
        for kind, flood_job in (("quiet", None), ("busy core", None), ("thread", "flood"),
                                ("process", "flood_in_process")):
            samples = (beside_busy_core(url, args.rate, args.seconds) if kind == "busy core"
                       else latency_during(url, flood_job, args.rate, args.seconds,
                                           args.flood_watcher))
            self.p99s[kind].append(percentile(samples, 99))
            self.p50s[kind].append(percentile(samples, 50))
            print(f"  {label}: ticker p99 with {_beside(kind)}: "
                  f"{self.p99s[kind][-1]:.1f} ms, p50 {self.p50s[kind][-1]:.1f} ms "
                  f"({len(samples)} lines)", flush=True)

    def summary(self, args: argparse.Namespace) -> None:
        ratios, p99s = self.ratios, self.p99s
        print(f"flood throughput process/thread = {statistics.median(ratios):.0%} median of "
              f"{len(ratios)} rounds ({min(ratios):.0%}-{max(ratios):.0%})    (target >= "
              f"80%); {args.lines:,} lines of {args.width} B")
        for kind, times in self.first.items():
            print(f"Start to first line, {kind} job: median {statistics.median(times):.1f} "
                  f"ms, p90 {percentile(times, 90):.1f} ms of {len(times)}"
                  + ("    (target median <= 150 ms)" if kind == "process" else ""))
        quiet = statistics.median(p99s["quiet"])
        for kind, values in p99s.items():
            rounds = [v / q for v, q in zip(values, p99s["quiet"], strict=True)]
            print(f"ticker p99, {_beside(kind):14s} "
                  f"{statistics.median(values):7.1f} ms median of {len(values)} "
                  f"({min(values):.1f}-{max(values):.1f}); "
                  f"{statistics.median(values) / quiet:.1f}x quiet (each round against "
                  f"its own quiet: {_spread(rounds, '{:.1f}x')})"
                  + ("    (target process flood within 1.5x of quiet)"
                     if kind == "process" else "")
                  + ("    (no flood: a process that is not ours busy on one core)"
                     if kind == "busy core" else ""))
        print("ticker p50, quiet / busy core / thread flood / process flood: " + " / ".join(
            _spread(self.p50s[kind], "{:.1f}") for kind in self.p50s) + " ms")


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def print_capture_overhead(lines: int, width: int, rounds: int = 7) -> None:
    print(f"loadavg at start: {_loadavg()}", flush=True)
    plain, printed, stored = capture_overhead(lines, width, rounds)
    print(f"capture: {lines:,} prints into io.StringIO {_spread(plain, '{:.2f}')} s; "
          f"captured, the rounds' ratios: job done {_spread(printed, '{:.2f}x')} "
          f"(target <= 1.3x), all stored {_spread(stored, '{:.2f}x')}")
    print(f"loadavg at end: {_loadavg()}")


def _has_wsaccel() -> bool:
    try:
        import wsaccel  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
