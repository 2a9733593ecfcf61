"""Reading a run: timestamps, copy, download, the theme, and what a screen reader hears."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from .helpers import drawn_lines, start_job, wait_js, wait_state

pytestmark = pytest.mark.browser


def test_timestamps_show_the_server_time_of_each_line(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "countdown", n=3, delay=0)
    wait_state(page, "succeeded")
    assert page.locator("#output .ts").count() == 0
    page.check("#show-times")
    wait_js(page, "document.querySelectorAll('#output .ts').length >= 4")
    stamps = page.eval_on_selector_all("#output .ts", "s => s.map(e => e.textContent)")
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", s) for s in stamps), stamps
    page.uncheck("#show-times")
    wait_js(page, "document.querySelectorAll('#output .ts').length === 0")


def test_copy_puts_the_whole_output_on_the_clipboard(open_page: Any, page: Any) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_page()
    start_job(page, "countdown", n=3, delay=0)
    wait_state(page, "succeeded")
    page.click("#copy-btn")
    wait_js(page, "document.getElementById('announcer').textContent === 'Output copied.'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.splitlines() == ["3", "2", "1", "Liftoff!"]


def test_download_serves_the_whole_log(open_page: Any, page: Any, live_server: Any) -> None:
    open_page()
    run_id = start_job(page, "countdown", n=5, delay=0)
    wait_state(page, "succeeded")
    with page.expect_download() as download:
        page.click("#download-link")
    path = download.value.path()
    assert download.value.suggested_filename == f"countdown-{run_id}.log"
    with open(path, encoding="utf-8") as f:
        assert f.read().splitlines() == ["5", "4", "3", "2", "1", "Liftoff!"]
    assert httpx.get(f"{live_server.url}/api/runs/{run_id}/log").status_code == 200


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_theme_follows_the_system_preference(open_page: Any, page: Any, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    open_page()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
    brightness = (red + green + blue) / 3
    assert (brightness < 80) if scheme == "dark" else (brightness > 200), background


def test_screen_readers_hear_state_changes_not_every_line(open_page: Any, page: Any) -> None:
    open_page()
    page.evaluate("""() => {
        window.heard = [];
        new MutationObserver(() => window.heard.push(
            document.getElementById('announcer').textContent)).observe(
            document.getElementById('announcer'),
            {childList: true, characterData: true, subtree: true});
    }""")
    start_job(page, "countdown", n=50, delay=0)
    wait_state(page, "succeeded")
    assert "Liftoff!" in drawn_lines(page)
    heard = page.evaluate("window.heard")
    assert any(h.endswith("succeeded.") for h in heard), heard
    assert len(heard) <= 5, heard  # a few state changes, not 51 lines
    assert not any(h.strip() in {"1", "25", "Liftoff!"} for h in heard), heard
