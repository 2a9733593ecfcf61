"""Rendering benchmark: the console page in Chromium, rendering vs only counting lines.

    .venv/bin/python bench/render.py                  # 1,000,000 lines, 3 rounds of each
    .venv/bin/python bench/render.py --lines 200000 --rounds 1

Each round starts ``flood(lines, width=60)`` from the page and measures, in the
page's own clock, from the moment Start is pressed to the moment the last line is
in (``?render=0``: the page only counts the lines of each ``output`` batch) or
drawn on screen (the normal page). Both modes run against the same server
process, alternately; the figure is the ratio of the medians. The DOM node count
is sampled during every rendering round and read again at its end.

A second measure ("replay") opens an already finished run of the same size, so
the server sends from its log as fast as the page takes it: this is the page's
own ceiling, without the job's production rate in the way.

The server keeps every line (FLASK_REALTIME_RETENTION_LINES=3000000), so all of
them reach the page; Chromium is Debian's /usr/bin/chromium, headless.

``--store sqlite|memory|both`` measures only the replay, per store, of a finished
``flood(lines, width=60)`` run (issue 15): to the python-socketio client (websocket
transport; ``watch`` from seq 0, timed from the call to the last line's arrival) and
in Chromium (arrive only, and arrive + render). The SQLite replay is "after a
restart": the server that produced the run is stopped, and every measure is served by
a new server process on the same instance folder, so nothing of the run is in its
memory (the OS page cache still holds the file: dropping it needs root). The memory
store cannot survive a restart, so its replays come from the server that produced the
run. Stores alternate inside each round; the figure is the median, over rounds, of
the SQLite/memory ratio (target <= 1.5x).

    .venv/bin/python bench/render.py --store both --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import server_process
from bench.rss import run_to_end

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_ENV = {
    "FLASK_REALTIME_RETENTION_LINES": "3000000",
    "FLASK_REALTIME_LOGIN_REQUIRED": "false",
}
COUNT_NODES = """() => { const w = document.createTreeWalker(document, NodeFilter.SHOW_ALL);
                         let n = 0; while (w.nextNode()) n++; return n; }"""


def serve(port: int) -> None:
    """The server process: the app as ``flask-realtime run`` builds it."""
    import logging

    from flask_realtime.web.app import create_app

    logging.basicConfig(level=logging.WARNING)
    app = create_app()
    web = Path(__file__).resolve().parent.parent / "src" / "flask_realtime" / "web"
    if not (Path(app.root_path) / str(app.template_folder) / "index.html").exists():
        app.template_folder = str(web / "templates")  # the page's files live in web/
        app.static_folder = str(web / "static")
    app.extensions["socketio"].run(
        app, host="127.0.0.1", port=port, use_reloader=False, allow_unsafe_werkzeug=True,
        log_output=False)


def open_page(browser: Any, url: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.wait_for_selector("#conn.conn-connected")
    page.wait_for_selector("#job-select option[value=flood]", state="attached")
    return page


def wait_until(page: Any, expression: str, timeout: float, sample: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if sample is not None:
            sample()
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            state = page.evaluate(
                "() => { const s = window.flaskRealtime.session, v = window.flaskRealtime.viewer;"
                " return s && {lastSeq: s.lastSeq, heldEnd: s.heldEnd, detached: s.detached,"
                " follow: v.follow, held: s.lines.length, stats: window.flaskRealtime.stats}; }")
            raise RuntimeError(f"timed out waiting for {expression}; page: {state}")
        time.sleep(0.1)


def all_in(lines: int, render: bool) -> str:
    """JavaScript: true once line ``lines`` is drawn (render) or counted (?render=0)."""
    if render:
        return f"window.flaskRealtime.stats.renderedSeq >= {lines}"
    return f"(window.flaskRealtime.session || {{}}).lastSeq >= {lines}"


def live_round(browser: Any, base: str, lines: int, render: bool) -> dict[str, Any]:
    page = open_page(browser, base + ("/" if render else "/?render=0"))
    try:
        page.select_option("#job-select", "flood")
        page.fill("#param-lines", str(lines))
        page.fill("#param-width", "60")
        page.evaluate("window.flaskRealtime.stats.pressedAt = performance.now()")
        page.click("#start-btn")
        peak = [0]

        def sample() -> None:
            if render:
                peak[0] = max(peak[0], page.evaluate(COUNT_NODES))

        done = all_in(lines, render)
        wait_until(page, done, timeout=120, sample=sample)
        stats = page.evaluate("window.flaskRealtime.stats")
        end = stats["renderedAt"] if render else stats["lastAt"]
        nodes = page.evaluate(COUNT_NODES)
        record = page.evaluate(
            "fetch('/api/runs/' + window.flaskRealtime.session.runId).then(r => r.json())")
        return {
            "mode": "render" if render else "count",
            "seconds": (end - stats["pressedAt"]) / 1000,
            "lines_received": stats["lines"],
            "busy_ms": stats["busyMs"],
            "dom_nodes_end": nodes,
            "dom_nodes_peak": max(peak[0], nodes) if render else None,
            "run_id": record["id"],
            "job_seconds": _job_seconds(record),
        }
    finally:
        page.close()


def replay_round(browser: Any, base: str, run_id: str, lines: int, render: bool) -> float:
    """Seconds to take in (and draw) a finished run of ``lines`` lines from its start."""
    # cap above the run's size: the page then watches from seq 0, not only the tail
    page = open_page(browser, base + f"/?cap={lines + 1000}" + ("" if render else "&render=0"))
    try:
        page.evaluate(
            "id => { window.flaskRealtime.stats.pressedAt = performance.now();"
            " window.flaskRealtime.openRun(id); }", run_id)
        done = all_in(lines, render)
        wait_until(page, done, timeout=300)
        stats = page.evaluate("window.flaskRealtime.stats")
        end = stats["renderedAt"] if render else stats["lastAt"]
        return (end - stats["pressedAt"]) / 1000  # type: ignore[no-any-return]
    finally:
        page.close()


def sio_replay(url: str, run_id: str, lines: int) -> float:
    """Seconds for a python-socketio client to receive a finished run of ``lines`` lines
    from its start (``watch`` after seq 0), from the call to the last line's arrival."""
    import socketio

    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=20)
    done = threading.Event()
    last = [0]

    def on_output(batch: dict[str, Any]) -> None:
        if batch["run_id"] == run_id:
            last[0] = batch["first_seq"] + len(batch["lines"]) - 1
            if last[0] >= lines:
                done.set()

    client.on("output", on_output)
    try:
        t0 = time.perf_counter()
        client.call("watch", {"run_id": run_id, "after": 0}, timeout=30)
        if not done.wait(600):
            raise RuntimeError(f"replay: got up to seq {last[0]} of {lines}")
        return time.perf_counter() - t0
    finally:
        client.disconnect()


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def store_env(store: str, instance: str) -> dict[str, str]:
    return {**SERVER_ENV, "FLASK_REALTIME_STORE": store, "FLASK_REALTIME_INSTANCE_PATH": instance}


