"""Flood: one job prints a lot as fast as it can; does another user's run suffer?

    .venv/bin/python bench/flood.py                # 1 GB flood (100-character lines)
    .venv/bin/python bench/flood.py --gb 0.2       # quicker

Measured in the same run, against the same server: the p99 print->receipt latency of
a ``ticker`` run at 1,000 lines/s with no flood (baseline), then the same while the
flood runs (target: within 2x); and the server's RSS every half second while the flood
runs (bounded by RETENTION_LINES, not by the flood's size). A raw client watches the
flood too, reading as fast as it can, so the flood's delivery costs what it would.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from bench.load import server
from bench.sio import Client, rss_mb


async def ticker_latency(url: str, rate: int, seconds: float) -> list[float]:
    client = await Client.connect(url, stamps=True)
    ack = await client.call("start", {"job": "ticker", "params": {
        "rate": rate, "seconds": seconds}})
    lines = int(rate * seconds)
    deadline = time.monotonic() + seconds + 60
    while client.last.get(ack["run_id"], 0) < lines and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not client.errors, client.errors[:3]
    await client.close()
    return client.latencies


async def flood_and_measure(url: str, pid: int, lines: int, width: int, rate: int,
                            seconds: float) -> dict[str, float]:
    watcher = await Client.connect(url)
    ack = await watcher.call("start", {"job": "flood", "params": {
        "lines": lines, "width": width}})
    run_id = ack["run_id"]
    rss: list[float] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            rss.append(rss_mb(pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    t0 = time.monotonic()
    while watcher.last.get(run_id, 0) < min(lines, 20_000):  # the flood is under way
        await asyncio.sleep(0.05)
    latencies = await ticker_latency(url, rate, seconds)
    during = watcher.last.get(run_id, 0)
    while watcher.states.get(run_id) not in ("succeeded", "failed", "stopped"):
        await asyncio.sleep(0.2)
    flood_wall = time.monotonic() - t0
    while watcher.last.get(run_id, 0) < lines and not watcher.closed.is_set():
        await asyncio.sleep(0.2)
    stop.set()
    await sampler
    await watcher.close()
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "max": max(latencies), "flood_lines_during": during, "flood_wall": flood_wall,
            "watched": watcher.last.get(run_id, 0), "seq_errors": len(watcher.errors),
            "rss_start": rss[0], "rss_peak": max(rss), "rss_end": rss[-1],
            "rss_series": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="gigabytes the flood prints")
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--retention", type=int, default=100_000)
    args = parser.parse_args()
    lines = int(args.gb * 1e9 / (args.width + 1))
    env = {"FLASK_REALTIME_RETENTION_LINES": str(args.retention)}
    with server(env) as (url, pid):
        idle_rss = rss_mb(pid)
        base = asyncio.run(ticker_latency(url, args.rate, args.seconds))
        flood = asyncio.run(flood_and_measure(url, pid, lines, args.width, args.rate,
                                              args.seconds))
    b99 = percentile(base, 99)
    print(f"flood: {lines:,} lines of {args.width} characters ({args.gb:g} GB) in "
          f"{flood['flood_wall']:.1f} s, watched by a raw client: {flood['watched']:,.0f} "
          f"lines received, seq errors {flood['seq_errors']:.0f}")
    print(f"ticker {args.rate} lines/s for {args.seconds:g} s, p99 latency: no flood "
          f"{b99:.1f} ms (p50 {percentile(base, 50):.1f}); during the flood "
          f"{flood['p99']:.1f} ms (p50 {flood['p50']:.1f}, max {flood['max']:.1f}); "
          f"ratio {flood['p99'] / b99:.1f}x (target <= 2x)")
    series = " ".join(f"{v:.0f}" for v in flood["rss_series"][::max(1, len(
        flood["rss_series"]) // 20)])
    print(f"server RSS MiB: idle {idle_rss:.0f}, flood start {flood['rss_start']:.0f}, "
          f"peak {flood['rss_peak']:.0f}, end {flood['rss_end']:.0f} (retention "
          f"{args.retention:,} lines); samples: {series}")


if __name__ == "__main__":
    main()
