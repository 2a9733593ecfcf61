"""Bad input over HTTP: schemathesis fuzzes every route of /api/openapi.json.

Each operation gets generated requests, valid and invalid (wrong types, out-of-range
numbers, odd strings in paths and queries, broken bodies), sent with the session cookie
and CSRF token of a user who logged in through the Webex simulator, so that the
handlers behind the checks are reached. The checks (all of schemathesis's defaults):
no 5xx, the request refused without the session, status codes and content types the
document lists, bodies that conform to its schemas; and the server logs no traceback.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.auth.conftest import (  # noqa: F401  (fixtures: a demo-mode app, a logged-in user)
    Browser,
    app,
    browser,
    simulator,
    simulator_options,
    user,
)
from tests.conftest import LiveServer
from tests.hardening.conftest import ServerProblems

schemathesis = pytest.importorskip("schemathesis")

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

#: The routes of /api/openapi.json (a test in tests/web checks it lists every route).
OPERATIONS = ["GET /api/openapi.json", "GET /api/jobs", "GET /api/runs", "POST /api/runs",
              "GET /api/runs/{run_id}", "POST /api/runs/{run_id}/stop",
              "GET /api/runs/{run_id}/lines", "GET /api/runs/{run_id}/log",
              # schedules (web/schedules.py)
              "GET /api/schedules", "POST /api/schedules", "POST /api/schedules/preview",
              "GET /api/schedules/{schedule_id}", "PATCH /api/schedules/{schedule_id}",
              "DELETE /api/schedules/{schedule_id}", "POST /api/schedules/{schedule_id}/pause",
              "POST /api/schedules/{schedule_id}/run"]
#: A body that fits the document may still name no registered job, or give a job
#: parameters it does not take: 400 with the reasons is the documented answer.
REFUSABLE = {"POST /api/runs", "POST /api/schedules", "POST /api/schedules/preview",
             "PATCH /api/schedules/{schedule_id}"}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # TESTING off: an unexpected exception must become the app's 500 answer (and a 5xx
    # failure here), not be re-raised into the test client.
    return {**app_config, "TESTING": False, "LOGIN_REQUIRED": None, "RUNS_PER_USER": 1000,
            "RUNS_TOTAL": 1000}


@pytest.fixture
def logged_in(user: Browser) -> tuple[str, str]:  # noqa: F811
    """A logged-in page's session cookie and CSRF token."""
    assert user.cookie
    return user.cookie, user.csrf()


def authenticate(case: Any, cookie: str, token: str) -> None:
    """Send the real cookie and token, except where the case is about their absence.

    In the document both are security schemes; schemathesis's invalid cases include
    requests whose cookie or header is missing or wrong, and those must stay so (and
    be refused).
    """
    components = case.meta.components if case.meta is not None else {}

    def mutated(location: str) -> bool:
        info = next((v for k, v in components.items() if k.value == location), None)
        return info is not None and info.mode == GenerationMode.NEGATIVE

    if not mutated("cookie"):
        case.cookies = {**(case.cookies or {}), "session": cookie}
    if not mutated("header"):
        case.headers = {**(case.headers or {}), "X-CSRF-Token": token}


@pytest.fixture
def api_schema(user: Browser) -> Any:  # noqa: F811
    """The document as the server serves it (to a logged-in user)."""
    return schemathesis.openapi.from_dict(user.http.get("/api/openapi.json").json())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_api_never_fails_and_conforms(
    label: str, mode: Any, api_schema: Any, logged_in: tuple[str, str],
    live_server: LiveServer, server_problems: ServerProblems,
) -> None:
    operations = {r.ok().label: r.ok() for r in api_schema.get_all_operations()}
    if label not in operations:
        assert label == "GET /api/openapi.json"  # schemathesis skips the document itself
        return

    # A start that fits the document may still name no registered job, or give a job
    # parameters it does not take: 400 with the reasons is the documented answer.
    excluded = [positive_data_acceptance] if label in REFUSABLE else []

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operations[label].as_strategy(mode))
    def fuzz(case: Any) -> None:
        authenticate(case, *logged_in)
        response = case.call_and_validate(base_url=live_server.url, excluded_checks=excluded)
        assert response.status_code < 500
        if response.status_code >= 400 and "json" in response.headers.get("Content-Type", ""):
            error = response.json().get("error")
            assert isinstance(error, str) and len(error) > 10, response.text
        assert server_problems.summary() == []

    fuzz()
