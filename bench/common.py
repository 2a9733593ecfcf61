"""Helpers shared by the benchmarks: server subprocesses, Redis, figures.

Ports and readiness polls are the tests' (tests/processes.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import ROOT, free_port, wait_http, wait_until
from tests.redis_server import RedisServer


@contextmanager
def server_process(args: list[str], env: dict[str, str] | None = None,
                   ready_path: str = "/healthz") -> Iterator[str]:
    """Run ``python args…`` with ``{port}`` filled in; yield its base URL once it answers."""
    with spawn_server(args, env, ready_path) as (url, _proc):
        yield url


@contextmanager
def spawn_server(args: list[str], env: dict[str, str] | None = None,
                 ready_path: str = "/healthz") -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As :func:`server_process`, yielding the process too (for its pid)."""
    port = free_port()
    # This checkout's package first, whatever the virtualenv has installed (a worktree's
    # bench run with another checkout's .venv measures the worktree's code).
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
                **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, *[a.format(port=port) for a in args]], cwd=ROOT, env=full_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if ready_path:
            wait_http(url + ready_path, proc=proc)
        else:  # a plain websockets server: accepting connections is all there is to see
            wait_until(lambda: accepts(port), url, proc=proc)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the benchmark's own (free port, temp dir, AOF ``everysec``, as
    deployed; never the machine's Redis), for the length of the block. The tests' own
    launcher: it can also be killed and started again (bench/faults.py)."""
    data = tempfile.mkdtemp(prefix="bench-redis-")
    server = RedisServer(Path(data)).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
