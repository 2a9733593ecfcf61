"""Jobs the benchmarks start (loaded with FLASK_REALTIME_JOBS=bench.bench_jobs)."""

from __future__ import annotations

import time

from flask_realtime import Running, job


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
