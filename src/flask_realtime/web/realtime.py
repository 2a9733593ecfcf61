"""The Flask extension object: the core's parts, wired together once per app."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask_socketio import SocketIO

from redis import RedisError

from ..core.capture import CapturePump
from ..core.jobs import JobRegistry
from ..core.jobs import registry as default_registry
from ..core.ports import StoreUnavailableError
from ..core.runner import ThreadRunner, reap_lost_runs
from ..core.runs import Run
from ..core.service import Limits, RunService
from ..store import open_store
from .delivery import Delivery
from .ports import AppStore
from .rooms import user_room

log = logging.getLogger(__name__)

#: How often each web process looks for runs whose executor died (heartbeat TTL 5 s).
REAP_INTERVAL_SECONDS = 2.0

#: Given a user id, the services that user's runs may use (``RunContext.services``).
ServiceProvider = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True)
class SocketLogin:
    """Whose a socket is, and the login it was opened with.

    A logout anywhere voids the login: ``session_key`` (the store key of the session
    the socket was opened with; None without login) must still exist, and
    ``login_at`` must not be older than the user's tokens' ``valid_since``, the rule
    HTTP requests follow (web/auth.py, ``Auth.logged_in``).
    """

    user: str
    session_key: str | None = None
    login_at: float = 0.0


class Realtime:
    """Holds the store, the run service and the delivery loop of one app."""

    def __init__(self, app: Flask, socketio: SocketIO, *,
                 registry: JobRegistry | None = None, store: AppStore | None = None) -> None:
        config = app.config
        self.socketio = socketio
        # not `or`: an empty registry is falsy (it has a length) and would become the global one
        self.registry = registry if registry is not None else default_registry
        self.store: AppStore = store or open_store(config, app.instance_path)
        if config.get("METRICS"):  # timed from here on, for every caller (web/metrics.py)
            from .metrics import observe_store

            self.store = observe_store(self.store)
        self.service = RunService(self.store, self.registry, limits=Limits(
            per_user=config["RUNS_PER_USER"], total=config["RUNS_TOTAL"],
            history=config["HISTORY_RUNS"]))
        self.pump = CapturePump(
            self.store.append_output, interval=config["BATCH_INTERVAL_SECONDS"],
            partial_delay=config["PARTIAL_FLUSH_SECONDS"], max_line_chars=config["MAX_LINE_CHARS"],
            give_way=config["FLOOD_GIVE_WAY_SECONDS"])
        #: Called by the reaper: forces stops whose grace ended and fails runs dropped
        #: from the queue (RQ; None otherwise).
        self._reap_runner: Callable[[], object] | None = None
        if config.get("RUNNER") == "rq":  # jobs execute on `flask-realtime worker`s
            from ..adapters.rq import RQRunner

            rq_runner = RQRunner(self.service, config["REDIS_URL"],
                                 stop_grace=config["STOP_GRACE_SECONDS"],
                                 queue_ttl=config["QUEUE_TTL_SECONDS"])
            self.service.runner = rq_runner
            self._reap_runner = rq_runner.reap
        else:
            self.service.runner = ThreadRunner(
                self.service, self.pump, stop_grace=config["STOP_GRACE_SECONDS"])
        self.delivery = Delivery(
            socketio, self.store, max_batch_chars=config["MAX_BATCH_CHARS"],
            max_batch_lines=config["MAX_BATCH_LINES"], max_client_queue=config["MAX_CLIENT_QUEUE"])
        self.sockets: dict[str, SocketLogin] = {}  # Socket.IO sid -> its login
        self.service_providers: list[ServiceProvider] = []
        self.service.subscribe(self._announce)
        app.extensions["flask_realtime"] = self
        #: Set by :meth:`close`: the process's background checks end.
        self.closing = threading.Event()
        if config.get("REDIS_URL"):  # other processes may die holding runs: watch for it
            threading.Thread(target=self._reap, name="flask-realtime-reaper",
                             daemon=True).start()

    def _reap(self) -> None:
        """Fail runs whose executor (a web process or worker) stopped beating; with RQ,
        force stops left overdue by a web process that died during their grace period
        and fail queued runs whose job RQ dropped."""
        suspects: set[str] = set()
        while not self.closing.wait(REAP_INTERVAL_SECONDS):
            try:
                for run_id in reap_lost_runs(self.service, suspects):
                    log.warning("run %s failed: its executor was lost", run_id)
                if self._reap_runner is not None:
                    self._reap_runner()
            except (StoreUnavailableError, RedisError):
                pass
            except Exception:
                log.exception("executor-loss check failed")

    def services_for(self, user: str) -> dict[str, Any]:
        """``RunContext.services`` for a run of ``user`` (the Webex access, …)."""
        services: dict[str, Any] = {}
        for provide in self.service_providers:
            services.update(provide(user))
        return services

    def start(self, user: str, job: Any, params: Any, *, request_id: str | None = None) -> Run:
        return self.service.start(user, job, params, request_id=request_id,
                                  services=self.services_for(user))

    def run_json(self, run: Run, *, with_result: bool = False) -> dict[str, Any]:
        return run.to_json(lines=self.store.output_end(run.id), with_result=with_result)

    def _announce(self, run: Run) -> None:
        """Every socket of the run's user hears of its state changes (all tabs, all devices).

        Through the message queue when there is one (no ``ignore_queue``, unlike
        web/delivery.py): the run may have changed in another process than the one
        holding the user's sockets."""
        self.socketio.emit("state", {"run_id": run.id, **self.run_json(run)},
                           to=user_room(run.user), namespace="/")

    def close(self) -> None:
        self.closing.set()
        self.delivery.close()
        self.store.close()


def get_realtime() -> Realtime:
    return current_app.extensions["flask_realtime"]