SERVE = ["bench/render.py", "--serve", "{port}"]
CLIENTS = ("python-socketio", "chromium count", "chromium render")


def compare_stores(args: argparse.Namespace) -> None:
    """The replay of a finished run per store (module docstring), printed with the load
    average at the start and the end."""
    from playwright.sync_api import sync_playwright

    stores = ["memory", "sqlite"] if args.store == "both" else [args.store]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; loadavg at start: {_loadavg()}; "
          f"cpus={os.cpu_count()}", flush=True)
    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        instances: dict[str, str] = {}
        run_ids: dict[str, str] = {}
        for store in stores:
            instances[store] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f"bench-replay-{store}-"))
            with contextlib.ExitStack() as server:
                url = server.enter_context(
                    server_process(SERVE, store_env(store, instances[store])))
                t0 = time.monotonic()
                record = run_to_end(url, {"lines": args.lines, "width": 60})
                assert record["state"] == "succeeded", record
                run_ids[store] = record["id"]
                print(f"  {store}: flood of {args.lines:,} lines finished in "
                      f"{time.monotonic() - t0:.0f} s", flush=True)
                if store == "memory":  # it cannot restart: it serves its own replays
                    urls[store] = url
                    stack.enter_context(server.pop_all())
            # sqlite: the producing server is stopped here
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        times: dict[tuple[str, str], list[float]] = {}
        for n in range(args.rounds):
            for client in CLIENTS:
                for store in stores:
                    with contextlib.ExitStack() as server:
                        url = urls.get(store) or server.enter_context(
                            server_process(SERVE, store_env(store, instances[store])))
                        if client == "python-socketio":
                            seconds = sio_replay(url, run_ids[store], args.lines)
                        else:
                            seconds = replay_round(browser, url, run_ids[store], args.lines,
                                                   render=client == "chromium render")
                    times.setdefault((client, store), []).append(seconds)
                    print(f"  round {n + 1} {client:15s} {store:6s} {seconds:6.2f} s", flush=True)
        browser.close()
    print(f"loadavg at end: {_loadavg()}")
    print(f"replay of a finished {args.lines:,}-line flood(width=60) run, "
          f"{args.rounds} rounds (SQLite: a new server process per measure):")
    for client in CLIENTS:
        for store in stores:
            values = times[(client, store)]
            print(f"  {client:15s} {store:6s} median {statistics.median(values):6.2f} s "
                  f"({min(values):.2f}-{max(values):.2f}), "
                  f"{args.lines / statistics.median(values):>9,.0f} lines/s")
        if len(stores) == 2:
            ratios = [s / m for s, m in zip(times[(client, "sqlite")], times[(client, "memory")],
                                            strict=True)]
            print(f"  {client:15s} ratio sqlite/memory {statistics.median(ratios):.2f}x median "
                  f"of the rounds' ratios ({min(ratios):.2f}-{max(ratios):.2f}x)"
                  f"    (target <= 1.5x)")
    if args.json:
        print(json.dumps({f"{c} {s}": v for (c, s), v in times.items()}, indent=2))


