"""The audit trail (docs/access.md, "Audit trail"): who logged in and out, started,
stopped, re-ran, shared and downloaded what, and every admin action, with the time and
the client's address; readable and downloadable (JSON, CSV) by admins only; bounded by
its retention; and never holding a secret (tokens, cookies, OAuth codes, share-link
tokens, parameters marked secret)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_realtime.web.audit import SECRET, _cell
from tests.auth.conftest import Browser
from tests.conftest import Watcher, wait_for

ADMIN = "user3@example.com"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "JOBS": app_config["JOBS"] + ",tests.auth.jobs_for_access",
            "JOB_GROUPS": "ops = user2@example.com", "ADMIN_USERS": [ADMIN]}


def _trail(admin: Browser, **query: str) -> list[dict[str, Any]]:
    response = admin.http.get("/api/admin/audit", params={"limit": "1000", **query})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def _finished(b: Browser, run_id: str) -> None:
    wait_for(lambda: b.http.get(f"/api/runs/{run_id}").json()["state"] in (
        "succeeded", "stopped", "failed"))


def test_every_action_is_recorded_with_who_when_and_where(
        browser: Callable[[], Browser], open_socket: Callable[..., Watcher]) -> None:
    user, admin = browser(), browser()
    user.login("user1")
    run_id = user.post("/api/runs", {"job": "countdown", "params": {"n": 1, "delay": 0}}
                       ).json()["id"]
    _finished(user, run_id)
    rerun_id = user.post(f"/api/runs/{run_id}/rerun").json()["id"]
    _finished(user, rerun_id)
    user.post(f"/api/runs/{run_id}/stop")
    share = user.post(f"/api/runs/{run_id}/shares", {"expires_in": 60}).json()
    user.http.delete(f"/api/runs/{run_id}/shares/{share['id']}",
                     headers={"X-CSRF-Token": user.csrf()})
    user.http.get(f"/api/runs/{run_id}/log")
    user.http.get(f"/api/runs/{run_id}/log?download=0")  # reading in the page: no entry
    socket = open_socket(user.cookie)
    socket_run = socket.call("start", {"job": "gate"})["run_id"]
    socket.call("stop", {"run_id": socket_run})
    user.logout()
    admin.login("user3")
    admin.post(f"/api/admin/runs/{run_id}/stop")
    admin.http.get(f"/api/admin/runs/{run_id}")
    admin.http.get(f"/api/admin/runs/{run_id}/lines")
    admin.http.get(f"/api/admin/runs/{run_id}/log")
    open_socket(admin.cookie).call("admin_watch", {"run_id": run_id, "after": 0})

    entries = _trail(admin)[::-1]  # oldest first
    seen = [(e["actor"], e["action"], e.get("run_id")) for e in entries]
    u1 = "user1@example.com"
    assert seen == [
        (u1, "login", None), (u1, "start", run_id), (u1, "rerun", rerun_id),
        (u1, "stop", run_id), (u1, "share", run_id), (u1, "revoke_share", run_id),
        (u1, "download", run_id), (u1, "start", socket_run), (u1, "stop", socket_run),
        (u1, "logout", None), (ADMIN, "login", None), (ADMIN, "admin_stop", run_id),
        (ADMIN, "admin_read", run_id), (ADMIN, "admin_read", run_id),
        (ADMIN, "admin_download", run_id), (ADMIN, "admin_watch", run_id)]
    assert all(e["address"] == "127.0.0.1" for e in entries)
    assert all(e["time"].endswith("+00:00") and isinstance(e["at"], float) for e in entries)
    by_action = {e["action"]: e for e in entries[::-1]}  # the first of each
    assert by_action["start"]["job"] == "countdown"
    assert by_action["start"]["detail"] == {"params": {"n": 1, "delay": 0}}
    assert by_action["rerun"]["detail"]["from"] == run_id
    assert by_action["admin_stop"]["owner"] == u1 and "owner" not in by_action["stop"]
    assert [e["action"] for e in _trail(admin, actor=ADMIN, action="admin_stop")] == [
        "admin_stop"]


def test_the_trail_is_downloadable_as_csv_and_json(browser: Callable[[], Browser]) -> None:
    admin = browser()
    admin.login("user3")
    admin.post("/api/runs", {"job": "countdown", "params": {"n": 0}})
    as_csv = admin.http.get("/api/admin/audit", params={"format": "csv"})
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert as_csv.headers["Content-Disposition"] == 'attachment; filename="audit.csv"'
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["action"] for r in rows][-2:] == ["start", "login"]
    assert rows[-1]["actor"] == ADMIN and rows[-2]["job"] == "countdown"
    as_json = admin.http.get("/api/admin/audit", params={"format": "json", "download": "1"})
    assert as_json.headers["Content-Disposition"] == 'attachment; filename="audit.json"'
    actions = [e["action"] for e in json.loads(as_json.text)]
    # Each download is recorded first, so the newest entry of each is the download itself.
    assert actions[:4] == ["admin_audit_export", "admin_audit_export", "start", "login"]
    bad = admin.http.get("/api/admin/audit", params={"format": "xml"})
    assert bad.status_code == 400 and "format must be json or csv" in bad.json()["error"]


def test_csv_cells_cannot_become_spreadsheet_formulas() -> None:
    assert _cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert [_cell(v) for v in ("+1", "-1", "@sum", "\tx")] == ["'+1", "'-1", "'@sum", "'\tx"]
    assert _cell("user1@example.com") == "user1@example.com"
    assert _cell({"a": 1}) == '{"a": 1}' and _cell(None) == ""


def test_no_secret_reaches_the_trail(app: Flask, browser: Callable[[], Browser]) -> None:
    user, admin = browser(), browser()
    login = user.login("user1")
    codes = [r.url.params.get("code") for r in login.history if r.url.params.get("code")]
    assert codes, "the login went through /redirect?code=..."
    run_id = user.post("/api/runs", {"job": "with_secret",
                                     "params": {"password": "hunter2-very-secret", "n": 4}}
                       ).json()["id"]
    _finished(user, run_id)
    link = user.post(f"/api/runs/{run_id}/shares").json()["url"]
    admin.login("user3")
    tokens = app.extensions["flask_realtime_auth"].vault.load("user1@example.com")
    entries = _trail(admin)
    text = json.dumps(entries) + admin.http.get("/api/admin/audit?format=csv").text
    start = next(e for e in entries if e["action"] == "start")
    assert start["detail"] == {"params": {"password": SECRET, "n": 4}}
    for secret in ("hunter2-very-secret", tokens.access_token, tokens.refresh_token,
                   user.cookie, admin.cookie, link.split("#share=")[1], *codes):
        assert secret and secret not in text


def test_only_admins_read_the_trail(browser: Callable[[], Browser]) -> None:
    user = browser()
    user.login("user1")
    for query in ("", "?format=csv", "?format=json&download=1"):
        assert user.http.get(f"/api/admin/audit{query}").status_code == 403


class TestRetention:
    @pytest.fixture
    def app_config(self, app_config: dict[str, Any]) -> dict[str, Any]:
        return {**app_config, "AUDIT_RETENTION_ENTRIES": 3}

    def test_only_the_newest_entries_are_kept(self, browser: Callable[[], Browser]) -> None:
        admin = browser()
        admin.login("user3")
        for _ in range(4):
            admin.post("/api/runs", {"job": "countdown", "params": {"n": 0}})
        assert [e["action"] for e in _trail(admin)] == ["start", "start", "start"]


def test_what_a_user_does_to_schedules_is_recorded(
        browser: Callable[[], Browser], open_socket: Callable[..., Watcher]) -> None:
    user, admin = browser(), browser()
    user.login("user1")
    made = user.post("/api/schedules", {"name": "hourly", "job": "countdown",
                                        "cron": "@hourly", "params": {"n": 0}})
    assert made.status_code == 201, made.text
    schedule_id = made.json()["id"]
    user.post(f"/api/schedules/{schedule_id}/pause")
    run = user.post(f"/api/schedules/{schedule_id}/run").json()
    socket = open_socket(user.cookie)
    assert socket.call("schedule_resume", {"schedule_id": schedule_id}).get("schedule")
    user.http.delete(f"/api/schedules/{schedule_id}", headers={"X-CSRF-Token": user.csrf()})
    admin.login("user3")
    entries = [e for e in _trail(admin, action="schedule")[::-1]]
    assert [(e["actor"], e["detail"]["op"], e["detail"]["schedule_id"]) for e in entries] == [
        ("user1@example.com", op, schedule_id)
        for op in ("create", "pause", "run_now", "resume", "delete")]
    assert entries[2]["run_id"] == run["id"]
    assert all(e["detail"]["name"] == "hourly" and e["address"] for e in entries)


def test_a_start_sent_again_with_its_request_id_is_recorded_once(
        browser: Callable[[], Browser], open_socket: Callable[..., Watcher]) -> None:
    """A client that sends a start again (its reply was lost) with the same
    ``request_id`` gets the first run back, over HTTP and Socket.IO alike; the trail
    holds one ``start`` (or ``rerun``) for that run, not one per request."""
    user, admin = browser(), browser()
    user.login("user1")
    start = {"job": "countdown", "params": {"n": 1, "delay": 0}, "request_id": "again-1"}
    first = user.post("/api/runs", start).json()["id"]
    assert user.post("/api/runs", start).json()["id"] == first
    _finished(user, first)
    rerun = user.post(f"/api/runs/{first}/rerun", {"request_id": "again-2"}).json()["id"]
    assert user.post(f"/api/runs/{first}/rerun", {"request_id": "again-2"}).json()["id"] == rerun
    socket = open_socket(user.cookie)
    ask = {"job": "countdown", "params": {"n": 1, "delay": 0}, "request_id": "again-3"}
    by_socket = socket.call("start", ask)["run_id"]
    assert socket.call("start", ask)["run_id"] == by_socket
    admin.login("user3")
    seen = [(e["action"], e.get("run_id")) for e in _trail(admin)[::-1]
            if e["action"] in ("start", "rerun")]
    assert seen == [("start", first), ("rerun", rerun), ("start", by_socket)]
