"""The HTTP API over the same run service (docs/protocol.md, "HTTP")."""

from __future__ import annotations

from flask import Flask

from flask_realtime.web.identity import LOCAL_USER
from tests.conftest import wait_for


def start(app: Flask, job: str, **params: object) -> str:
    realtime = app.extensions["flask_realtime"]
    run = realtime.start(LOCAL_USER, job, params)
    wait_for(lambda: realtime.store.get_run(run.id).state.finished)
    return run.id


def test_jobs_describe_their_forms(app: Flask) -> None:
    jobs = {j["name"]: j for j in app.test_client().get("/api/jobs").json["jobs"]}
    assert {"countdown", "flood", "progress", "fail"} <= set(jobs)
    n = next(p for p in jobs["countdown"]["params"] if p["name"] == "n")
    assert n["type"] == "int" and n["default"] == 10 and n["min"] == 0


def test_run_record_with_result_and_lines(app: Flask) -> None:
    run_id = start(app, "countdown", n=2, delay=0)
    client = app.test_client()
    record = client.get(f"/api/runs/{run_id}").json
    assert record["state"] == "succeeded" and record["lines"] == 3
    assert record["result"] == 0 and record["has_result"] is True
    assert record["params"] == {"n": 2, "delay": 0.0}
    listed = client.get("/api/runs").json["runs"]
    assert [r["id"] for r in listed] == [run_id] and "result" not in listed[0]


def test_runs_filter_by_job_and_state(app: Flask) -> None:
    ok = start(app, "countdown", n=1, delay=0)
    failed = start(app, "fail")
    client = app.test_client()
    assert [r["id"] for r in client.get("/api/runs?state=failed").json["runs"]] == [failed]
    assert [r["id"] for r in client.get("/api/runs?job=countdown").json["runs"]] == [ok]
    assert client.get("/api/runs?state=bogus").status_code == 400
    assert client.get("/api/runs?limit=0").status_code == 400


def test_log_download_is_plain_text_of_the_whole_output(app: Flask) -> None:
    run_id = start(app, "countdown", n=3, delay=0)
    response = app.test_client().get(f"/api/runs/{run_id}/log")
    assert response.mimetype == "text/plain"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.get_data(as_text=True) == "3\n2\n1\nLiftoff!\n"


def test_log_says_when_lines_were_dropped(app: Flask) -> None:
    app.extensions["flask_realtime"].store.retention_lines = 10
    run_id = start(app, "flood", lines=100, width=20)
    text = app.test_client().get(f"/api/runs/{run_id}/log").get_data(as_text=True)
    assert text.startswith("[flask-realtime: 90 earlier lines were dropped")
    assert text.splitlines()[1].startswith("00000091")


def test_log_names_the_byte_budget_that_dropped_lines_not_a_line_count(app: Flask) -> None:
    store = app.extensions["flask_realtime"].store
    store.retention_bytes = 4096  # SQLite: no line cap by default, a byte budget per run
    run_id = start(app, "flood", lines=20_000, width=60)
    first = app.test_client().get(f"/api/runs/{run_id}/log").get_data(as_text=True)
    marker = first.splitlines()[0]
    assert "earlier lines were dropped" in marker and "RETENTION_BYTES" in marker
    assert "4 KiB" in marker and str(store.retention_lines) not in marker


def test_lines_page_for_scroll_back(app: Flask) -> None:
    run_id = start(app, "flood", lines=50, width=20)
    page = app.test_client().get(f"/api/runs/{run_id}/lines?after=10&limit=5").json
    assert page["first_seq"] == 11 and page["end_seq"] == 50
    assert [line["text"][:8] for line in page["lines"]] == [f"{i:08d}" for i in range(11, 16)]
    assert page["times"][0][0] == 0


def test_unknown_run_is_404_with_a_sentence(app: Flask) -> None:
    client = app.test_client()
    for path in ("/api/runs/nope", "/api/runs/nope/log", "/api/runs/nope/lines"):
        response = client.get(path)
        assert response.status_code == 404 and "There is no run" in response.json["error"]


def test_healthz(app: Flask) -> None:
    assert app.test_client().get("/healthz").json["status"] == "ok"


def test_security_headers(app: Flask) -> None:
    headers = app.test_client().get("/healthz").headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
