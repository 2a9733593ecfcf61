"""Schedules at scale: 1,000 schedules fire at the same instant, every few seconds; how late
does each run start after its due time, on one web process and on two sharing Redis?

    .venv/bin/python bench/schedules.py                  # 1,000 schedules, 4 ticks each
    .venv/bin/python bench/schedules.py --schedules 200 --ticks 3 --interval 5
    .venv/bin/python bench/schedules.py --ticks 3 --against main --rounds 3

Every process is real and the benchmark's own: a redis-server (tests/redis_server.py) and
``flask-realtime run`` web processes (login off, ``JOBS=bench.schedules``). The schedules
are written straight into Redis, each of its own user (the per-user run limit is not
what is measured; ``RUNS_TOTAL`` is raised for the same reason), all on one interval
and one anchor, so that every tick brings 1,000 fires due at the same second: the worst
case. Each run is ``bench_tick``, which prints one line: the time (``time.time()``) at
which its own code began. For each run the benchmark reads ``created_at`` (its record
made: the fire claimed, the schedule saved, the run created), ``started_at`` (the record
moved to ``running``: since the batched first move, when its batch was moved and its
thread started, not yet when the thread got the CPU) and the time its job printed (the
job's code running: the real start, the headline figure), and subtracts the due time.

Figures per configuration: p50 and p99 of the lateness of every run, per tick and over
all ticks (the spread is the ticks' min..max), the runs made per due time (must be
exactly one per schedule: the exactly-once check at scale; a run doubled, missing, or
whose job never printed is counted), and the baseline of the same run: one process's
p99 against two processes'. With ``--against REV`` every configuration is also
measured on the ``src`` of git revision ``REV`` (``git archive``, as bench/stream.py
does), alternately, ``--rounds`` times. Target: p99 < 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, redis_server
from flask_realtime import Running, job

JOB = "bench_tick"


@job(name=JOB)
def bench_tick(running: Running) -> None:
    """One line, the time its code began: the run itself costs next to nothing; its
    start is what is measured."""
    print(f"tick {time.time():.6f}")


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _job_began(store: Any, run_id: str) -> float:
    """When the run's job began, as its line says (inf: it printed none)."""
    for _stream, text, *_rest in store.read_output(run_id, 0).lines:
        word = text.split()
        if len(word) == 2 and word[0] == "tick":
            return float(word[1])
    return math.inf


def measure(processes: int, schedules: int, ticks: int, interval: int,
            src: str | None = None) -> dict[str, object]:
    """Start ``processes`` web processes (on the package at ``src``, when given) on a
    fresh Redis, write the schedules, wait for ``ticks`` ticks, and return the lateness
    figures."""
    from tests.processes import ROOT, WebProcess

    from flask_realtime.core.runs import Run
    from flask_realtime.core.schedules import Schedule
    from flask_realtime.store.redis import P, RedisStore

    with redis_server() as redis, tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "REDIS_URL": redis.url, "SECRET_KEY": "bench-secret",
               "FLASK_REALTIME_LOGIN_REQUIRED": "false", "FLASK_REALTIME_JOBS": "bench.schedules",
               "FLASK_REALTIME_WEBEX_ENV_FILE": '""', "FLASK_REALTIME_RUNS_TOTAL": "100000",
               "FLASK_REALTIME_INSTANCE_PATH": str(Path(scratch) / "instance"),
               "FLASK_REALTIME_SCHEDULE_MIN_INTERVAL_SECONDS": "1",
               "PYTHONPATH": f"{src}{os.pathsep}{ROOT}" if src else str(ROOT),
               "PYTHONUNBUFFERED": "1"}
        web = [WebProcess(env, Path(scratch) / f"web{i}.log").start() for i in range(processes)]
        store = RedisStore(redis.url, listen=False)
        try:
            # The first tick far enough ahead for every write to land before it.
            anchor = float(math.ceil(time.time() / interval) * interval)
            while anchor - time.time() < 3:
                anchor += interval
            first = anchor
            last_due = first + (ticks - 1) * interval
            end_at = datetime.fromtimestamp(last_due, UTC).isoformat()  # exactly `ticks` fires
            for n in range(schedules):
                store.create_schedule(Schedule(
                    id=f"bench{n:05d}", user=f"bench-user-{n}", name=f"bench {n}", job=JOB,
                    interval=interval, anchor=anchor - interval, next_fire=first,
                    overlap="allow", end_at=end_at))
            # Every run ended (its line stored), seen with two cheap counts a second:
            # reading the runs while they fire would take CPU from the servers.
            deadline = last_due + interval + 60
            time.sleep(max(last_due - time.time(), 0))
            while time.time() < deadline:
                made, going = store.redis.zcard(P + "runs"), store.redis.scard(P + "active")
                if made >= schedules * ticks and going == 0:
                    break
                time.sleep(1)
            for n in range(schedules):  # no more fires while the figures are read
                store.delete_schedule(f"bench{n:05d}")
            runs = [r for r in store.list_runs(limit=10 * schedules * ticks) if r.schedule_id]
            began = {run.id: _job_began(store, run.id) for run in runs}
        finally:
            store.close()
            for process in web:
                process.kill()
    # Each fire makes one run (overlap "allow"), so a schedule's k-th run, by creation,
    # is its k-th tick's; more runs than ticks would be a fire started twice.
    # (record made, record moved running, job began), each minus the due time
    per_tick: dict[float, list[tuple[float, float, float]]] = {}
    mine: dict[str | None, list[Run]] = {}
    for run in runs:
        mine.setdefault(run.schedule_id, []).append(run)
    doubled = sum(max(len(made) - ticks, 0) for made in mine.values())
    missing = schedules * ticks - sum(min(len(made), ticks) for made in mine.values())
    for made in mine.values():
        made.sort(key=lambda r: r.created_at)
        for k, run in enumerate(made[:ticks]):
            due = first + k * interval
            started = _epoch(run.started_at) if run.started_at else math.inf
            per_tick.setdefault(due, []).append(
                (_epoch(run.created_at) - due, started - due, began[run.id] - due))
    ticks_seen = sorted(per_tick)[:ticks]
    made = [lateness for due in ticks_seen for lateness in per_tick[due]]

    def p(index: int, q: float, values: list[tuple[float, float, float]]) -> float:
        return percentile([v[index] for v in values], q) if values else math.nan

    return {
        "processes": processes, "runs": len(runs), "expected": schedules * ticks,
        "doubled": doubled, "missing": missing,
        "silent": sum(1 for _c, _s, b in made if b == math.inf),
        "ticks": [(len(per_tick[due]), p(0, 50, per_tick[due]), p(2, 50, per_tick[due]),
                   p(2, 99, per_tick[due])) for due in ticks_seen],
        "created_p50": p(0, 50, made), "created_p99": p(0, 99, made),
        "started_p50": p(1, 50, made), "started_p99": p(1, 99, made),
        "began_p50": p(2, 50, made), "began_p99": p(2, 99, made),
    }


