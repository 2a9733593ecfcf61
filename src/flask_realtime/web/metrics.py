"""``/metrics``: the server's counters in Prometheus's text format (docs/deployment.md,
"Metrics"), through the official ``prometheus_client``.

Off unless ``METRICS`` is on; then ``/metrics`` answers only requests carrying
``Authorization: Bearer <METRICS_TOKEN>`` (401 otherwise), and 404 while it is off.
No metric has a per-user label: job names and run states are the operator's own
vocabulary, user ids and addresses never appear.

Where the numbers come from, each through a hook the observed code offers, so that
neither core nor the stores know of Prometheus:

* runs started and finished, and their durations: :meth:`RunService.subscribe`;
* lines captured and store call latency and errors: the store's methods, wrapped
  once when the app is built (:func:`observe_store`); a wrapped call costs two clock
  reads and a histogram update (docs/performance.md has the measured cost);
* lines delivered and the delivery lag (the time between a line's capture, its
  ``epoch_ms``, and its emit to the run's live room): ``Delivery.on_sent``;
* Webex API answers by status and 429 waits: ``webex.client.on_answer``;
* connected sockets, watchers and the RQ queue's depth: read at scrape time.

With several processes writing (gunicorn workers, and RQ workers on the same host),
``PROMETHEUS_MULTIPROC_DIR`` names a folder where each process keeps its values
(prometheus_client's multiprocess mode) and the scrape adds them up; the gunicorn
settings in web/gunicorn_conf.py empty it at start and drop a dead worker's live values.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ..core.ports import ActiveLimitError
from ..core.runs import Run, RunState

if TYPE_CHECKING:
    from .realtime import Realtime

log = logging.getLogger(__name__)

PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

RUNS_STARTED = Counter("flask_realtime_runs_started", "Runs started (created), by job.",
                       ["job"])
RUNS_FINISHED = Counter("flask_realtime_runs_finished",
                        "Runs finished, by job and final state.", ["job", "state"])
RUN_SECONDS = Histogram("flask_realtime_run_duration_seconds",
                        "From running to finished, by job.", ["job"],
                        buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600))
LINES_CAPTURED = Counter("flask_realtime_lines_captured",
                         "Output lines appended to runs' logs.")
LINES_DELIVERED = Counter("flask_realtime_lines_delivered",
                          "Output lines sent to watchers (a line sent to 3 sockets counts 3).")
DELIVERY_LAG = Histogram("flask_realtime_delivery_lag_seconds",
                         "From a line's capture to its emit to the run's live watchers "
                         "(the first line of each batch).",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
STORE_SECONDS = Histogram("flask_realtime_store_call_seconds", "Store calls, by method.",
                          ["method"], buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                               0.1, 0.5, 1, 5))
STORE_ERRORS = Counter("flask_realtime_store_errors",
                       "Store calls that raised (the store unreachable, mostly), by method.",
                       ["method"])
WEBEX_REQUESTS = Counter("flask_realtime_webex_requests",
                         "Answers from the Webex API, by HTTP status.", ["status"])
WEBEX_429_WAITS = Counter("flask_realtime_webex_rate_limit_waits",
                          "429 answers from Webex: each one pauses the run's client.")

#: The store methods timed (core/ports.py RunStore and web/ports.py LoginStore).
STORE_METHODS = (
    "create_run", "run_for_request", "get_run", "replace_run", "list_runs",
    "forget_old_runs", "request_stop", "stop_requested", "append_output", "append_outputs",
    "read_output",
    "output_end", "output_ends", "beat", "executor_alive", "load_session", "save_session",
    "delete_session", "save_tokens", "load_tokens", "delete_tokens", "replace_tokens",
    "sessions_and_tokens",
)


def observe_store(store: Any) -> Any:
    """``store`` with each of :data:`STORE_METHODS` timed (and the lines of
    ``append_output`` and ``append_outputs`` counted): the methods are replaced on the
    instance, which keeps its class, so the pump and every caller that takes a bound
    method from it get the timed one."""
    for name in STORE_METHODS:
        method = getattr(store, name, None)
        if method is not None:
            setattr(store, name, _timed(name, method))
    return store


def _timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    observe = STORE_SECONDS.labels(name).observe
    failed = STORE_ERRORS.labels(name).inc
    clock = time.perf_counter
    count_lines = LINES_CAPTURED.inc if name in ("append_output", "append_outputs") else None
    many = name == "append_outputs"  # (run id, lines, writer, offset) batches

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            result = method(*args, **kwargs)
        except ActiveLimitError:  # a refusal, the store did its job
            observe(clock() - start)
            raise
        except Exception:
            observe(clock() - start)
            failed()
            raise
        observe(clock() - start)
        if count_lines is not None:
            if many:
                count_lines(sum(len(batch[1]) for batch in (args[0] if args
                                                             else kwargs["batches"])))
            else:
                count_lines(len(args[1]) if len(args) > 1 else len(kwargs.get("lines", ())))
        return result

    return call


def _run_changed(run: Run) -> None:
    if run.state is RunState.QUEUED:
        RUNS_STARTED.labels(run.job).inc()
    elif run.state.finished:
        RUNS_FINISHED.labels(run.job, run.state.value).inc()
        seconds = _seconds_between(run.started_at, run.ended_at)
        if seconds is not None:
            RUN_SECONDS.labels(run.job).observe(seconds)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    from datetime import datetime

    if not start or not end:
        return None  # stopped or failed before it ran
    try:
        began = datetime.fromisoformat(start.replace("Z", "+00:00"))
        ended = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((ended - began).total_seconds(), 0.0)


def _batch_sent(payload: dict[str, Any], sockets: int, live: bool) -> None:
    LINES_DELIVERED.inc(len(payload["lines"]) * sockets)
    times = payload.get("times")
    if live and times:  # a watcher catching up reads old lines: no lag to speak of
        DELIVERY_LAG.observe(max(time.time() - times[0][1] / 1000, 0.0))


def _webex_answer(status: int) -> None:
    WEBEX_REQUESTS.labels(str(status)).inc()
    if status == 429:
        WEBEX_429_WAITS.inc()


class _LiveValues:
    """What is read at scrape time, from this process: sockets, watchers, queue depth."""

    def __init__(self, realtime: Realtime) -> None:
        self.realtime = realtime

    def collect(self) -> Iterator[Metric]:
        realtime = self.realtime
        sockets = GaugeMetricFamily("flask_realtime_sockets",
                                    "Socket.IO connections open to this process.")
        sockets.add_metric([], len(realtime.sockets))
        yield sockets
        watchers = GaugeMetricFamily("flask_realtime_watchers",
                                     "Sockets watching a run's output in this process.")
        watchers.add_metric([], realtime.delivery.watcher_count())
        yield watchers
        queue = getattr(realtime.service.runner, "queue", None)  # the RQ runner's
        if queue is not None:
            depth = GaugeMetricFamily("flask_realtime_rq_queue_depth",
                                      "Runs waiting in the RQ queue for a worker.")
            try:
                depth.add_metric([], queue.count)
            except Exception:  # Redis away: the store errors say so
                return
            yield depth


class _Scrape:
    """The collectors of one scrape: the process's (or every process's) counters and
    this process's live values."""

    def __init__(self, live: _LiveValues) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        if os.environ.get(MULTIPROC_ENV):
            counters = CollectorRegistry()
            MultiProcessCollector(counters)
            yield from counters.collect()
        else:
            yield from REGISTRY.collect()
        yield from self.live.collect()


def init_app(app: Flask, realtime: Realtime) -> None:
    """Register the hooks and ``/metrics`` (only when METRICS is on: else it is a 404)."""
    from ..webex import client as webex_client

    token = str(app.config["METRICS_TOKEN"]).encode()
    realtime.service.subscribe(_run_changed)
    realtime.delivery.on_sent = _batch_sent
    webex_client.on_answer = _webex_answer  # process-wide, as the counters are
    scrape = _Scrape(_LiveValues(realtime))

    @app.get(PATH)
    def metrics() -> Response:
        sent = request.headers.get("Authorization", "")
        scheme, _, given = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            response = Response("Send the metrics token: Authorization: Bearer <METRICS_TOKEN>"
                                "\n", 401, mimetype="text/plain")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return Response(generate_latest(scrape), content_type=CONTENT_TYPE_LATEST)
