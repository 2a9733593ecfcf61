"""Files over HTTP (issue 20, items 5 to 8; docs/protocol.md): a start with an upload, a
run's artifacts and pictures, its result as CSV; the bad inputs each get a sentence."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from flask_realtime.web.files import result_csv_name
from tests.auth import conftest as logins
from tests.auth.conftest import Browser
from tests.conftest import wait_for
from tests.jobs_for_files import PNG, SVG

# A live server in demo mode with logins, from tests/auth/conftest.py.
app, browser, user = logins.app, logins.browser, logins.user
simulator, simulator_options, open_socket = (logins.simulator, logins.simulator_options,
                                             logins.open_socket)

LIMIT = 64 * 1024


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "STOP_GRACE_SECONDS": 0.5,
            "JOBS": "tests.jobs_for_tests,tests.jobs_for_files", "WEBEX_ENV_FILE": "",
            "MAX_UPLOAD_BYTES": LIMIT}


def upload(user: Browser, files: dict[str, Any], *, job: str = "file_lines",
           params: dict[str, Any] | None = None, csrf: bool = True, **fields: str) -> Any:
    data = {"job": job, "params": json.dumps(params or {}), **fields}
    headers = {"X-CSRF-Token": user.csrf()} if csrf else {}
    return user.http.post("/api/runs", data=data, files=files, headers=headers)


def finished(user: Browser, run_id: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (r := user.http.get(f"/api/runs/{run_id}").json())
                         ["state"] in ("succeeded", "failed", "stopped") and r))


def run_of(user: Browser, job: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    started = user.post("/api/runs", {"job": job, "params": params or {}})
    assert started.status_code == 201, started.text
    return finished(user, started.json()["id"])


def test_a_file_parameter_is_listed_with_its_size_limit(user: Browser) -> None:
    jobs = {j["name"]: j for j in user.http.get("/api/jobs").json()["jobs"]}
    assert jobs["file_lines"]["params"][0] == {
        "name": "data", "type": "file", "required": True, "max_bytes": LIMIT}


def test_a_multipart_start_gives_the_job_the_file(user: Browser) -> None:
    started = upload(user, {"data": ("../../etc/passwd", b"one\ntwo\n", "text/plain")},
                     params={"label": "got "}, request_id="up-1")
    assert started.status_code == 201, started.text
    done = finished(user, started.json()["id"])
    assert done["state"] == "succeeded"
    assert done["result"] == {"filename": "passwd", "lines": 2, "path_name": "data"}
    assert done["params"] == {"data": {"filename": "passwd", "size": 8}, "label": "got "}
    again = upload(user, {"data": ("x", b"1", "text/plain")}, request_id="up-1")
    assert again.json()["id"] == done["id"], "a repeated request_id starts once"


def test_a_multipart_start_keeps_its_notify_choice(user: Browser) -> None:
    """docs/notifications.md: ``notify`` is a form field of a start with files too."""
    started = upload(user, {"data": ("a.txt", b"1\n", "text/plain")}, notify="failure")
    assert started.status_code == 201, started.text
    assert started.json()["notify"] == "failure"
    bad = upload(user, {"data": ("a.txt", b"1\n", "text/plain")}, notify="sometimes")
    assert bad.status_code == 400 and "notify" in bad.json()["error"]


def test_a_rerun_uses_the_same_file(user: Browser) -> None:
    first = upload(user, {"data": ("a.txt", b"1\n2\n3\n", "text/plain")}).json()
    finished(user, first["id"])
    again = user.post(f"/api/runs/{first['id']}/rerun")
    assert again.status_code == 201, again.text
    assert finished(user, again.json()["id"])["result"]["lines"] == 3


def test_an_oversized_upload_is_refused_with_a_sentence(user: Browser) -> None:
    over = upload(user, {"data": ("big.bin", b"x" * (LIMIT + 1), "application/octet-stream")})
    assert over.status_code == 400
    assert over.json()["errors"] == {"data": f"is {LIMIT + 1:,} bytes, larger than the "
                                             f"{LIMIT:,} bytes a file may have "
                                             "(MAX_UPLOAD_BYTES)"}
    assert user.http.get("/api/runs").json()["runs"] == []


def test_a_body_past_the_limit_is_refused_before_it_is_read(user: Browser) -> None:
    way_over = upload(user, {"data": ("big.bin", b"x" * (LIMIT * 8), "text/plain")})
    assert way_over.status_code == 413
    assert way_over.json()["error"] == (
        f"The upload is too large: a file may have at most {LIMIT:,} bytes "
        "(MAX_UPLOAD_BYTES). Choose a smaller file.")
    # Refused from its Content-Length, before CSRF (which reads form fields) looks.
    no_token = upload(user, {"data": ("big.bin", b"x" * (LIMIT * 8), "text/plain")},
                      csrf=False)
    assert no_token.status_code == 413
    assert user.http.get("/api/runs").json()["runs"] == []


def test_an_upload_on_a_job_that_takes_none_is_refused(user: Browser) -> None:
    response = upload(user, {"n": ("n.txt", b"3", "text/plain")}, job="countdown")
    assert response.status_code == 400
    assert response.json()["errors"] == {"n": "is a file, but this job takes no files"}


def test_a_file_parameter_sent_as_json_is_refused(user: Browser) -> None:
    response = user.post("/api/runs", {"job": "file_lines",
                                       "params": {"data": {"filename": "x", "size": 1}}})
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["errors"]["data"]


def test_a_multipart_start_without_a_csrf_token_is_403(user: Browser) -> None:
    response = upload(user, {"data": ("a", b"1", "text/plain")}, csrf=False)
    assert response.status_code == 403
    assert user.http.get("/api/runs").json()["runs"] == []


def test_bad_params_in_a_multipart_start_are_a_sentence(user: Browser) -> None:
    response = user.http.post("/api/runs", data={"job": "file_lines", "params": "[1"},
                              files={"data": ("a", b"1", "text/plain")},
                              headers={"X-CSRF-Token": user.csrf()})
    assert response.status_code == 400 and "JSON object" in response.json()["error"]


def test_the_socket_start_points_a_file_job_to_the_http_route(
        user: Browser, open_socket: Callable[..., Any]) -> None:
    watcher = open_socket(user.cookie)
    ack = watcher.call("start", {"job": "file_lines", "params": {}})
    assert ack["error"] == ("This job takes a file (data): start it with POST /api/runs as "
                            "multipart/form-data (docs/protocol.md); the socket's start takes "
                            "no files.")


def test_artifacts_are_downloads_with_safe_headers(user: Browser) -> None:
    done = run_of(user, "make_files")
    assert done["artifacts"] == [
        {"name": "chart.png", "size": len(PNG), "picture": "png"},
        {"name": "drawing.svg", "size": len(SVG), "picture": None},
        {"name": "report.csv", "size": 8, "picture": None}]
    svg = user.http.get(f"/api/runs/{done['id']}/artifacts/drawing.svg")
    assert svg.status_code == 200 and svg.content == SVG
    assert svg.headers["Content-Type"] == "application/octet-stream"
    assert svg.headers["Content-Disposition"] == "attachment; filename=drawing.svg"
    assert svg.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src" not in svg.headers["Content-Security-Policy"]
    assert svg.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_pictures_are_served_inline_and_an_svg_never(user: Browser) -> None:
    done = run_of(user, "make_files")
    png = user.http.get(f"/api/runs/{done['id']}/pictures/chart.png")
    assert png.status_code == 200 and png.content == PNG
    assert png.headers["Content-Type"] == "image/png"
    assert png.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" not in png.headers.get("Content-Disposition", "")
    svg = user.http.get(f"/api/runs/{done['id']}/pictures/drawing.svg")
    assert svg.status_code == 404 and "not a PNG or JPEG picture" in svg.json()["error"]


def test_a_returned_picture_is_an_artifact(user: Browser) -> None:
    done = run_of(user, "a_picture")
    assert done["artifacts"] == [{"name": "red.png", "size": len(PNG), "picture": "png"}]


def test_another_users_artifact_is_a_404(user: Browser, browser: Callable[[], Browser]) -> None:
    done = run_of(user, "make_files")
    other = browser()
    other.login("user2")
    for path in ("artifacts/report.csv", "pictures/chart.png", "result.csv"):
        response = other.http.get(f"/api/runs/{done['id']}/{path}")
        assert response.status_code == 404, path
        assert "There is no run" in response.json()["error"]


@pytest.mark.parametrize("name", ["../report.csv", "..%2Freport.csv", "%2E%2E/x", "nope.txt"])
def test_an_artifact_path_outside_the_run_is_a_404(user: Browser, name: str) -> None:
    done = run_of(user, "make_files")
    response = user.http.get(f"/api/runs/{done['id']}/artifacts/{name}")
    assert response.status_code == 404


@pytest.mark.parametrize("run_id", ["_p-gZRLlTlJe5Tyo", "-startsWithDash", "plainId12345"])
def test_the_csv_download_name_keeps_the_whole_run_id(run_id: str) -> None:
    """Run ids are URL-safe base64: they may start with ``_`` or ``-``."""
    assert result_csv_name("a_table", run_id) == f"a_table-{run_id}.csv"


def test_a_table_result_downloads_as_csv_with_formulas_defused(user: Browser) -> None:
    done = run_of(user, "a_table", {"rows": 7})
    response = user.http.get(f"/api/runs/{done['id']}/result.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="a_table-{done["id"]}.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["name", "size", "score"]
    assert [r[0] for r in rows[1:]] == ["pear", "apple", "fig", "'=HYPERLINK(\"http://x\")",
                                        "'+1", "'-2", "'@SUM(A1)"]
    assert rows[4][1] == "" and rows[1][2] == "10" and rows[4][2] == "2.5"


def test_a_result_that_is_not_a_table_has_no_csv(user: Browser) -> None:
    done = run_of(user, "a_picture")
    response = user.http.get(f"/api/runs/{done['id']}/result.csv")
    assert response.status_code == 404 and "not a table" in response.json()["error"]