def report(figures: dict[str, Any], name: str = "") -> None:
    """Print one configuration's figures."""
    print(f"\n{name}{figures['processes']} web process(es): {figures['runs']} runs of "
          f"{figures['expected']} expected, {figures['doubled']} fires started twice, "
          f"{figures['missing']} missing, {figures['silent']} whose job printed nothing; "
          f"loadavg {figures.get('load', '?')}")
    ticks = figures["ticks"]
    for i, (count, created50, began50, began99) in enumerate(ticks, 1):
        print(f"  tick {i}: {count} runs; record made p50 {created50 * 1000:.0f} ms; "
              f"job began p50 {began50 * 1000:.0f} ms, p99 {began99 * 1000:.0f} ms")
    p99s = [t[3] for t in ticks]
    print(f"  all ticks: record made p50 {figures['created_p50'] * 1000:.0f} ms "
          f"p99 {figures['created_p99'] * 1000:.0f} ms; "
          f"record running p50 {figures['started_p50'] * 1000:.0f} ms "
          f"p99 {figures['started_p99'] * 1000:.0f} ms; "
          f"job began p50 {figures['began_p50'] * 1000:.0f} ms "
          f"p99 {figures['began_p99'] * 1000:.0f} ms "
          f"(per-tick p99 {min(p99s) * 1000:.0f}..{max(p99s) * 1000:.0f} ms)")


def main() -> None:
    """Measure one process, then two (with ``--against``, each also on the other tree,
    alternately, ``--rounds`` times), and print the figures and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=4)
    parser.add_argument("--interval", type=int, default=10, help="seconds between fires")
    parser.add_argument("--against", metavar="REV",
                        help="also measure the src of this git revision, alternately")
    parser.add_argument("--rounds", type=int, default=1,
                        help="how many times each variant and configuration is measured")
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; loadavg at start: {_loadavg()}; "
          f"{args.schedules} schedules every {args.interval} s, {args.ticks} ticks each; "
          f"{os.cpu_count()} CPUs")
    from bench.stream import old_tree  # here: the web processes import this module

    with contextlib.ExitStack() as stack:
        variants: list[tuple[str, str | None]] = []
        if args.against:
            variants.append((args.against, stack.enter_context(old_tree(args.against))))
        variants.append(("ours", None))
        results: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for round_ in range(1, args.rounds + 1):
            for name, src in variants:
                for processes in (1, 2):
                    before = _loadavg()
                    figures = measure(processes, args.schedules, args.ticks, args.interval,
                                      src)
                    figures["load"] = f"{before.split()[0]} -> {_loadavg().split()[0]}"
                    report(figures, f"round {round_}, {name}: ")
                    results.setdefault((name, processes), []).append(figures)
    print("\nsummary (job began p99 per round; median, min..max):")
    worst = 0.0
    for (name, processes), measured in results.items():
        p99s = [float(f["began_p99"]) for f in measured]
        worst = max(worst, max(p99s)) if name == "ours" else worst
        exact = all(f["doubled"] == 0 and f["missing"] == 0 and f["silent"] == 0
                    for f in measured)
        print(f"  {name}, {processes} process(es): "
              + ", ".join(f"{v:.2f} s" for v in p99s)
              + f"; median {statistics.median(p99s):.2f} s ({min(p99s):.2f}..{max(p99s):.2f})"
              + f"; record made p99 median "
              f"{statistics.median(float(f['created_p99']) for f in measured):.2f} s"
              + ("; exactly once" if exact else "; NOT exactly once"))
    ours = {processes: statistics.median(float(f["began_p99"]) for f in results[("ours",
                                                                               processes)])
            for processes in (1, 2)}
    print(f"two processes' p99 / one process's p99 (ours, medians): {ours[2] / ours[1]:.2f}")
    print(f"target p99 < 1 s: {'met' if worst < 1 else 'NOT met'}; "
          f"loadavg at end: {_loadavg()}")


if __name__ == "__main__":
    main()
