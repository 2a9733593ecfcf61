"""POST /api/runs/<id>/rerun: the same job and parameters again, for the run's owner only
(docs/protocol.md, "HTTP")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tests.auth import conftest as logins
from tests.auth.conftest import Browser
from tests.conftest import wait_for

# A live server in demo mode with logins, from tests/auth/conftest.py.
app_config, app, browser, user = logins.app_config, logins.app, logins.browser, logins.user
simulator, simulator_options = logins.simulator, logins.simulator_options

def finished_countdown(user: Browser, n: int = 2) -> dict[str, Any]:
    started = user.post("/api/runs", {"job": "countdown", "params": {"n": n, "delay": 0}})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    return dict(wait_for(lambda: (r := user.http.get(f"/api/runs/{run_id}").json())
                         ["state"] == "succeeded" and r))


def test_rerun_starts_a_new_run_of_the_same_job_and_params(user: Browser) -> None:
    first = finished_countdown(user, n=3)
    response = user.post(f"/api/runs/{first['id']}/rerun")
    assert response.status_code == 201, response.text
    again = response.json()
    assert again["id"] != first["id"] and response.headers["Location"].endswith(again["id"])
    assert (again["job"], again["params"]) == ("countdown", {"n": 3, "delay": 0.0})


def test_rerun_with_the_same_request_id_starts_once(user: Browser) -> None:
    first = finished_countdown(user)
    body = {"request_id": "again-1"}
    one = user.post(f"/api/runs/{first['id']}/rerun", body).json()
    two = user.post(f"/api/runs/{first['id']}/rerun", body).json()
    assert one["id"] == two["id"]


def test_another_users_run_cannot_be_rerun(user: Browser,
                                            browser: Callable[[], Browser]) -> None:
    first = finished_countdown(user)
    other = browser()
    other.login("user2")
    response = other.post(f"/api/runs/{first['id']}/rerun")
    assert response.status_code == 404 and "There is no run" in response.json()["error"]
    assert other.http.get("/api/runs").json()["runs"] == []


def test_rerun_without_csrf_token_is_403(user: Browser) -> None:
    first = finished_countdown(user)
    assert user.post(f"/api/runs/{first['id']}/rerun", csrf=False).status_code == 403
    assert len(user.http.get("/api/runs").json()["runs"]) == 1


def test_rerun_of_a_job_no_longer_offered_is_400(user: Browser, app: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = finished_countdown(user)
    monkeypatch.delitem(app.extensions["flask_realtime"].registry._jobs, "countdown")
    response = user.post(f"/api/runs/{first['id']}/rerun")
    assert response.status_code == 400 and "no job named 'countdown'" in response.json()["error"]


def test_rerun_validates_the_params_again(user: Browser, app: Any) -> None:
    first = finished_countdown(user)
    store = app.extensions["flask_realtime"].store
    run = store.get_run(first["id"])
    assert store.replace_run(replace(run, params={"n": -5, "delay": 0}), run.state)
    response = user.post(f"/api/runs/{first['id']}/rerun")
    assert response.status_code == 400 and set(response.json()["errors"]) == {"n"}


def test_rerun_body_must_be_an_object_when_sent(user: Browser) -> None:
    first = finished_countdown(user)
    response = user.post(f"/api/runs/{first['id']}/rerun", ["not", "an", "object"])
    assert response.status_code == 400 and "JSON object" in response.json()["error"]
