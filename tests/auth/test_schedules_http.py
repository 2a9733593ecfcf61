"""Schedules over HTTP and Socket.IO, with a login (web/schedules.py): owner-only, CSRF on
every change, one sentence for what is refused, runs marked with their schedule, and a
schedule that pauses itself when its owner's Webex login is gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.auth.conftest import Browser
from tests.conftest import Watcher, wait_for


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "SCHEDULE_MIN_INTERVAL_SECONDS": 1, "SCHEDULE_TICK_SECONDS": 0.1}


def nightly(**fields: Any) -> dict[str, Any]:
    return {"name": "nightly", "job": "numbers", "params": {"n": 3}, "cron": "30 2 * * *",
            "timezone": "Europe/Berlin", **fields}


def send(b: Browser, method: str, path: str, json: Any = None) -> Any:
    return b.http.request(method, path, json=json, headers={"X-CSRF-Token": b.csrf()})


def test_a_schedule_is_made_listed_edited_paused_resumed_and_deleted(user: Browser) -> None:
    made = user.post("/api/schedules", nightly())
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert made.headers["Location"] == f"/api/schedules/{schedule['id']}"
    assert (schedule["user"], schedule["enabled"], schedule["overlap"], schedule["notify"],
            schedule["last_run"]) == ("user1@example.com", True, "skip", "none", None)
    assert schedule["next_fire_at"].endswith(":30:00Z")
    listed = user.http.get("/api/schedules").json()["schedules"]
    assert [s["id"] for s in listed] == [schedule["id"]]
    path = f"/api/schedules/{schedule['id']}"
    edited = send(user, "PATCH", path, {"name": "every two hours", "cron": "0 */2 * * *",
                                        "notify": "failure"}).json()
    assert (edited["name"], edited["cron"], edited["notify"]) == (
        "every two hours", "0 */2 * * *", "failure")
    paused = user.post(f"{path}/pause").json()
    assert not paused["enabled"]
    assert user.post(f"{path}/resume").json()["enabled"]
    assert send(user, "DELETE", path).json() == {"ok": True}
    assert user.http.get(path).status_code == 404


def test_the_preview_shows_the_next_five_times_in_the_schedules_zone(user: Browser) -> None:
    answer = user.post("/api/schedules/preview", nightly())
    assert answer.status_code == 200, answer.text
    fires = answer.json()["fires"]
    assert len(fires) == 5
    assert all(" 02:30:00 CE" in f["local"] for f in fires), fires
    assert user.http.get("/api/schedules").json()["schedules"] == []  # nothing saved


@pytest.mark.parametrize(("fields", "sentence"), [
    ({"cron": "61 2 * * *"}, "The cron expression '61 2 * * *' is not valid (bad minute)"),
    ({"cron": None, "interval": 0}, "interval must be a whole number of seconds from 1"),
    ({"timezone": "Atlantis/Capital"}, "is not an IANA time zone name"),
    ({"job": "no_such_job"}, "no_such_job"),
    ({"user": "user2@example.com"}, "'user' is not a schedule setting"),
])
def test_a_bad_schedule_is_a_400_with_a_sentence_and_nothing_saved(
        user: Browser, fields: dict[str, Any], sentence: str) -> None:
    for path in ("/api/schedules", "/api/schedules/preview"):
        refused = user.post(path, nightly(**fields))
        assert refused.status_code == 400, refused.text
        assert sentence in refused.json()["error"]
    assert user.http.get("/api/schedules").json()["schedules"] == []


def test_bad_parameters_are_refused_as_a_start_refuses_them(user: Browser) -> None:
    refused = user.post("/api/schedules", nightly(params={"n": "many"}))
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"n"}


def test_every_change_needs_the_csrf_token(user: Browser) -> None:
    schedule = user.post("/api/schedules", nightly()).json()
    path = f"/api/schedules/{schedule['id']}"
    for method, url in (("POST", "/api/schedules"), ("POST", "/api/schedules/preview"),
                        ("PATCH", path), ("DELETE", path), ("POST", f"{path}/pause"),
                        ("POST", f"{path}/resume"), ("POST", f"{path}/run")):
        refused = user.http.request(method, url, json=nightly())
        assert refused.status_code == 403, (method, url)
    assert user.http.get(path).json()["name"] == "nightly"


def test_another_users_schedule_answers_as_none_does(
        user: Browser, browser: Callable[[], Browser]) -> None:
    schedule = user.post("/api/schedules", nightly()).json()
    other = browser()
    other.login("user2")
    path = f"/api/schedules/{schedule['id']}"
    assert other.http.get(path).status_code == 404
    for method, url in (("PATCH", path), ("DELETE", path), ("POST", f"{path}/pause"),
                        ("POST", f"{path}/run")):
        assert send(other, method, url, {"name": "mine"}).status_code == 404, (method, url)
    assert other.http.get("/api/schedules").json()["schedules"] == []
    assert user.http.get(path).json()["enabled"] is True
    anonymous = browser()
    assert anonymous.http.get("/api/schedules").status_code == 401


def test_scheduled_runs_show_their_schedule_in_the_run_list(user: Browser) -> None:
    schedule = user.post("/api/schedules", nightly(cron=None, interval=1)).json()
    runs = wait_for(lambda: [r for r in user.http.get("/api/runs").json()["runs"]
                             if r["schedule_id"] == schedule["id"]])
    assert runs[0]["schedule_name"] == "nightly"
    shown = wait_for(lambda: (s := user.http.get(f"/api/schedules/{schedule['id']}").json())
                     ["last_run"] and s)
    assert shown["last_run"]["id"] in {r["id"] for r in user.http.get("/api/runs").json()
                                       ["runs"]}
    now = user.post(f"/api/schedules/{schedule['id']}/run")
    assert now.status_code == 201 and now.json()["schedule_id"] == schedule["id"]


def test_a_schedule_pauses_itself_when_its_owner_logged_out(
        user: Browser, browser: Callable[[], Browser], app: Any) -> None:
    schedule = user.post("/api/schedules", {
        "name": "digest", "job": "webex_token_digest", "interval": 1}).json()
    wait_for(lambda: any(r["schedule_id"] == schedule["id"] and r["state"] == "succeeded"
                         for r in user.http.get("/api/runs").json()["runs"]))
    assert user.logout().status_code == 200  # the tokens go: no login to run with
    store = app.extensions["flask_realtime"].store
    wait_for(lambda: store.get_schedule(schedule["id"]).paused_reason)
    runs_then = len(store.list_runs())
    again = browser()
    again.login("user1")
    paused = again.http.get(f"/api/schedules/{schedule['id']}").json()
    assert not paused["enabled"]
    assert "was not started, because your Webex login has expired or you logged out" in (
        paused["paused_reason"])
    assert len(store.list_runs()) == runs_then  # no run was started without the login
    resumed = again.post(f"/api/schedules/{schedule['id']}/resume").json()
    assert resumed["enabled"] and resumed["paused_reason"] is None
    wait_for(lambda: len(again.http.get("/api/runs").json()["runs"]) > runs_then)


def test_schedule_events_over_the_socket(user: Browser,
                                         open_socket: Callable[..., Watcher]) -> None:
    socket = open_socket(user.cookie).client
    heard: list[dict[str, Any]] = []
    socket.on("schedule", heard.append)
    made = socket.call("schedule_create", {"schedule": nightly()}, timeout=10)
    schedule_id = made["schedule"]["id"]
    assert socket.call("schedules", {}, timeout=10)["schedules"][0]["id"] == schedule_id
    preview = socket.call("schedule_preview", {"schedule": nightly()}, timeout=10)
    assert len(preview["fires"]) == 5
    assert socket.call("schedule_preview", {"schedule": nightly(cron="@sometimes")},
                       timeout=10)["error"].startswith("The cron expression '@sometimes'")
    assert not socket.call("schedule_pause", {"schedule_id": schedule_id},
                           timeout=10)["schedule"]["enabled"]
    assert socket.call("schedule_resume", {"schedule_id": schedule_id},
                       timeout=10)["schedule"]["enabled"]
    assert socket.call("schedule_update", {"schedule_id": schedule_id,
                                           "schedule": {"name": "renamed"}},
                       timeout=10)["schedule"]["name"] == "renamed"
    run = socket.call("schedule_run_now", {"schedule_id": schedule_id}, timeout=10)
    assert isinstance(run["run_id"], str)
    assert socket.call("schedule_delete", {"schedule_id": "nope"}, timeout=10) == {
        "error": "There is no schedule 'nope'."}
    assert socket.call("schedule_delete", {"schedule_id": schedule_id}, timeout=10) == {
        "ok": True}
    wait_for(lambda: any(h["id"] == schedule_id and h["deleted"] for h in heard))
    assert {h["name"] for h in heard} >= {"nightly", "renamed"}


def test_schedule_events_reach_only_the_owners_sockets(
        user: Browser, browser: Callable[[], Browser],
        open_socket: Callable[..., Watcher]) -> None:
    other = browser()
    other.login("user2")
    mine, theirs = open_socket(user.cookie).client, open_socket(other.cookie).client
    heard_mine: list[dict[str, Any]] = []
    heard_theirs: list[dict[str, Any]] = []
    mine.on("schedule", heard_mine.append)
    theirs.on("schedule", heard_theirs.append)
    schedule_id = mine.call("schedule_create", {"schedule": nightly()}, timeout=10)[
        "schedule"]["id"]
    assert theirs.call("schedule_pause", {"schedule_id": schedule_id}, timeout=10) == {
        "error": f"There is no schedule {schedule_id!r}."}
    mine.call("schedule_pause", {"schedule_id": schedule_id}, timeout=10)
    wait_for(lambda: any(not h["enabled"] for h in heard_mine))
    assert theirs.call("schedules", {}, timeout=10) == {"schedules": []}
    assert heard_theirs == []  # (their own events would have come by now: same process)
