"""Admins read any run's files (docs/access.md, "Admins"): artifacts, pictures and the
result as CSV, each read of another user's files recorded in the audit trail; for
everyone else another user's files stay indistinguishable from none (404)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.auth.conftest import Browser
from tests.auth.test_admin import people  # noqa: F401  (the fixture: user1, user2, admin)
from tests.conftest import wait_for


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "ADMIN_USERS": "User3@example.com",
            "JOBS": app_config["JOBS"] + ",tests.jobs_for_files"}


def test_an_admin_reads_another_users_files_and_the_trail_says_so(
        people: tuple[Browser, Browser, Browser]) -> None:  # noqa: F811
    user1, user2, admin = people
    run_id = user1.post("/api/runs", {"job": "make_files"}).json()["id"]
    wait_for(lambda: user1.http.get(f"/api/runs/{run_id}").json()["state"] == "succeeded")
    chart = f"/api/runs/{run_id}/artifacts/chart.png"
    owner = user1.http.get(chart)
    assert owner.status_code == 200
    assert user2.http.get(chart).status_code == 404  # another user: as if there were none
    assert user2.http.get(f"/api/runs/{run_id}/pictures/chart.png").status_code == 404
    got = admin.http.get(chart)
    assert got.status_code == 200 and got.content == owner.content
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert admin.http.get(f"/api/runs/{run_id}/pictures/chart.png").status_code == 200
    entries = admin.http.get("/api/admin/audit").json()["entries"]
    reads = [e for e in entries if e["action"] == "admin_download" and e.get("run_id") == run_id]
    assert reads and reads[0]["actor"] == "user3@example.com"
    assert reads[0]["owner"] == "user1@example.com"
    # The owner reading their own files is no admin action.
    assert not any(e["action"] == "admin_download" and e["actor"] == "user1@example.com"
                   for e in entries)
