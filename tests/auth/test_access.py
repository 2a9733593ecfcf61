"""Per-job access (docs/access.md): a job a user may not run is not listed; a start of
it answers exactly what a start of a name no job has answers (its existence is not
told to someone who guesses it), over HTTP and over Socket.IO; a re-run, a share, and
a share link opened by someone outside the rule are refused with 403 and a sentence
(the run names the job). One test per kind of entry (an address, a domain, a group, an
empty rule) on each transport."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_realtime.config import ConfigError
from flask_realtime.core.access import JobAccess
from flask_realtime.web.app import create_app
from tests.auth.conftest import Browser
from tests.conftest import Watcher, wait_for

FORBIDDEN = "You may not run the job"
#: (user, job, whether they may run it): each kind of rule, one user each side of it.
RULES = [
    ("user1", "only_user1", True), ("user2", "only_user1", False),       # an address
    ("user1", "same_domain", True), ("user2", "other_domain", False),    # a domain
    ("user2", "ops_only", True), ("user1", "ops_only", False),           # a group
    ("user1", "nobody", False),                                          # an empty rule
]


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "JOBS": app_config["JOBS"] + ",tests.auth.jobs_for_access",
            "JOB_GROUPS": "ops = user2@example.com", "ADMIN_USERS": ["user3@example.com"]}


def _job_names(b: Browser) -> set[str]:
    return {j["name"] for j in b.http.get("/api/jobs").json()["jobs"]}


def test_the_job_list_shows_each_user_only_what_they_may_run(
        browser: Callable[[], Browser]) -> None:
    user1, user2 = browser(), browser()
    user1.login("user1")
    user2.login("user2")
    restricted = {"only_user1", "same_domain", "other_domain", "ops_only", "nobody"}
    assert _job_names(user1) & restricted == {"only_user1", "same_domain"}
    assert _job_names(user2) & restricted == {"same_domain", "ops_only"}
    assert "countdown" in _job_names(user1)  # no rule: everyone's, as before


@pytest.fixture
def logged_in(browser: Callable[[], Browser]) -> dict[str, Browser]:
    """user1 and user2, each logged in in a browser of their own."""
    found = {}
    for name in ("user1", "user2"):
        found[name] = browser()
        found[name].login(name)
    return found


def test_http_start_follows_each_rule(logged_in: dict[str, Browser]) -> None:
    for who, job, allowed in RULES:
        b = logged_in[who]
        before = len(b.http.get("/api/runs").json()["runs"])
        response = b.post("/api/runs", {"job": job})
        if allowed:
            assert response.status_code == 201 and response.json()["job"] == job, (who, job)
        else:
            unknown = b.post("/api/runs", {"job": job + "_x"})  # a name no job has
            assert (response.status_code, unknown.status_code) == (400, 400), (who, job)
            assert response.json() == {"error": unknown.json()["error"].replace(
                f"{job}_x", job)}, (who, job)
            assert len(b.http.get("/api/runs").json()["runs"]) == before  # no run made


def test_socket_start_follows_each_rule(logged_in: dict[str, Browser],
                                        open_socket: Callable[..., Watcher]) -> None:
    sockets = {who: open_socket(b.cookie) for who, b in logged_in.items()}
    for who, job, allowed in RULES:
        before = len(logged_in[who].http.get("/api/runs").json()["runs"])
        answer = sockets[who].call("start", {"job": job})
        if allowed:
            assert "run_id" in answer, (who, job)
        else:
            unknown = sockets[who].call("start", {"job": job + "_x"})
            assert answer == {"error": unknown["error"].replace(f"{job}_x", job)}, (who, job)
            assert answer["error"].startswith(f"There is no job named {job!r}")
            assert len(logged_in[who].http.get("/api/runs").json()["runs"]) == before


def _finished_run(b: Browser, job: str) -> str:
    run_id: str = b.post("/api/runs", {"job": job}).json()["id"]
    wait_for(lambda: b.http.get(f"/api/runs/{run_id}").json()["state"] == "succeeded")
    return run_id


def test_a_rerun_and_a_share_are_refused_once_the_user_may_no_longer_run_the_job(
        app: Flask, browser: Callable[[], Browser]) -> None:
    user2 = browser()
    user2.login("user2")
    run_id = _finished_run(user2, "ops_only")
    app.extensions["flask_realtime"].service.access = JobAccess({"ops": ()})  # left ops
    rerun = user2.post(f"/api/runs/{run_id}/rerun")
    share = user2.post(f"/api/runs/{run_id}/shares")
    for response in (rerun, share):
        assert response.status_code == 403
        assert response.json()["error"].startswith(f"{FORBIDDEN} 'ops_only'")
    assert user2.http.get(f"/api/runs/{run_id}").status_code == 200  # still theirs to read


def test_a_share_link_does_not_show_a_job_the_viewer_may_not_run(
        browser: Callable[[], Browser], open_socket: Callable[..., Watcher]) -> None:
    user2, user1, admin = browser(), browser(), browser()
    user2.login("user2")
    user1.login("user1")
    admin.login("user3")
    run_id = _finished_run(user2, "ops_only")
    token = user2.post(f"/api/runs/{run_id}/shares").json()["url"].split("#share=")[1]
    for path in (f"/api/shared/{token}", f"/api/shared/{token}/lines",
                 f"/api/shared/{token}/log"):
        response = user1.http.get(path)
        assert response.status_code == 403 and FORBIDDEN in response.json()["error"]
        assert admin.http.get(path).status_code == 200  # admins see every run
    answer = open_socket(user1.cookie).call("watch_shared", {"token": token, "after": 0})
    assert answer["status"] == 403 and FORBIDDEN in answer["error"]
    assert open_socket(admin.cookie).call("watch_shared", {"token": token, "after": 0})["ok"]


def test_a_job_naming_an_undefined_group_stops_the_start_with_a_sentence(
        app_config: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "other"))
    with pytest.raises(ConfigError, match=re.escape(
            "Job 'ops_only' allows the group 'ops', which JOB_GROUPS (test config) does "
            "not define")):
        create_app({**app_config, "JOB_GROUPS": None})


@pytest.mark.parametrize(("key", "value"), [
    ("JOB_GROUPS", "ops carol@example.com"), ("JOB_GROUPS", {"ops": ["nobody"]}),
    ("ADMIN_USERS", "not-an-address"), ("ALLOWED_EMAIL_DOMAINS", "no dots"),
    ("AUDIT_RETENTION_DAYS", 0),
])
def test_access_settings_that_cannot_be_read_stop_the_start(
        app_config: dict[str, Any], key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"{key} .test config. is .*but it must be"):
        create_app({**app_config, key: value})


def test_the_jobs_command_says_who_may_run_a_restricted_job(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from flask_realtime.cli import main

    monkeypatch.setenv("FLASK_REALTIME_JOBS", "tests.auth.jobs_for_access")
    listed = CliRunner().invoke(main, ["jobs"]).output.splitlines()
    assert "ops_only()  A group: JOB_GROUPS's ops (user2 in the tests).  [allowed: ops]" in listed
    assert "nobody()  An empty rule: nobody.  [allowed: nobody]" in listed
    assert any(line.startswith("space_stats(") and "[allowed" not in line for line in listed)


def test_a_socket_start_does_not_tell_that_a_job_nobody_may_run_takes_a_file(
        logged_in: dict[str, Browser], open_socket: Callable[..., Watcher]) -> None:
    socket = open_socket(logged_in["user1"].cookie)
    refused = socket.call("start", {"job": "nobody_with_a_file"})
    unknown = socket.call("start", {"job": "nobody_with_a_file_x"})
    assert refused == {"error": unknown["error"].replace("_file_x", "_file")}


def test_a_schedule_of_a_job_the_user_may_not_run_is_refused_as_one_of_no_job(
        logged_in: dict[str, Browser]) -> None:
    """Not even the job's parameters are told (a ParamError would list their names)."""
    user1 = logged_in["user1"]

    def schedule(job: str) -> Any:
        return user1.post("/api/schedules", {"name": "n", "job": job, "cron": "@daily",
                                             "params": {"bogus": 1}})

    refused, unknown = schedule("ops_only"), schedule("ops_only_x")
    assert (refused.status_code, unknown.status_code) == (400, 400)
    assert refused.json() == {"error": unknown.json()["error"].replace("ops_only_x",
                                                                         "ops_only")}
    assert user1.http.get("/api/schedules").json()["schedules"] == []
    made = logged_in["user2"].post("/api/schedules", {"name": "n", "job": "ops_only",
                                                      "cron": "@daily"})
    assert made.status_code == 201, made.text  # user2 is in ops

