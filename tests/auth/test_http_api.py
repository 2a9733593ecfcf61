"""Starting and stopping over HTTP, with a login: CSRF, limits, errors, the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.auth.conftest import Browser
from tests.conftest import LiveServer, wait_for
from tests.jobs_for_tests import gate_open


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "RUNS_PER_USER": 2, "RUNS_TOTAL": 3}


@pytest.fixture(autouse=True)
def open_gate_afterwards() -> Any:
    gate_open.clear()
    yield
    gate_open.set()


def state_of(b: Browser, run_id: str) -> str:
    return str(b.http.get(f"/api/runs/{run_id}").json()["state"])


def test_api_needs_a_login(live_server: LiveServer, browser: Callable[[], Browser]) -> None:
    anonymous = browser()
    for path in ("/api/jobs", "/api/runs", "/api/runs/x", "/api/openapi.json"):
        response = anonymous.http.get(path)
        assert response.status_code == 401 and "Log in" in response.json()["error"]


def test_start_without_csrf_token_is_403(user: Browser) -> None:
    response = user.post("/api/runs", {"job": "countdown"}, csrf=False)
    assert response.status_code == 403 and user.http.get("/api/runs").json()["runs"] == []


def test_start_and_stop_over_http(user: Browser) -> None:
    started = user.post("/api/runs", {"job": "gate", "request_id": "r-1"})
    assert started.status_code == 201
    run = started.json()
    assert run["job"] == "gate" and run["state"] in ("queued", "running")
    again = user.post("/api/runs", {"job": "gate", "request_id": "r-1"})
    assert again.json()["id"] == run["id"]  # a retried start does not start twice
    assert user.post(f"/api/runs/{run['id']}/stop").json() == {"ok": True}
    wait_for(lambda: state_of(user, run["id"]) == "stopped")
    assert user.post(f"/api/runs/{run['id']}/stop").json() == {"ok": True}  # harmless


def test_stop_without_csrf_token_is_403(user: Browser) -> None:
    run_id = user.post("/api/runs", {"job": "gate"}).json()["id"]
    assert user.post(f"/api/runs/{run_id}/stop", csrf=False).status_code == 403
    assert state_of(user, run_id) in ("queued", "running")


def test_bad_starts_are_400_with_sentences(user: Browser) -> None:
    response = user.post("/api/runs", {"job": "countdown", "params": {"n": -1, "delay": "x"}})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"n", "delay"}
    assert "no job named" in user.post("/api/runs", {"job": "nope"}).json()["error"]
    assert user.post("/api/runs", ["not", "an", "object"]).status_code == 400
    assert user.post("/api/runs", {"job": "gate", "request_id": 5}).status_code == 400


def test_stopping_an_unknown_run_is_404(user: Browser) -> None:
    response = user.post("/api/runs/nope/stop")
    assert response.status_code == 404 and "There is no run" in response.json()["error"]


def test_per_user_limit_is_429_with_a_sentence(user: Browser) -> None:
    for _ in range(2):
        assert user.post("/api/runs", {"job": "gate"}).status_code == 201
    refused = user.post("/api/runs", {"job": "gate"})
    assert refused.status_code == 429 and "stop one or wait" in refused.json()["error"]


def test_total_limit_is_429_with_a_sentence(browser: Callable[[], Browser]) -> None:
    first, second = browser(), browser()
    first.login("user1")
    second.login("user2")
    for b in (first, first, second):
        assert b.post("/api/runs", {"job": "gate"}).status_code == 201
    refused = second.post("/api/runs", {"job": "gate"})
    assert refused.status_code == 429 and "as many jobs as it allows" in refused.json()["error"]


def test_openapi_document_validates_and_covers_every_route(user: Browser, app: Any) -> None:
    document = user.http.get("/api/openapi.json").json()
    validate(document)
    documented = {(path, method.upper()) for path, item in document["paths"].items()
                  for method in item}
    routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routes
