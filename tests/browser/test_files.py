"""Files in the page (issue 20, items 5 to 8): a file picker for a job's file parameter,
a run's files as downloads and its PNG pictures inline, sortable result tables with a
CSV download. Each test leaves a screenshot in test-artifacts/browser/."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from .helpers import start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

LIMIT = 100_000


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "JOBS": "tests.browser.jobs_for_tests,tests.jobs_for_files",
            "MAX_UPLOAD_BYTES": LIMIT}


def pick(page: Any, name: str, data: bytes) -> None:
    page.set_input_files("#param-data", files=[
        {"name": name, "mimeType": "text/plain", "buffer": data}])


def test_a_file_job_offers_a_picker_and_gets_the_file(open_page: Any, page: Any) -> None:
    open_page()
    page.select_option("#job-select", "file_lines")
    assert page.get_attribute("#param-data", "type") == "file"
    pick(page, "notes.txt", b"one\ntwo\nthree\n")
    page.fill("#param-label", "read ")
    page.click("#start-btn")
    wait_state(page, "succeeded")
    page.wait_for_selector("#result:not([hidden])")
    assert '"lines": 3' in page.text_content("#result-body")
    assert page.text_content("#run-params") == "data=notes.txt, label=read "
    assert page.evaluate("window.flaskRealtime.session.lines.length") >= 1


def test_a_file_too_large_is_refused_in_the_form_before_it_is_sent(
        open_page: Any, page: Any) -> None:
    open_page()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.select_option("#job-select", "file_lines")
    pick(page, "big.bin", b"x" * (LIMIT + 1))
    page.click("#start-btn")
    assert page.text_content("#param-data-error") == (
        "This file is 100 kB, larger than the 100 kB a file may have.")
    assert page.get_attribute("#param-data", "aria-invalid") == "true"
    assert posts == [] and page.locator("#runs-body tr").count() == 0


def test_the_servers_refusal_of_a_file_shows_at_its_field(open_page: Any, page: Any) -> None:
    """The page's own check lifted (an older page, a changed limit): the server's
    sentence lands at the field."""
    open_page()
    page.select_option("#job-select", "file_lines")
    page.evaluate("window.flaskRealtime.form.inputs.get('data').param.max_bytes = 0")
    pick(page, "big.bin", b"x" * (LIMIT + 1))
    page.click("#start-btn")
    page.wait_for_selector("#param-data-error:has-text('MAX_UPLOAD_BYTES')")
    assert f"larger than the {LIMIT:,} bytes" in page.text_content("#param-data-error")
    assert page.locator("#runs-body tr").count() == 0


def test_a_runs_files_are_downloads_and_its_png_is_shown(open_page: Any, page: Any) -> None:
    open_page()
    run_id = start_job(page, "make_files")
    wait_state(page, "succeeded")
    page.wait_for_selector("#files:not([hidden])")
    assert page.locator("#files-list a").all_text_contents() == [
        "chart.png", "drawing.svg", "report.csv"]
    images = page.locator("#files-pictures img")
    assert images.count() == 1, "only the PNG is shown; the SVG is a download"
    assert images.get_attribute("src") == f"/api/runs/{run_id}/pictures/chart.png"
    wait_js(page, "document.querySelector('#files-pictures img').naturalWidth === 2")
    assert page.title() != "svg ran"
    with page.expect_download() as info:
        page.click("#files-list a:has-text('drawing.svg')")
    download = info.value
    assert download.suggested_filename == "drawing.svg"
    with open(download.path(), "rb") as f:
        assert f.read().startswith(b"<svg")


def test_a_returned_picture_shows_in_the_result(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "a_picture")
    wait_state(page, "succeeded")
    page.wait_for_selector("#files-pictures img[alt='red.png']")
    wait_js(page, "document.querySelector('#files-pictures img').naturalWidth === 2")
    assert page.locator("#files-list a").all_text_contents() == ["red.png"]


def column(page: Any, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#result-body tbody tr td:nth-child({index})", "cells => cells.map(c => c.textContent)")


def test_a_result_table_sorts_by_column_and_downloads_as_csv(open_page: Any, page: Any) -> None:
    open_page()
    start_job(page, "a_table", rows=12)
    wait_state(page, "succeeded")
    page.wait_for_selector("#result-body table")
    size = page.locator("#result-body th", has_text="size")
    assert size.get_attribute("aria-sort") is None
    size.locator("button").click()
    assert size.get_attribute("aria-sort") == "ascending"
    # Numbers as numbers (2 before 10), the empty cell last.
    assert column(page, 2) == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "10", "11", ""]
    size.locator("button").press("Enter")  # the keyboard sorts too
    assert size.get_attribute("aria-sort") == "descending"
    assert column(page, 2) == ["11", "10", "8", "7", "6", "5", "4", "3", "2", "1", "0", ""]
    score = page.locator("#result-body th", has_text="score")
    score.locator("button").click()
    assert score.get_attribute("aria-sort") == "ascending" and size.get_attribute(
        "aria-sort") is None
    # Ties (the three rows of 2.5) keep their order in the result (rows 3, 7 and 11).
    assert column(page, 3)[:3] == ["2.5", "2.5", "2.5"]
    assert column(page, 1)[:3] == ['=HYPERLINK("http://x")', "pear", "+1"]
    with page.expect_download() as info:
        page.click("#result-csv")
    with open(info.value.path(), encoding="utf-8") as f:
        rows = list(csv.reader(io.StringIO(f.read())))
    assert rows[0] == ["name", "size", "score"]
    assert "'=HYPERLINK(\"http://x\")" in [r[0] for r in rows]


def test_a_body_the_server_refuses_unread_is_a_sentence_under_the_form(
        open_page: Any, page: Any) -> None:
    """Past the form-body limit the server answers 413 from Content-Length without
    reading the body; the page says so in a sentence (or, if the connection closed
    first, says that), and nothing started."""
    open_page()
    page.select_option("#job-select", "file_lines")
    page.evaluate("window.flaskRealtime.form.inputs.get('data').param.max_bytes = 0")
    pick(page, "huge.bin", b"x" * (LIMIT * 8))
    page.click("#start-btn")
    page.wait_for_selector("#form-message:not([hidden])")
    message = page.text_content("#form-message")
    assert message in (
        f"The upload is too large: a file may have at most {LIMIT:,} bytes "
        "(MAX_UPLOAD_BYTES). Choose a smaller file.",
        "The file could not be sent: the connection closed (a server refuses a file too "
        "large that way). Choose a smaller file, or try again."), message
    assert page.is_enabled("#start-btn") and page.locator("#runs-body tr").count() == 0


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_files_and_a_sorted_table_have_no_serious_accessibility_problems(
        open_page: Any, page: Any, scheme: str) -> None:
    from .test_a11y import serious  # axe-core, as the console's own checks run it

    page.emulate_media(color_scheme=scheme)
    open_page()
    start_job(page, "make_files")
    wait_state(page, "succeeded")
    page.wait_for_selector("#files-pictures img")
    assert serious(page) == []
    start_job(page, "a_table", rows=5)
    wait_state(page, "succeeded")
    page.locator("#result-body th button").first.click()
    page.wait_for_selector("#result-body th[aria-sort='ascending']")
    assert serious(page) == []
