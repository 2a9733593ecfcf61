"""The admins' views in Chromium (docs/access.md): user3 is the admin. The admin view
lists another user's run, shows its output live and stops it; the audit page lists
what happened and downloads it; a user who is not an admin sees no way in and gets 403
from the views and their API."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask

from flask_realtime.web.access import NOT_ADMIN
from tests.auth.conftest import Browser

from .helpers import wait_js

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_settings() -> dict[str, Any]:
    return {"ADMIN_USERS": "user3@example.com",
            "STOP_GRACE_SECONDS": 0.5}


@pytest.fixture
def app(demo_app: Flask) -> Flask:
    return demo_app


@pytest.fixture
def user1(live_server: Any) -> Iterator[Browser]:
    """user1, logged in over HTTP (not in Chromium): the other user whose run it is."""
    b = Browser(live_server.url)
    b.login("user1")
    yield b
    b.close()


def _log_in(page: Any, url: str, user: str) -> None:
    page.goto(f"{url}/login?login_hint={user}")
    page.wait_for_selector("#conn.conn-connected")


def test_the_admin_view_lists_another_users_run_shows_it_live_and_stops_it(
        page: Any, live_server: Any, user1: Browser) -> None:
    run_id = user1.post("/api/runs", {"job": "ui_numbers",
                                      "params": {"n": 100_000, "delay": 0.02}}).json()["id"]
    _log_in(page, live_server.url, "user3")
    page.click("#admin-link")
    page.wait_for_url(f"{live_server.url}/admin")
    row = page.locator(f'#admin-runs tr[data-run-id="{run_id}"]')
    row.wait_for()
    assert row.locator("td").nth(0).text_content() == "user1@example.com"
    row.locator("button", has_text="Watch").click()
    wait_js(page, "document.getElementById('admin-output').textContent.includes('\\n3\\n')")
    assert page.text_content("#admin-watch-title") == f"ui_numbers · user1@example.com · {run_id}"
    page.click("#admin-stop")
    wait_js(page, "document.getElementById('admin-watch-state').textContent === 'stopped'")
    assert user1.http.get(f"/api/runs/{run_id}").json()["state"] == "stopped"
    # The row follows the run's state (admin_state) and offers no Stop any more.
    wait_js(page, f"""document.querySelector('#admin-runs tr[data-run-id="{run_id}"]')
                      .cells[2].textContent === 'stopped'""")
    assert row.locator("button", has_text="Stop").count() == 0
    # Filters: another user's name shows none of user1's runs.
    page.fill("#filter-user", "user2@example.com")
    page.click("#admin-filter button[type=submit]")
    wait_js(page, "document.querySelectorAll('#admin-runs tbody tr').length === 0")


def test_the_audit_page_lists_and_downloads_the_trail(
        page: Any, live_server: Any, user1: Browser) -> None:
    user1.post("/api/runs", {"job": "ui_numbers", "params": {"n": 1}})
    _log_in(page, live_server.url, "user3")
    page.goto(f"{live_server.url}/admin/audit")
    page.wait_for_selector("#audit-entries tbody tr")
    rows = page.locator("#audit-entries tbody tr")
    texts = [rows.nth(i).text_content() or "" for i in range(rows.count())]
    assert any("user1@example.com" in t and "start" in t and "ui_numbers" in t for t in texts)
    page.select_option("#filter-action", "login")
    page.click("#audit-filter button[type=submit]")
    wait_js(page, """[...document.querySelectorAll('#audit-entries tbody tr')]
                     .every((tr) => tr.cells[2].textContent === 'login')""")
    with page.expect_download() as info:
        page.click("#audit-csv")
    download = info.value
    assert download.suggested_filename == "audit.csv"
    with open(download.path(), encoding="utf-8") as f:
        rows_csv = list(csv.DictReader(io.StringIO(f.read())))
    assert rows_csv and {r["action"] for r in rows_csv} == {"login"}
    assert {"user1@example.com", "user3@example.com"} <= {r["actor"] for r in rows_csv}


def test_a_user_who_is_not_an_admin_sees_no_admin_view(page: Any, live_server: Any) -> None:
    _log_in(page, live_server.url, "user1")
    assert page.locator("#admin-link").count() == 0
    for path in ("/admin", "/admin/audit"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403 and NOT_ADMIN in page.text_content("body")
    for path in ("/api/admin/runs", "/api/admin/audit"):
        answer = page.request.get(f"{live_server.url}{path}")
        assert answer.status == 403 and answer.json() == {"error": NOT_ADMIN}
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    stop = httpx.post(f"{live_server.url}/api/admin/runs/any/stop", cookies=cookies)
    assert stop.status_code == 403  # no CSRF token, and no role either


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_admin_views_have_no_serious_accessibility_problems(
        page: Any, live_server: Any, user1: Browser, scheme: str) -> None:
    pytest.importorskip("axe_playwright_python.sync_playwright")
    from .test_a11y import serious

    run_id = user1.post("/api/runs", {"job": "ui_numbers", "params": {"n": 5}}).json()["id"]
    page.emulate_media(color_scheme=scheme)
    _log_in(page, live_server.url, "user3")
    assert serious(page) == []  # the console, with its Admin link
    page.goto(f"{live_server.url}/admin")
    page.locator(f'#admin-runs tr[data-run-id="{run_id}"] button', has_text="Watch").click()
    wait_js(page, "document.getElementById('admin-output').textContent.includes('5')")
    assert serious(page) == []
    page.goto(f"{live_server.url}/admin/audit")
    page.wait_for_selector("#audit-entries tbody tr")
    assert serious(page) == []
