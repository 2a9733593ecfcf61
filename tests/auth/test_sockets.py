"""Socket.IO with a login: who may connect, from where, and logout
(docs/reliability.md, requirements 7 and 8)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import socketio

from tests.auth.conftest import Browser
from tests.conftest import LiveServer, Watcher, wait_for


def test_socket_without_login_is_refused(open_socket: Callable[..., Watcher],
                                         browser: Callable[[], Browser]) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        open_socket(None)
    anonymous = browser()
    anonymous.http.get("/login", follow_redirects=False)  # a session, but no login
    with pytest.raises(socketio.exceptions.ConnectionError):
        open_socket(anonymous.cookie)


def test_socket_with_login_from_the_own_origin(user: Browser, live_server: LiveServer,
                                               open_socket: Callable[..., Watcher]) -> None:
    for transport in ("websocket", "polling"):
        watcher = open_socket(user.cookie, origin=live_server.url, transport=transport)
        assert watcher.call("watch", {"run_id": "nope", "after": 0})["error"]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_cross_origin_socket_is_refused_even_with_a_valid_cookie(
        user: Browser, open_socket: Callable[..., Watcher], transport: str) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        open_socket(user.cookie, origin="http://evil.example", transport=transport)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_forged_forwarded_host_does_not_get_around_the_origin_check(
        user: Browser, open_socket: Callable[..., Watcher], transport: str) -> None:
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}
    with pytest.raises(socketio.exceptions.ConnectionError):
        open_socket(user.cookie, origin="http://evil.example", transport=transport,
                    headers=forged)


def test_logout_ends_the_users_sockets_within_a_second(
        browser: Callable[[], Browser], open_socket: Callable[..., Watcher]) -> None:
    laptop, phone, other = browser(), browser(), browser()
    laptop.login("user1")
    phone.login("user1")
    other.login("user2")
    mine = [open_socket(laptop.cookie), open_socket(laptop.cookie, transport="polling"),
            open_socket(phone.cookie)]
    theirs = open_socket(other.cookie)
    assert laptop.logout().status_code == 200
    for watcher in mine:
        wait_for(lambda watcher=watcher: not watcher.client.connected, timeout=1.0)
    assert theirs.client.connected
    with pytest.raises(socketio.exceptions.ConnectionError):
        open_socket(phone.cookie)
