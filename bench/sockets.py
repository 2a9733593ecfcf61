"""Idle sockets per web process, and runs with watchers, on gunicorn as deployed
(docs/deployment.md, "The web tier"; docs/performance.md, "Sockets per process").

    .venv/bin/python bench/sockets.py --idle 500,1000,5000          # idle sockets
    .venv/bin/python bench/sockets.py --idle 0 --runs 100 --watchers 3 --rounds 3
    .venv/bin/python bench/sockets.py --idle 1000 --threads 100     # the old --threads
    .venv/bin/python bench/sockets.py --idle 0 --threads 6000 --runs 100 --watchers 3 \
        --rounds 3 --against main                                    # and main, alternately
    .venv/bin/python bench/sockets.py --idle 5000 --threads 6000 --nginx 2   # through nginx

Each measure starts a fresh gunicorn (``-c python:flask_realtime.web.gunicorn_conf -k
gthread -w 1``, ``--threads`` as given, else the settings module's), reads the worker's
RSS and thread count, connects the idle sockets (bench/sio.py's client), holds them
through a server ping cycle (25 s), and reads both again: the peak RSS and threads
while held, per socket. A socket counts as held when it is still connected at the end
and answers a call. Runs and watchers: bench/load.py's measure, on the same server,
with the CPU seconds of the worker and of this client (one asyncio process holding
every watcher: if it were the bottleneck, its CPU would be near a core's). ``--against
REV`` runs each round of runs on the ``src`` of git revision REV too (bench/stream.py's
``old_tree``, through PYTHONPATH), first one then the other, alternating.
``--nginx N`` puts N such gunicorns on one redis-server behind nginx as deployed
(scripts/stack.py's configuration, ``ip_hash``), the clients connecting from 250
loopback addresses so that they spread over the processes; RSS, threads and CPU are
then the workers' sums. ``--stack-kib`` sets ``threading.stack_size`` in the worker
before it starts a thread (bench/gunicorn_stack.py), to compare RSS per socket with the
default stack.
The load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.processes import wait_until

from bench.common import spawn_server
from bench.load import gather_limited, runs_with_watchers
from bench.sio import Client, rss_mb
from bench.stream import old_tree


def threads(pid: int | Sequence[int]) -> int:
    """The number of threads of a process, or the sum of several (Linux)."""
    if not isinstance(pid, int):
        return sum(threads(p) for p in pid)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int | Sequence[int]) -> float:
    """User and system CPU seconds a process, or several, used (Linux)."""
    if not isinstance(pid, int):
        return sum(cpu_seconds(p) for p in pid)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(master: int) -> int:
    """gunicorn's one worker: the master's child."""
    def child() -> int | None:
        with open(f"/proc/{master}/task/{master}/children") as f:
            pids = f.read().split()
        return int(pids[0]) if pids else None
    wait_until(lambda: child() is not None, f"gunicorn {master}'s worker")
    pid = child()
    assert pid is not None
    return pid


@contextmanager
def gunicorn(threads_arg: int | None, stack_kib: int | None,
             extra_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """gunicorn with our settings module, one gthread worker: (url, the worker's pid)."""
    conf = "bench.gunicorn_stack" if stack_kib else "flask_realtime.web.gunicorn_conf"
    args = ["-m", "gunicorn", "-c", f"python:{conf}", "-k", "gthread", "-w", "1",
            "-b", "127.0.0.1:{port}"]
    if threads_arg:
        args += ["--threads", str(threads_arg), "--worker-connections", str(threads_arg + 100)]
    env = {"FLASK_REALTIME_LOGIN_REQUIRED": "false", "FLASK_REALTIME_JOBS": "bench.bench_jobs",
           "FLASK_REALTIME_SECRET_KEY": "bench-" + "x" * 40, **extra_env}
    if stack_kib:
        env["BENCH_STACK_KIB"] = str(stack_kib)
    with tempfile.TemporaryDirectory(prefix="bench-sockets-") as instance, spawn_server(
            [*args, "flask_realtime.web.wsgi:app"],
            {**env, "FLASK_REALTIME_INSTANCE_PATH": instance}) as (url, proc):
        worker = worker_pid(proc.pid)
        try:
            yield url, worker
        finally:  # the worker's graceful shutdown may outlast spawn_server's 10 s
            proc.terminate()
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                print("gunicorn did not stop within 120 s; killed", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker, signal.SIGKILL)


@contextmanager
def behind_nginx(processes: int, threads_arg: int | None, extra_env: dict[str, str],
                 sockets: int) -> Iterator[tuple[str, list[int]]]:
    """``processes`` gunicorns as :func:`gunicorn` starts them, on one redis-server of
    the bench's own, behind nginx as deployed (scripts/stack.py ``render_nginx``, the
    template's ``ip_hash``; ``worker_connections`` for ``sockets`` websockets): (nginx's
    url, the workers' pids)."""
    from scripts.stack import render_nginx
    from tests.processes import free_port, wait_http

    from bench.common import redis_server

    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_server())
        env = {**extra_env, "REDIS_URL": redis.url, "FLASK_REALTIME_PROXY_COUNT": "1"}
        backends = [stack.enter_context(gunicorn(threads_arg, None, env))
                    for _ in range(processes)]
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-nginx-")))
        port = free_port()
        conf = render_nginx(directory, port, [int(url.rsplit(":", 1)[1]) for url, _ in backends],
                            worker_connections=2 * sockets + 1024)
        nginx = stack.enter_context(subprocess.Popen(
            ["/usr/sbin/nginx", "-p", str(directory / "nginx"), "-c", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        stack.callback(nginx.terminate)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc=nginx)
        yield url, [pid for _, pid in backends]


#: Through nginx: the clients' addresses, so that ip_hash (first three octets) spreads
#: them over the web processes.
LOCAL_HOSTS = [f"127.0.{k}.1" for k in range(1, 251)]


@contextmanager
def server(args: argparse.Namespace, extra_env: dict[str, str],
           sockets: int) -> Iterator[tuple[str, list[int], Sequence[str]]]:
    """One gunicorn, or with ``--nginx N`` N of them behind nginx: (url, the workers'
    pids, the addresses clients connect from)."""
    if args.nginx:
        with behind_nginx(args.nginx, args.threads, extra_env, sockets) as (url, pids):
            yield url, pids, LOCAL_HOSTS
    else:
        with gunicorn(args.threads, args.stack_kib, extra_env) as (url, pid):
            yield url, [pid], ()


async def idle(url: str, pid: int | Sequence[int], count: int, hold: float,
               local_hosts: Sequence[str] = ()) -> dict[str, Any]:
    """``count`` idle sockets connected and held ``hold`` s: memory and threads (of
    ``pid``, or the sum of several)."""
    before, threads_before = rss_mb(pid), threads(pid)
    t0 = time.monotonic()
    clients = await gather_limited(
        [_connect(url, local_hosts[i % len(local_hosts)] if local_hosts else None)
         for i in range(count)], limit=100)
    connected = [c for c in clients if c is not None]
    connect_time = time.monotonic() - t0
    rss, nthreads = [rss_mb(pid)], [threads(pid)]
    end = time.monotonic() + hold
    while time.monotonic() < end:
        await asyncio.sleep(1)
        rss.append(rss_mb(pid))
        nthreads.append(threads(pid))
    spread = [threads(p) for p in pid] if not isinstance(pid, int) else [threads(pid)]
    alive = [c for c in connected if not c.closed.is_set()]
    answers = await gather_limited([_call(c) for c in alive], limit=100)
    answered = sum(1 for a in answers if a == {"ok": True})
    await gather_limited([c.close() for c in connected], limit=200)
    return {"count": count, "connected": len(connected), "alive": len(alive),
            "answered": answered, "connect_s": connect_time, "rss_before": before,
            "rss_peak": max(rss), "threads_before": threads_before,
            "threads_peak": max(nthreads),
            "kib_per_socket": (max(rss) - before) * 1024 / max(1, len(connected)),
            "threads_per_socket": (max(nthreads) - threads_before) / max(1, len(connected)),
            "spread": spread}


async def _connect(url: str, local_host: str | None = None) -> Client | None:
    """A connected client, or None when the server did not take it within 60 s."""
    try:
        return await asyncio.wait_for(Client.connect(url, local_host=local_host), 60)
    except Exception:  # refused, timed out or cut: counted as not connected
        return None


async def _call(client: Client) -> object:
    """The answer to a harmless call, or None."""
    try:
        return await client.call("unwatch", {"run_id": "x"})
    except Exception:  # counted as not answered
        return None


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", default="500,1000",
                        help="comma-separated counts of idle sockets (0: none)")
    parser.add_argument("--hold", type=float, default=30)
    parser.add_argument("--threads", type=int, default=None,
                        help="gunicorn --threads (default: the settings module's)")
    parser.add_argument("--stack-kib", type=int, default=None)
    parser.add_argument("--nginx", type=int, default=0, metavar="N",
                        help="N web processes on Redis behind nginx (0: one gunicorn)")
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--watchers", type=int, default=3)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", default=None,
                        help="git revision whose src runs each round of runs too")
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {loadavg()}, "
          f"ulimit -n {os.sysconf('SC_OPEN_MAX')}", flush=True)
    limits = {"FLASK_REALTIME_RUNS_PER_USER": str(args.runs + 10),
              "FLASK_REALTIME_RUNS_TOTAL": str(args.runs + 10)}
    with contextlib.ExitStack() as stack:
        trees: list[tuple[str, dict[str, str]]] = [("this tree", {})]
        if args.against:
            src = stack.enter_context(old_tree(args.against))
            root = str(Path(__file__).resolve().parent.parent)
            trees.append((args.against, {"PYTHONPATH": f"{src}{os.pathsep}{root}"}))
        rounds(args, limits, trees)
    print(f"end: load average {loadavg()}")


