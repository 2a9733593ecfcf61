"""Bad input over HTTP: schemathesis fuzzes every route of /api/openapi.json.

Each operation gets generated requests, valid and invalid (wrong types, out-of-range
numbers, odd strings in paths and queries, broken bodies), sent with a real session
cookie and CSRF token so that the handlers behind the checks are reached. The checks:
no 5xx, status codes and content types the document lists, bodies that conform to its
schemas, and the server logs no traceback.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings

from tests.hardening.conftest import ServerProblems

schemathesis = pytest.importorskip("schemathesis")

from schemathesis import GenerationMode  # noqa: E402

#: The routes of /api/openapi.json (a test in tests/web checks it lists every route).
OPERATIONS = ["GET /api/openapi.json", "GET /api/jobs", "GET /api/runs", "POST /api/runs",
              "GET /api/runs/{run_id}", "POST /api/runs/{run_id}/stop",
              "GET /api/runs/{run_id}/lines", "GET /api/runs/{run_id}/log"]


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # TESTING off: an unexpected exception must become the app's 500 answer (and a 5xx
    # failure here), not be re-raised into the test client.
    return {**app_config, "TESTING": False, "RUNS_PER_USER": 1000, "RUNS_TOTAL": 1000}


@pytest.fixture
def api_schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@pytest.fixture
def logged_in(app: Flask) -> dict[str, str]:
    """The headers of a page's requests: its session cookie and its CSRF token."""
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'data-csrf-token="([^"]+)"', page)
    cookie = client.get_cookie("session")
    assert token and cookie
    return {"Cookie": f"session={cookie.value}", "X-CSRF-Token": token.group(1)}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_api_never_fails_and_conforms(
    label: str, mode: Any, api_schema: Any, logged_in: dict[str, str],
    server_problems: ServerProblems,
) -> None:
    operations = {r.ok().label: r.ok() for r in api_schema.get_all_operations()}
    if label not in operations:
        assert label == "GET /api/openapi.json"  # schemathesis skips the document itself
        return

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operations[label].as_strategy(mode))
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(headers=logged_in)
        assert response.status_code < 500
        if response.status_code >= 400 and "json" in response.headers.get("Content-Type", ""):
            error = response.json().get("error")
            assert isinstance(error, str) and len(error) > 10, response.text
        assert server_problems.summary() == []

    fuzz()
