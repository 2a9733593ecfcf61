"""Baseline (b), the ceiling: the same batches over a raw `websockets` connection.

Each message is the same JSON our server sends (an ``output`` payload of about 64 KiB),
without Socket.IO, Flask or capture. Run: python bench/baseline_websockets.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

import websockets


async def handler(ws: websockets.ServerConnection) -> None:
    request = json.loads(await ws.recv())
    lines, width = int(request["lines"]), int(request["width"])
    pad = "x" * max(width - 9, 0)
    batch: list[dict[str, str]] = []
    size = 0
    first = 1
    for i in range(1, lines + 1):
        text = f"{i:08d} {pad}"
        batch.append({"stream": "stdout", "text": text})
        size += len(text)
        if size >= 65_536 or i == lines:
            await ws.send(json.dumps(["output", {"run_id": "r", "first_seq": first,
                                                 "lines": batch}], separators=(",", ":")))
            first, batch, size = i + 1, [], 0


async def main(port: int) -> None:
    async with websockets.serve(handler, "127.0.0.1", port, max_size=None):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
