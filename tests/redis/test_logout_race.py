"""Logout wins over a token renewal that another process (an RQ worker) has in flight.

The timing of the report: tokens of 2 s lifetime, 700 ms simulator latency, a job on a
worker asking for its token in a loop. The renewal the worker sent is held at the
simulator until the logout has returned, so the logout always lands mid-renewal.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_realtime.store.redis import RedisStore
from flask_realtime.webex.simulator.http import Reply, Request
from tests.auth.conftest import Browser, simulator  # noqa: F401
from tests.conftest import wait_for
from tests.redis.conftest import Process, WebProcess

USER = "user1@example.com"


@pytest.fixture
def simulator_options() -> dict[str, Any]:
    return {"access_token_lifetime": 2, "latency_ms": 700}


class HeldRenewal:
    """Holds the next refresh-token grant at the simulator until :attr:`release` is set."""

    def __init__(self, server: Any) -> None:
        self.armed = False
        self.arrived, self.release = threading.Event(), threading.Event()
        original = server.handler

        async def handler(request: Request) -> Reply:
            if (self.armed and request.path.endswith("/access_token")
                    and request.form().get("grant_type") == "refresh_token"):
                self.armed = False
                self.arrived.set()
                await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
            return await original(request)

        server.handler = handler


@pytest.fixture
def renewal(simulator: Any) -> Iterator[HeldRenewal]:  # noqa: F811
    held = HeldRenewal(simulator.server)
    yield held
    held.release.set()


@pytest.fixture
def login_env(stack_env: dict[str, str], simulator: Any) -> dict[str, str]:  # noqa: F811
    """Login with the simulator as Webex, runs on RQ workers."""
    return {**stack_env, "FLASK_REALTIME_LOGIN_REQUIRED": "true", "FLASK_REALTIME_RUNNER": "rq",
            "FLASK_REALTIME_WEBEX_BASE_URL": simulator.base_url,
            "FLASK_REALTIME_JOBS": "tests.jobs_for_tests,tests.redis.jobs_for_logout",
            "CLIENT_ID": "demo-client", "CLIENT_SECRET": "demo-secret",
            "REDIRECT_URI": "http://127.0.0.1:5000/redirect"}


@pytest.fixture
def login_web(login_env: dict[str, str], processes: list[Process],
              tmp_path: Path) -> Callable[[], WebProcess]:
    def start() -> WebProcess:
        process = WebProcess(dict(login_env), tmp_path / f"web{len(processes)}.log")
        process.env["REDIRECT_URI"] = f"{process.url}/redirect"
        processes.append(process)
        return process.start()

    return start


def test_a_logout_during_a_workers_token_renewal_stays_a_logout(
        login_web: Callable[[], WebProcess], worker: Callable[..., Process],
        login_env: dict[str, str], renewal: HeldRenewal, redis_url: str) -> None:
    web = login_web()
    worker(**login_env)
    laptop, phone = Browser(web.url), Browser(web.url)
    store = RedisStore(redis_url, listen=False)
    try:
        laptop.login("user1")
        phone.login("user1")
        started = laptop.post("/api/runs", {"job": "token_loop"})
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        renewal.armed = True
        assert renewal.arrived.wait(30), "the job never renewed its token"
        assert laptop.logout().status_code == 200  # while the worker waits for Webex
        renewal.release.set()

        def settled() -> bool:  # the worker saved the renewal, or gave up on it
            run = store.get_run(run_id)
            return store.load_tokens(USER) is not None or bool(run and run.state.finished)

        wait_for(settled, timeout=15)
        assert phone.http.get("/api/runs").status_code == 401
        assert store.load_tokens(USER) is None
    finally:
        laptop.close()
        phone.close()
        store.close()

