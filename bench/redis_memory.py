"""Redis memory per run: a 100,000-line run of 60-byte lines, chunks stored as plain
JSON (before issue 15) and zlib-compressed (now), on the same Redis in the same run.

    .venv/bin/python bench/redis_memory.py
    .venv/bin/python bench/redis_memory.py --lines 100000 --runs 3

Figures: ``INFO memory`` used_memory before and after storing the run (the delta is
what the run costs Redis), and ``MEMORY USAGE`` of its stream key. Lines go in as the
capture pump sends them (batches of up to 2,000 lines, MAX_BATCH_LINES).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import redis_server
from flask_realtime.core.runs import Run, RunState
from flask_realtime.store.redis import RedisStore


def one_run(url: str, lines: int, compress: bool, tag: str) -> tuple[int, int]:
    """(used_memory delta, MEMORY USAGE of the stream) for one run, in bytes."""
    store = RedisStore(url, listen=False, compress=compress)
    try:
        store.redis.flushall()
        run_id = f"bench-{tag}"
        store.create_run(Run(id=run_id, job="flood", title="Flood", user="bench", params={},
                             state=RunState.RUNNING))
        before = int(store.redis.info("memory")["used_memory"])
        for first in range(1, lines + 1, 2000):
            batch = [("stdout", f"{i:08d} " + "x" * 51, "\n")
                     for i in range(first, min(first + 2000, lines + 1))]
            store.append_output(run_id, batch, 1, writer="w", offset=first - 1)
        after = int(store.redis.info("memory")["used_memory"])
        usage = int(store.redis.memory_usage(f"fr:out:{run_id}", samples=0))
        return after - before, usage
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[bool, list[tuple[int, int]]] = {False: [], True: []}
    with redis_server() as server:
        for n in range(args.runs):  # alternate, so both see the same machine
            for compress in (False, True):
                figures[compress].append(one_run(server.url, args.lines, compress, str(n)))
    mb = 1024 * 1024
    print(f"{args.lines:,} lines of 60 bytes, {args.runs} runs each, medians (spread):")
    for compress, label in ((False, "plain JSON (before)"), (True, "zlib level 1 (now)")):
        delta = [d for d, _ in figures[compress]]
        usage = [u for _, u in figures[compress]]
        print(f"  {label:20s} used_memory +{statistics.median(delta) / mb:6.2f} MB "
              f"({min(delta) / mb:.2f}-{max(delta) / mb:.2f}); MEMORY USAGE of the stream "
              f"{statistics.median(usage) / mb:6.2f} MB")
    ratio = (statistics.median(d for d, _ in figures[False])
             / statistics.median(d for d, _ in figures[True]))
    print(f"  ratio before/after: {ratio:.1f}x less Redis memory per run")


if __name__ == "__main__":
    main()
