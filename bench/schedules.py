"""Schedules at scale: 1,000 schedules fire at the same instant, every few seconds; how late
does each run start after its due time, on one web process and on two sharing Redis?

    .venv/bin/python bench/schedules.py                  # 1,000 schedules, 4 ticks each
    .venv/bin/python bench/schedules.py --schedules 200 --ticks 3 --interval 5

Every process is real and the benchmark's own: a redis-server (tests/redis_server.py) and
``flask-realtime run`` web processes (login off, ``JOBS=bench.schedules``). The schedules
are written straight into Redis, each of its own user (the per-user run limit is not
what is measured; ``RUNS_TOTAL`` is raised for the same reason), all on one interval
and one anchor, so that every tick brings 1,000 fires due at the same second: the worst
case. Each run is ``bench_tick``, which prints one line. For each run the benchmark reads
``created_at`` (its record made: the fire claimed, the schedule saved, the run created)
and ``started_at`` (its job's thread running) and subtracts the due time.

Figures per configuration: p50 and p99 of the lateness of every run, per tick and over
all ticks (the spread is the ticks' min..max), the runs made per due time (must be
exactly one per schedule: the exactly-once check at scale), and the baseline of the same
run: one process's p99 against two processes'. Target: p99 < 1 s.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, redis_server
from flask_realtime import Running, job

JOB = "bench_tick"


@job(name=JOB)
def bench_tick(running: Running) -> None:
    """One line: the run itself costs next to nothing; its start is what is measured."""
    print("tick")


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def measure(processes: int, schedules: int, ticks: int, interval: int) -> dict[str, object]:
    """Start ``processes`` web processes on a fresh Redis, write the schedules, wait for
    ``ticks`` ticks, and return the lateness figures."""
    from tests.processes import ROOT, WebProcess

    from flask_realtime.core.runs import Run
    from flask_realtime.core.schedules import Schedule
    from flask_realtime.store.redis import RedisStore

    with redis_server() as redis, tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "REDIS_URL": redis.url, "SECRET_KEY": "bench-secret",
               "FLASK_REALTIME_LOGIN_REQUIRED": "false", "FLASK_REALTIME_JOBS": "bench.schedules",
               "FLASK_REALTIME_WEBEX_ENV_FILE": '""', "FLASK_REALTIME_RUNS_TOTAL": "100000",
               "FLASK_REALTIME_INSTANCE_PATH": str(Path(scratch) / "instance"),
               "FLASK_REALTIME_SCHEDULE_MIN_INTERVAL_SECONDS": "1",
               "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
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
            deadline = last_due + interval + 60
            while time.time() < deadline:
                runs = [r for r in store.list_runs(limit=10 * schedules * ticks)
                        if r.schedule_id and r.started_at]
                if len(runs) >= schedules * ticks:
                    break
                time.sleep(0.5)
            for n in range(schedules):  # no more fires while the figures are read
                store.delete_schedule(f"bench{n:05d}")
            runs = [r for r in store.list_runs(limit=10 * schedules * ticks) if r.schedule_id]
        finally:
            store.close()
            for process in web:
                process.kill()
    # Each fire makes one run (overlap "allow"), so a schedule's k-th run, by creation,
    # is its k-th tick's; more runs than ticks would be a fire started twice.
    per_tick: dict[float, list[tuple[float, float]]] = {}
    mine: dict[str | None, list[Run]] = {}
    for run in runs:
        mine.setdefault(run.schedule_id, []).append(run)
    doubled = sum(max(len(made) - ticks, 0) for made in mine.values())
    for made in mine.values():
        made.sort(key=lambda r: r.created_at)
        for k, run in enumerate(made[:ticks]):
            due = first + k * interval
            started = _epoch(run.started_at) if run.started_at else math.inf
            per_tick.setdefault(due, []).append((_epoch(run.created_at) - due, started - due))
    ticks_seen = sorted(per_tick)[:ticks]
    made = [lateness for due in ticks_seen for lateness in per_tick[due]]
    return {
        "processes": processes, "runs": len(runs), "expected": schedules * ticks,
        "doubled": doubled,
        "ticks": [(len(per_tick[due]), percentile([c for c, _s in per_tick[due]], 50),
                   percentile([s for _c, s in per_tick[due]], 50),
                   percentile([s for _c, s in per_tick[due]], 99)) for due in ticks_seen],
        "created_p50": percentile([c for c, _s in made], 50) if made else math.nan,
        "created_p99": percentile([c for c, _s in made], 99) if made else math.nan,
        "started_p50": percentile([s for _c, s in made], 50) if made else math.nan,
        "started_p99": percentile([s for _c, s in made], 99) if made else math.nan,
    }


def report(figures: dict[str, object]) -> None:
    """Print one configuration's figures."""
    print(f"\n{figures['processes']} web process(es): {figures['runs']} runs of "
          f"{figures['expected']} expected, {figures['doubled']} fires started twice")
    ticks = figures["ticks"]
    assert isinstance(ticks, list)
    for i, (count, created50, started50, started99) in enumerate(ticks, 1):
        print(f"  tick {i}: {count} runs; record made p50 {created50 * 1000:.0f} ms; "
              f"started p50 {started50 * 1000:.0f} ms, p99 {started99 * 1000:.0f} ms")
    p99s = [t[3] for t in ticks]
    print(f"  all ticks: record made p50 {float(figures['created_p50']) * 1000:.0f} ms "  # type: ignore[arg-type]
          f"p99 {float(figures['created_p99']) * 1000:.0f} ms; "  # type: ignore[arg-type]
          f"started p50 {float(figures['started_p50']) * 1000:.0f} ms "  # type: ignore[arg-type]
          f"p99 {float(figures['started_p99']) * 1000:.0f} ms "  # type: ignore[arg-type]
          f"(per-tick p99 {min(p99s) * 1000:.0f}..{max(p99s) * 1000:.0f} ms)")


def main() -> None:
    """Measure one process, then two, and print the figures and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=4)
    parser.add_argument("--interval", type=int, default=10, help="seconds between fires")
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; loadavg at start: {_loadavg()}; "
          f"{args.schedules} schedules every {args.interval} s, {args.ticks} ticks each; "
          f"{os.cpu_count()} CPUs")
    one = measure(1, args.schedules, args.ticks, args.interval)
    report(one)
    two = measure(2, args.schedules, args.ticks, args.interval)
    report(two)
    ratio = float(two["started_p99"]) / float(one["started_p99"])  # type: ignore[arg-type]
    print(f"\ntwo processes' p99 / one process's p99 (the baseline): {ratio:.2f}")
    target = max(float(one["started_p99"]), float(two["started_p99"]))  # type: ignore[arg-type]
    print(f"target p99 < 1 s: {'met' if target < 1 else 'NOT met'}; "
          f"loadavg at end: {_loadavg()}")


if __name__ == "__main__":
    main()
