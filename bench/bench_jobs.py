"""Jobs the benchmarks start (loaded with FLASK_REALTIME_JOBS=bench.bench_jobs)."""

from __future__ import annotations

import time

from flask_realtime import Running, job
from flask_realtime.jobs import builtin


@job
def ticker(running: Running, rate: int = 1000, seconds: float = 10.0) -> None:
    """Print `time.time()` at `rate` lines per second: the client measures print->receipt."""
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        if not running():
            return
        target = start + i * interval
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        print(f"{time.time():.6f} {i}")


# -- process isolation (bench/stream.py --isolation process) ------------------------------

@job(isolation="process")
def flood_in_process(running: Running, lines: int = 100_000, width: int = 60) -> int:
    """The built-in ``flood``, in a process of its own."""
    return builtin.flood(running, lines, width)


@job(isolation="thread")
def first_line_thread(running: Running) -> None:
    """One line at once, in a thread: the time from Start to the first line."""
    print("first")


@job(isolation="process")
def first_line_process(running: Running) -> None:
    """One line at once, in a process of its own."""
    print("first")
