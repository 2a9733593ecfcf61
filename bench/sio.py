"""A minimal asyncio Socket.IO client on ``websockets``, for benchmarks with many clients.

python-socketio's client starts threads per connection and per message; hundreds of
them on a 2-core machine measure the client, not the server. This speaks Engine.IO 4
directly (see bench/stream.py, raw_client_throughput): ``0`` open, ``40`` connect,
``42[...]`` event, ``42<id>[...]``/``43<id>[...]`` call and ack, ``2``/``3`` ping/pong.
It checks every ``output`` batch's seq against the last one it had (with ``skipped``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import websockets


class SeqError(AssertionError):
    pass


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.last: dict[str, int] = {}  # run id -> last seq received
        self.errors: list[str] = []
        self.latencies: list[float] = []  # ms, for lines that start with a time.time()
        self.received: list[float] = []  # time.time() at which each of those arrived
        self.others: list[str] = []  # with stamps: "run seq: text" of the lines without one
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.states: dict[str, str] = {}
        self.closed = asyncio.Event()
        self._next_id = 1
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, *, stamps: bool = False,
                      local_host: str | None = None) -> Client:
        """Connect to ``url``; from the address ``local_host`` (one of 127.0.0.0/8) when
        given: nginx's ``ip_hash`` spreads clients by their address's first three
        octets, so a bench through nginx gives its clients 127.0.K.1 addresses."""
        extra: dict[str, Any] = {"local_addr": (local_host, 0)} if local_host else {}
        ws = await websockets.connect(
            url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
            max_size=None, open_timeout=60, ping_interval=None, close_timeout=0.5,
            # BENCH_WS_COMPRESSION=none: the client does not offer permessage-deflate
            compression=None if os.environ.get("BENCH_WS_COMPRESSION") == "none" else "deflate",
            **extra)
        assert str(await ws.recv()).startswith("0")
        await ws.send("40")
        while not str(await ws.recv()).startswith("40"):
            pass
        client = cls(ws)
        client.stamps = stamps
        client._reader = asyncio.create_task(client._read())
        return client

    stamps = False

    async def call(self, event: str, data: Any, timeout: float = 30) -> Any:
        ack_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = future
        await self.ws.send(f"42{ack_id}" + json.dumps([event, data]))
        return await asyncio.wait_for(future, timeout)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message == "2":
                    await self.ws.send("3")
                elif message.startswith('42["output"'):
                    self._output(json.loads(message[2:])[1])
                elif message.startswith('42["state"'):
                    record = json.loads(message[2:])[1]
                    self.states[record["id"]] = record["state"]
                elif message.startswith('42["states"'):  # several changes at once
                    for record in json.loads(message[2:])[1]:
                        self.states[record["id"]] = record["state"]
                elif message.startswith("43"):
                    i = 2
                    while message[i].isdigit():
                        i += 1
                    future = self.acks.pop(int(message[2:i]), None)
                    if future is not None and not future.done():
                        values = json.loads(message[i:])
                        future.set_result(values[0] if values else None)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def _output(self, batch: dict[str, Any]) -> None:
        run_id = batch["run_id"]
        expected = self.last.get(run_id, 0) + 1 + batch.get("skipped", 0)
        if batch["first_seq"] != expected:
            self.errors.append(f"{run_id}: first_seq {batch['first_seq']}, expected {expected}")
        self.last[run_id] = batch["first_seq"] + len(batch["lines"]) - 1
        if self.stamps:
            now = time.time()
            for index, line in enumerate(batch["lines"]):
                stamp, _, _ = line["text"].partition(" ")
                try:
                    self.latencies.append((now - float(stamp)) * 1000)
                    self.received.append(now)
                except ValueError:
                    self.others.append(f"{run_id} {batch['first_seq'] + index}: "
                                       f"{line.get('stream')} {line['text']}")

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await self._reader


def rss_mb(pid: int | Sequence[int]) -> float:
    """Resident memory of a process, or the sum of several, in MiB (Linux)."""
    if not isinstance(pid, int):
        return sum(rss_mb(p) for p in pid)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
