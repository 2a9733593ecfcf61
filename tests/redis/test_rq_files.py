"""Files with RQ workers (issue 20): a worker reads a run's upload from Redis (the web
process that took the start keeps no file a worker could read), and the artifacts the
worker's job keeps are served by the web process, which never ran it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx

from tests.jobs_for_files import PNG
from tests.redis.conftest import Process, WebProcess, finished


def test_a_worker_gets_the_upload_and_its_artifacts_reach_the_web_process(
        web: Callable[..., WebProcess], worker: Callable[..., Process]) -> None:
    jobs = {"FLASK_REALTIME_JOBS": "tests.jobs_for_tests,tests.jobs_for_files"}
    a = web(FLASK_REALTIME_RUNNER="rq", **jobs)
    w = worker(**jobs)
    with httpx.Client(base_url=a.url, timeout=10) as http:
        token = re.search(r'data-csrf-token="([^"]+)"', http.get("/").text)
        assert token, "the page carries a CSRF token"
        started = http.post("/api/runs", headers={"X-CSRF-Token": token.group(1)},
                            data={"job": "file_lines", "params": json.dumps({})},
                            files={"data": ("in.txt", b"a\nb\nc\nd\n", "text/plain")})
        assert started.status_code == 201, started.text
        done = finished(a.url, started.json()["id"])
        assert done["state"] == "succeeded", w.output()
        assert done["result"] == {"filename": "in.txt", "lines": 4, "path_name": "data"}

        made = http.post("/api/runs", headers={"X-CSRF-Token": token.group(1)},
                         json={"job": "make_files"})
        assert made.status_code == 201, made.text
        kept = finished(a.url, made.json()["id"])
    assert [f["name"] for f in kept["artifacts"]] == ["chart.png", "drawing.svg", "report.csv"]
    picture = httpx.get(f"{a.url}/api/runs/{kept['id']}/pictures/chart.png", timeout=10)
    assert picture.status_code == 200 and picture.content == PNG
