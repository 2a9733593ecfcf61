"""A real redis-server for the tests: its own port, its own data directory, AOF on.

Never the machine's Redis on 6379: CI on a fresh machine has none, and tests must not
touch whatever a developer keeps there.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis
from tests.processes import free_port, wait_until


class RedisServer:
    """redis-server on ``port`` (a free one unless told) with its data in ``data_dir``.

    :meth:`start` returns once it answers PING; :meth:`stop` and :meth:`kill` end it
    and it can be started again on the same port and data (AOF replayed).
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed: run scripts/bootstrap --test "
                               "(apt-get install redis-server)")
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
             "--appendfsync", "everysec", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def pong() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        with redis.Redis(port=self.port, socket_connect_timeout=0.5) as client:
            wait_until(pong, f"redis-server on port {self.port}", 15, self.proc,
                       interval=0.02)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)
