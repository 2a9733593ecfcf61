"""A core with a notifier, as every process that ends runs builds it (docs/notifications.md):
a memory store, jobs that succeed and fail, a real Webex simulator for the bot, and the
users' preferences saved as the API saves them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet, MultiFernet

from flask_realtime.core.jobs import JobRegistry, Running, job
from flask_realtime.core.runs import Run
from flask_realtime.core.system import System, build
from flask_realtime.notify import install
from flask_realtime.notify.notifier import Notifier
from flask_realtime.notify.preferences import load, updated
from flask_realtime.notify.webhook import networks
from flask_realtime.store.memory import MemoryStore
from flask_realtime.webex.simulator import SimulatorConfig, SimulatorHandle, start_simulator
from tests.conftest import wait_for

USER = "user1@example.com"
PUBLIC_URL = "https://realtime.example.com"


@dataclass
class Notified:
    """The System, its notifier and store, and the simulator its bot talks to."""

    system: System[MemoryStore]
    notifier: Notifier
    simulator: SimulatorHandle
    fernet: MultiFernet
    config: dict[str, Any]

    @property
    def store(self) -> MemoryStore:
        return self.system.store

    def prefer(self, user: str = USER, **change: Any) -> None:
        """Save ``user``'s preferences as ``PUT /api/preferences`` does."""
        prefs = updated(load(self.store, user), change, fernet=self.fernet,
                        allowed=networks(self.config["NOTIFY_WEBHOOK_ALLOWED_NETWORKS"]))
        self.store.save_preferences(user, prefs.to_json())

    def run(self, job_name: str, user: str = USER, notify: str | None = None,
            **params: Any) -> Run:
        """Start ``job_name`` and wait for it to end."""
        run = self.system.service.start(user, job_name, params, notify=notify)
        return wait_for(lambda: (r := self.store.get_run(run.id)) and r.state.finished and r)

    def settled(self, run_id: str, *channels: str, timeout: float = 10.0) -> Run:
        """The run once each of ``channels`` is recorded sent or failed."""
        def done() -> Run | None:
            run = self.store.get_run(run_id)
            entries = run.notifications if run else {}
            return run if all(entries.get(c, {}).get("status") in ("sent", "failed")
                              for c in channels) else None
        return wait_for(done, timeout)


@pytest.fixture
def simulator() -> Iterator[SimulatorHandle]:
    handle = start_simulator(SimulatorConfig(spaces=4, messages=40))
    yield handle
    handle.stop()


@pytest.fixture
def notified(simulator: SimulatorHandle) -> Iterator[Notified]:
    registry = JobRegistry()

    @job(registry=registry, title="Nightly *report*")
    def report(running: Running) -> int:
        print("done")
        return 1

    @job(registry=registry, title="Broken [job](http://evil.example)")
    def broken(running: Running) -> None:
        raise RuntimeError("The disk <b>is</b> full: free some space.")

    config: dict[str, Any] = {
        "STOP_GRACE_SECONDS": 0.3, "NOTIFY_BACKOFF_SECONDS": 0.05, "NOTIFY_ATTEMPTS": 3,
        "NOTIFY_TIMEOUT_SECONDS": 5.0, "NOTIFY_WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
        "PUBLIC_URL": PUBLIC_URL, "WEBEX_BASE_URL": simulator.base_url,
        "WEBEX_BOT_TOKEN": simulator.config.bot_token, "NOTIFY_WORKERS": 2,
        "NOTIFY_QUEUE_SIZE": 100}
    fernet = MultiFernet([Fernet(Fernet.generate_key())])
    system = build(config, store=MemoryStore(), registry=registry)
    notifier = install(system, config, fernet=fernet,
                       user_token=lambda user: simulator.token_for(user))
    with system:
        yield Notified(system, notifier, simulator, fernet, config)
