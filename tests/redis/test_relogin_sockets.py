"""A logout followed at once by a new login does not keep the old sockets working.

The new login gives the user tokens again, so a check that asks only "has the user
tokens?" lets the sockets of the logged-out sessions live on. Each socket's own
session is checked: it must still exist and be newer than the user's last logout.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flask_realtime.web import auth
from tests.auth.conftest import Browser, simulator, simulator_options  # noqa: F401
from tests.conftest import LiveServer, Watcher, wait_for
from tests.redis.test_logout_across_processes import socket_to, two_servers  # noqa: F401


def test_after_a_logout_and_a_new_login_old_sockets_elsewhere_are_closed(
        two_servers: list[LiveServer],  # noqa: F811
        socket_to: Callable[[str, str | None], Watcher]) -> None:  # noqa: F811
    a, b = two_servers
    laptop, phone = Browser(a.url), Browser(a.url)
    try:
        laptop.login("user1")
        phone.login("user1")
        old = socket_to(b.url, phone.cookie)
        assert laptop.logout().status_code == 200
        laptop.login("user1")  # at once: the user has tokens again
        assert phone.http.get("/api/runs").status_code == 401
        wait_for(lambda: not old.client.connected, timeout=1.5)
        assert socket_to(b.url, laptop.cookie).client.connected  # the new login's socket
    finally:
        laptop.close()
        phone.close()


def test_an_old_socket_cannot_start_runs_before_the_check_closes_it(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        socket_to: Callable[[str, str | None], Watcher]) -> None:  # noqa: F811
    monkeypatch.setattr(auth, "LOGOUT_CHECK_SECONDS", 3600)  # no background check here
    a, b = request.getfixturevalue("two_servers")
    laptop, phone = Browser(a.url), Browser(a.url)
    try:
        laptop.login("user1")
        phone.login("user1")
        old = socket_to(b.url, phone.cookie)
        assert laptop.logout().status_code == 200
        laptop.login("user1")
        ack = old.call("start", {"job": "countdown", "params": {"n": 1}})
        assert ack == {"error": "You are not logged in: reload the page and log in."}
    finally:
        laptop.close()
        phone.close()