def _job_seconds(record: dict[str, Any]) -> float | None:
    from datetime import datetime

    if not record.get("started_at") or not record.get("ended_at"):
        return None
    start = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(record["ended_at"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def figure(label: str, seconds: float, lines: int, baseline: float | None = None) -> None:
    ratio = f"   ratio {seconds / baseline:.2f}x (target <= 2x)" if baseline else ""
    print(f"  {label} {seconds:6.2f} s {lines / seconds:>10,.0f} lines/s{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the raw rounds as JSON too")
    parser.add_argument(
        "--client-queue", type=int, default=None,
        help="the server's MAX_CLIENT_QUEUE (packets queued before a client counts as slow)")
    parser.add_argument(
        "--store", choices=["sqlite", "memory", "both"],
        help="only the replay of a finished run on this store (SQLite: after a restart), "
             "to python-socketio and Chromium; both: SQLite against memory, alternately")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.store:
        compare_stores(args)
        return

    from playwright.sync_api import sync_playwright

    env = dict(SERVER_ENV)
    if args.client_queue is not None:
        env["FLASK_REALTIME_MAX_CLIENT_QUEUE"] = str(args.client_queue)
    with server_process(["bench/render.py", "--serve", "{port}"], env) as base, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        rounds: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            for render in (False, True):
                rounds.append(live_round(browser, base, args.lines, render))
                r = rounds[-1]
                print(f"  live {r['mode']:6s} {r['seconds']:6.2f} s  (job {r['job_seconds']} s, "
                      f"{r['lines_received']} lines, page busy {r['busy_ms']:.0f} ms, "
                      f"DOM end {r['dom_nodes_end']}, peak {r['dom_nodes_peak']})", flush=True)
        replays: dict[str, list[float]] = {"count": [], "render": []}
        finished = rounds[-1]["run_id"]
        for _ in range(args.rounds):
            for render in (False, True):
                seconds = replay_round(browser, base, finished, args.lines, render)
                replays["render" if render else "count"].append(seconds)
                print(f"  replay {'render' if render else 'count':6s} {seconds:6.2f} s", flush=True)
        browser.close()

    count = statistics.median(r["seconds"] for r in rounds if r["mode"] == "count")
    render = statistics.median(r["seconds"] for r in rounds if r["mode"] == "render")
    peak = max(r["dom_nodes_peak"] for r in rounds if r["mode"] == "render")
    end_nodes = max(r["dom_nodes_end"] for r in rounds if r["mode"] == "render")
    replay_count, replay_render = (statistics.median(replays[k]) for k in ("count", "render"))
    print()
    print(f"{args.lines:,} lines of flood(width=60), {CHROMIUM}, medians of {args.rounds}:")
    figure("live   arrive only (?render=0):", count, args.lines)
    figure("live   arrive + render:        ", render, args.lines, count)
    figure("replay arrive only:            ", replay_count, args.lines)
    figure("replay arrive + render:        ", replay_render, args.lines, replay_count)
    busy_count = statistics.median(r["busy_ms"] for r in rounds if r["mode"] == "count")
    busy_render = statistics.median(r["busy_ms"] for r in rounds if r["mode"] == "render")
    print(f"  page main-thread time in our code: {busy_count:.0f} ms counting, "
          f"{busy_render:.0f} ms keeping + drawing")
    print(f"  DOM nodes while rendering: peak {peak}, at the end {end_nodes} (target < 5,000)")
    queue = args.client_queue if args.client_queue is not None else "default"
    print(f"  server: RETENTION_LINES=3000000, MAX_CLIENT_QUEUE={queue}")
    if args.json:
        print(json.dumps({"live": rounds, "replay": replays}, indent=2))


if __name__ == "__main__":
    main()
