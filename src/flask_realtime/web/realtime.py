"""The Flask extension object: Socket.IO, output delivery and the socket map of one app,
around the core's :class:`~..core.system.System` (built by ``web/app.py``)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask_socketio import SocketIO

from ..core.capture import CapturePump
from ..core.files import IncomingFile
from ..core.jobs import JobRegistry
from ..core.runs import Run
from ..core.service import RunService
from ..core.system import ServiceProvider, System
from .announcer import StateAnnouncer
from .delivery import Delivery
from .ports import AppStore
from .socketio_internals import emit_many
from .states import run_json


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
    """Socket.IO's side of one app: the delivery of output to watchers, the map of open
    sockets to their logins, and run state changes announced to their users (every
    socket of the run's user, all tabs and devices, and with ADMIN_USERS the admins';
    through the message queue when there is one: the run may have changed in another
    process than the one holding the sockets).

    The core's parts (store, registry, run service, pump, runner, reaper) are the
    ``system``'s; ``store``, ``service``, ``registry`` and ``pump`` are its, named here
    for the web tier's convenience. :meth:`close` ends the delivery loop and the
    process's web checks (``closing``), then closes the System.
    """

    def __init__(self, app: Flask, socketio: SocketIO, system: System[AppStore]) -> None:
        config = app.config
        self.system = system
        self.socketio = socketio
        self.delivery = Delivery(
            socketio, system.store, max_batch_chars=config["MAX_BATCH_CHARS"],
            max_batch_lines=config["MAX_BATCH_LINES"], max_client_queue=config["MAX_CLIENT_QUEUE"])
        self.sockets: dict[str, SocketLogin] = {}  # Socket.IO sid -> its login
        #: Whether admins' sockets hear every run's changes (ADMIN_USERS, web/admin.py).
        self.admins = bool(config.get("ADMIN_USERS"))
        #: Run state changes, batched, from a thread of their own (web/announcer.py).
        self.announcer = StateAnnouncer(
            system.store, lambda packets: emit_many(socketio.server, packets),
            admins=self.admins)
        system.service.subscribe(self.announcer)
        app.extensions["flask_realtime"] = self
        #: Set by :meth:`close`: the process's background checks (web/auth.py) end.
        self.closing = threading.Event()

    @property
    def store(self) -> AppStore:
        return self.system.store

    @property
    def service(self) -> RunService:
        return self.system.service

    @property
    def registry(self) -> JobRegistry:
        return self.system.registry

    @property
    def pump(self) -> CapturePump:
        return self.system.pump

    @property
    def service_providers(self) -> list[ServiceProvider]:
        """The System's: each adds services to a user's runs (web/auth.py, Webex)."""
        return self.system.service_providers

    def services_for(self, user: str) -> dict[str, Any]:
        """``RunContext.services`` for a run of ``user`` (the Webex access, …)."""
        return self.system.services_for(user)

    def start(self, user: str, job: Any, params: Any, *, request_id: str | None = None,
              notify: Any = None, files: Mapping[str, IncomingFile] | None = None) -> Run:
        """:meth:`start_once`'s run."""
        return self.start_once(user, job, params, request_id=request_id, notify=notify,
                               files=files)[0]

    def start_once(self, user: str, job: Any, params: Any, *, request_id: str | None = None,
                   notify: Any = None, files: Mapping[str, IncomingFile] | None = None,
                   ) -> tuple[Run, bool]:
        """Start ``job`` for ``user`` with the services of their login (and ``files``
        for its file parameters), as :meth:`RunService.start_once` does (same errors):
        the run, and whether this call made it (False for a repeated ``request_id``).
        ``notify`` left out (None or empty) is the user's default, read now and kept on
        the run (docs/notifications.md)."""
        if notify is None or notify == "":
            from ..notify.preferences import load

            notify = load(self.store, user).notify
        return self.service.start_once(user, job, params, request_id=request_id,
                                       services=self.services_for(user), notify=notify,
                                       files=files)

    def run_json(self, run: Run, *, with_result: bool = False) -> dict[str, Any]:
        """The run as the API shows it (web/states.py)."""
        return run_json(self.store, run, with_result=with_result)

    def close(self) -> None:
        """End the delivery loop and the web checks, then every loop of the System and
        its store."""
        self.closing.set()
        self.delivery.close()
        self.announcer.close()  # what is queued is sent; later changes (a shutdown's) at once
        self.system.close()


def get_realtime() -> Realtime:
    """The current app's :class:`Realtime`; only inside an app context of an app made by
    ``create_app``."""
    return current_app.extensions["flask_realtime"]
