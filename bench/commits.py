"""What one commit of the SQLite store costs a run that prints a line at a time.

    .venv/bin/python bench/commits.py                      # this tree, 3 rounds
    .venv/bin/python bench/commits.py --against main       # and main's, alternately

Each round opens a fresh database and stores one line per ``append_output`` call at
``--rate`` calls a second for ``--seconds`` (what a quiet run costs the store at 1,000
lines/s: a transaction per line), timing each call; then the same while another thread
stores a flood in batches of 2,000 lines. Printed: p50, p99, p99.9 and the largest
call, the WAL file's size at the end, and the flood's lines/s. Every round runs in a
process of its own (``PYTHONPATH`` picks the tree), trees alternating; the load average
is printed at the start and the end (docs/performance.md, "Checkpoints off the commit
path").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, percentile
from bench.stream import _loadavg, old_tree


def measure(rate: int, seconds: float, flood: bool) -> dict[str, float]:
    """One round in this process (the tree on ``sys.path``): per-call milliseconds."""
    from flask_realtime.core.runs import Run
    from flask_realtime.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory(prefix="bench-commits-") as folder:
        path = Path(folder) / "flask-realtime.sqlite3"
        store = SQLiteStore(path)
        for run_id in ("quiet", "flood"):
            store.create_run(Run(id=run_id, job="ticker", title="Ticker", user="bench",
                                 params={}))
        stop, flooded = threading.Event(), [0]
        batch = [("stdout", f"flood {i:08d} " + "y" * 45, "\n") for i in range(2000)]

        def flood_run() -> None:
            while not stop.is_set():
                store.append_output("flood", batch, 0)
                flooded[0] += len(batch)

        flooder = threading.Thread(target=flood_run) if flood else None
        started = time.perf_counter()
        if flooder is not None:
            flooder.start()
        times, due = [], time.perf_counter()
        for i in range(int(rate * seconds)):
            due += 1 / rate
            t0 = time.perf_counter()
            store.append_output("quiet", [("stdout", f"tick {i} " + "x" * 50, "\n")], 0)
            times.append((time.perf_counter() - t0) * 1000)
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        stop.set()
        if flooder is not None:
            flooder.join()
        elapsed = time.perf_counter() - started
        wal = path.with_name(path.name + "-wal")
        wal_mb = wal.stat().st_size / 1e6 if wal.exists() else 0.0
        store.close()
    return {"p50": percentile(times, 50), "p99": percentile(times, 99),
            "p999": percentile(times, 99.9), "max": max(times), "wal_mb": wal_mb,
            "flood": flooded[0] / elapsed}


def run_round(src: str | None, rate: int, seconds: float, flood: bool) -> dict[str, float]:
    """:func:`measure` in a process of its own, on the package of ``src`` (None: ours)."""
    env = {**os.environ}
    if src:
        env["PYTHONPATH"] = f"{src}{os.pathsep}{ROOT}"
    out = subprocess.run(
        [sys.executable, __file__, "--measure", json.dumps([rate, seconds, flood])],
        env=env, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also a git revision's store")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        rate, seconds, flood = json.loads(args.measure)
        print(json.dumps(measure(rate, seconds, flood)))
        return
    print(f"loadavg at start: {_loadavg()}; {args.rate} single-line appends/s for "
          f"{args.seconds:g} s a round", flush=True)
    trees: dict[str, str | None] = {"ours": None}
    figures: dict[tuple[str, bool], list[dict[str, float]]] = {}
    with contextlib.ExitStack() as stack:
        if args.against:
            trees[args.against] = stack.enter_context(old_tree(args.against))
        for round_ in range(1, args.rounds + 1):
            names = list(trees) if round_ % 2 else list(trees)[::-1]  # no order bias
            for flood in (False, True):
                for name in names:
                    r = run_round(trees[name], args.rate, args.seconds, flood)
                    figures.setdefault((name, flood), []).append(r)
                    print(f"  round {round_}, {name}, {'during a flood' if flood else 'quiet'}: "
                          f"p50 {r['p50']:.3f} p99 {r['p99']:.3f} p99.9 {r['p999']:.3f} "
                          f"max {r['max']:.2f} ms; WAL {r['wal_mb']:.1f} MB"
                          + (f"; flood {r['flood']:,.0f} lines/s" if flood else ""),
                          flush=True)
    print(f"loadavg at end: {_loadavg()}")
    for (name, flood), rounds in figures.items():
        def spread(key: str, rounds: list[dict[str, float]] = rounds) -> str:
            values = [r[key] for r in rounds]
            form = "{:,.0f}" if key == "flood" else "{:.2f}"
            return (form.format(statistics.median(values)) + f" ({form.format(min(values))}-"
                    f"{form.format(max(values))})")
        print(f"{name}, {'during a flood' if flood else 'quiet'}: p99 {spread('p99')}, "
              f"p99.9 {spread('p999')}, max {spread('max')} ms; WAL {spread('wal_mb')} MB"
              + (f"; flood {spread('flood')} lines/s" if flood else ""))


if __name__ == "__main__":
    main()
