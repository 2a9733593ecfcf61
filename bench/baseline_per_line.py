"""Baseline (a): the 2019 seed's design, one Socket.IO emit per printed line.

The seed redirected a thread's stdout to a pipe and emitted each line as it came.
This server keeps that shape (threading mode, as the product uses) so the benchmark
compares designs, not servers. Run: python bench/baseline_per_line.py PORT
"""

from __future__ import annotations

import sys
import threading
import time

from flask import Flask
from flask_socketio import SocketIO

app = Flask(__name__)
socketio = SocketIO(app, async_mode="threading", cors_allowed_origins="*")


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@socketio.on("start")
def start(data: dict) -> dict:
    lines, width = int(data["lines"]), int(data["width"])
    pad = "x" * max(width - 9, 0)

    def produce() -> None:
        for i in range(1, lines + 1):
            socketio.emit("output", {"stream": "stdout", "text": f"{i:08d} {pad}"})

    threading.Thread(target=produce, daemon=True).start()
    return {"ok": True}


@socketio.on("ticker")
def ticker(data: dict) -> dict:
    """``rate`` lines per second for ``seconds``, each the time it was printed, one emit
    each: the latency baseline."""
    rate, seconds = int(data["rate"]), float(data["seconds"])

    def produce() -> None:
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            socketio.emit("output", {"stream": "stdout", "text": f"{time.time():.6f} {i}"})

    threading.Thread(target=produce, daemon=True).start()
    return {"ok": True}


if __name__ == "__main__":
    socketio.run(app, port=int(sys.argv[1]), allow_unsafe_werkzeug=True, log_output=False)
