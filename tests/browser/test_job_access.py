"""Per-job access in Chromium (docs/access.md, "Per-job access"): the page's job picker
offers each user only the jobs their rules let them run."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

pytestmark = pytest.mark.browser

RESTRICTED = {"only_user1", "same_domain", "other_domain", "ops_only", "nobody"}


@pytest.fixture
def demo_settings(app_config: dict[str, Any]) -> dict[str, Any]:
    return {"JOBS": app_config["JOBS"] + ",tests.auth.jobs_for_access",
            "JOB_GROUPS": '{"ops": ["user2@example.com"]}'}


@pytest.fixture
def app(demo_app: Flask) -> Flask:
    return demo_app


def _offered(page: Any, url: str, user: str) -> set[str]:
    page.goto(f"{url}/login?login_hint={user}")
    page.wait_for_selector("#conn.conn-connected")
    page.wait_for_selector("#job-select option", state="attached")
    values = page.eval_on_selector_all("#job-select option", "(os) => os.map((o) => o.value)")
    return set(values) & RESTRICTED


def test_the_picker_offers_each_user_only_the_jobs_they_may_run(
        page: Any, browser: Any, live_server: Any) -> None:
    assert _offered(page, live_server.url, "user1") == {"only_user1", "same_domain"}
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        assert _offered(other.new_page(), live_server.url, "user2") == {
            "same_domain", "ops_only"}
    finally:
        other.close()
