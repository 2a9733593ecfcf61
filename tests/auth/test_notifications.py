"""Notifications over HTTP and Socket.IO, logged in through the Webex simulator in demo
mode (docs/notifications.md, "When" and "Preferences"): each user's own preferences,
CSRF, one-sentence refusals, and ``notify`` at Start, end to end to the bot's message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.auth.conftest import Browser
from tests.conftest import Watcher, wait_for

SECRET = "a-long-enough-webhook-secret"


def put(b: Browser, body: Any, *, csrf: bool = True) -> Any:
    headers = {"X-CSRF-Token": b.csrf()} if csrf else {}
    return b.http.put("/api/preferences", json=body, headers=headers)


def test_preferences_start_off_need_a_login_and_a_csrf_token(
        browser: Callable[[], Browser], user: Browser) -> None:
    assert user.http.get("/api/preferences").json() == {
        "notify": "off", "webex": False, "webex_room": None, "webhook_url": None,
        "webhook_secret_set": False, "webex_bot": True}  # demo mode has the simulator's bot
    anonymous = browser()
    assert anonymous.http.get("/api/preferences").status_code == 401
    assert put(user, {"notify": "finish"}, csrf=False).status_code == 403
    assert user.http.get("/api/preferences").json()["notify"] == "off"


def test_each_user_sees_and_changes_only_their_own(browser: Callable[[], Browser],
                                                   user: Browser) -> None:
    other = browser()
    other.login("user2")
    assert put(user, {"notify": "failure", "webex": True}).json()["notify"] == "failure"
    assert other.http.get("/api/preferences").json()["notify"] == "off"


BAD_PREFERENCES = [
    ({"notify": "sometimes"}, '"notify" must be "finish", "failure" or "off".'),
    ({"webex": "yes"}, '"webex" must be true or false.'),
    ({"colour": "red"}, "There is no preference 'colour'"),
    ({"webhook_url": "http://169.254.169.254/latest/", "webhook_secret": SECRET},
     "private, loopback, link-local"),
    ({"webhook_url": "gopher://example.com/"}, "must start with http:// or https://"),
    ({"webhook_url": "https://93.184.215.14/x"}, 'A webhook needs a "webhook_secret"'),
    ({"webhook_url": "https://93.184.215.14/x", "webhook_secret": "short"},
     '"webhook_secret" must be 16 to 200'),
    ([1, 2], "Send a JSON object"),
]


def test_bad_preferences_are_refused_with_a_sentence_and_save_nothing(user: Browser) -> None:
    before = user.http.get("/api/preferences").json()
    for body, sentence in BAD_PREFERENCES:
        response = put(user, body)
        assert response.status_code == 400, body
        assert sentence in response.json()["error"], (body, response.json())
        assert user.http.get("/api/preferences").json() == before


def test_the_webhook_secret_is_write_only(user: Browser) -> None:
    saved = put(user, {"webhook_url": "https://93.184.215.14/hook", "webhook_secret": SECRET})
    assert saved.status_code == 200, saved.text
    for answer in (saved.json(), user.http.get("/api/preferences").json()):
        assert answer["webhook_url"] == "https://93.184.215.14/hook"
        assert answer["webhook_secret_set"] is True and SECRET not in str(answer)
    assert SECRET not in user.http.get("/").text
    removed = put(user, {"webhook_url": "", "webhook_secret": ""}).json()
    assert removed["webhook_url"] is None and removed["webhook_secret_set"] is False


def test_start_takes_notify_and_refuses_anything_else(user: Browser) -> None:
    bad = user.post("/api/runs", {"job": "countdown", "params": {"n": 0}, "notify": "loud"})
    assert bad.status_code == 400 and bad.json()["error"] == (
        '"notify" must be "finish", "failure" or "off" (or left out for your default).')
    assert user.http.get("/api/runs").json()["runs"] == []
    chosen = user.post("/api/runs", {"job": "countdown", "params": {"n": 0},
                                     "notify": "failure"})
    assert chosen.status_code == 201 and chosen.json()["notify"] == "failure"
    put(user, {"notify": "finish"})
    default = user.post("/api/runs", {"job": "countdown", "params": {"n": 0}}).json()
    assert default["notify"] == "finish"  # the user's default, kept on the run
    rerun = user.post(f"/api/runs/{default['id']}/rerun", {"notify": "off"}).json()
    assert rerun["notify"] == "off"


def test_the_start_event_takes_notify(user: Browser,
                                      open_socket: Callable[..., Watcher]) -> None:
    socket = open_socket(user.cookie)
    refused = socket.call("start", {"job": "countdown", "params": {"n": 0}, "notify": 3})
    assert refused == {"error": '"notify" must be "finish", "failure" or "off" (or left '
                                "out for your default)."}
    answer = socket.call("start", {"job": "countdown", "params": {"n": 0},
                                   "notify": "finish"})
    run = user.http.get(f"/api/runs/{answer['run_id']}").json()
    assert run["notify"] == "finish"


def test_a_run_started_with_notify_reaches_its_owner_by_the_bot(
        user: Browser, simulator: Any, open_socket: Callable[..., Watcher]) -> None:
    assert put(user, {"webex": True}).status_code == 200
    socket = open_socket(user.cookie)
    answer = socket.call("start", {"job": "fail", "notify": "failure"})
    run_id = answer["run_id"]
    [message] = wait_for(lambda: simulator.messages_to("user1@example.com"))
    assert message["from"] == "notifier@webex.bot" and "failed" in message["markdown"]
    record = wait_for(lambda: (r := user.http.get(f"/api/runs/{run_id}").json())[
        "notifications"].get("webex", {}).get("status") == "sent" and r)
    assert record["state"] == "failed"
    # the page hears the outcome as a state event, as it hears the run's moves
    wait_for(lambda: any(s["id"] == run_id and s["notifications"].get("webex", {}).get(
        "status") == "sent" for s in socket.states))


def test_the_space_picker_lists_the_users_group_spaces(user: Browser, simulator: Any) -> None:
    document = user.http.get("/api/openapi.json").json()  # documented (and validated:
    assert {"get", "put"} <= set(document["paths"]["/api/preferences"])  # test_http_api)
    assert "notify" in document["components"]["schemas"]["StartRequest"]["properties"]
    rooms = user.http.get("/api/preferences/rooms").json()["rooms"]
    me = simulator.dataset.by_email["user1@example.com"].id
    expected = {r.id for r in simulator.dataset.rooms.values()
                if r.type == "group" and me in r.members}
    assert {r["id"] for r in rooms} == expected and all(r["title"] for r in rooms)