def rounds(args: argparse.Namespace, limits: dict[str, str],
           trees: list[tuple[str, dict[str, str]]]) -> None:
    """The measures, ``args.rounds`` times; the runs on each of ``trees`` in turn."""
    for number in range(args.rounds):
        for count in [int(c) for c in args.idle.split(",") if int(c)]:
            with server(args, limits, count) as (url, pids, hosts):
                r = asyncio.run(idle(url, pids, count, args.hold, hosts))
            print(f"idle {r['count']:.0f}: connected {r['connected']:.0f}, held "
                  f"{r['alive']:.0f}, answered {r['answered']:.0f}; connect "
                  f"{r['connect_s']:.1f} s; RSS {r['rss_before']:.0f} -> {r['rss_peak']:.0f} MiB "
                  f"({r['kib_per_socket']:.0f} KiB a socket); threads "
                  f"{r['threads_before']:.0f} -> {r['threads_peak']:.0f} "
                  f"({r['threads_per_socket']:.2f} a socket"
                  + (f"; by process {r['spread']}" if len(r["spread"]) > 1 else "")
                  + f"); load {loadavg()}", flush=True)
        if not args.runs:
            continue
        order = trees if number % 2 == 0 else trees[::-1]
        for name, tree_env in order:
            with server(args, {**limits, **tree_env}, args.runs * args.watchers) as (
                    url, pid, hosts):
                worker_before, client_before = cpu_seconds(pid), time.process_time()
                try:
                    r = asyncio.run(runs_with_watchers(url, pid, args.runs, args.watchers,
                                                       args.rate, args.seconds, hosts))
                except Exception as exc:  # the other tree's round still runs
                    print(f"round {number + 1}, {name}: failed ({exc!r}); load {loadavg()}",
                          flush=True)
                    continue
                worker_cpu = cpu_seconds(pid) - worker_before
                client_cpu = time.process_time() - client_before
            print(f"round {number + 1}, {name}: runs {args.runs} x {args.watchers} watchers: "
                  f"complete {r['complete']:.0f}/{r['watchers']:.0f}, seq errors "
                  f"{r['seq_errors']:.0f}, lines {r['lines']:,.0f}; p50 {r['p50']:.1f} p99 "
                  f"{r['p99']:.1f} max {r['max']:.1f} ms; RSS peak {r['rss_peak']:.0f} MiB; "
                  f"{r['wall']:.1f} s (all started in {r['started']:.1f} s, p99 of the lines "
                  f"after: {r['steady_p99']:.1f} ms); CPU worker {worker_cpu:.1f} s, "
                  f"client {client_cpu:.1f} s; load {loadavg()}", flush=True)
            for other in r["others"][:10]:
                print(f"  not a ticker's line: {other}", flush=True)


if __name__ == "__main__":
    main()
