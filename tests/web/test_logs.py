"""The server's log (docs/deployment.md, "Logs"): JSON lines with the request's id, the
run and a hash of the user; plain text otherwise; request ids carried to RQ workers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_realtime.logs import (
    JsonFormatter,
    bind,
    formatter_for,
    request_id_of,
    user_hash,
)
from flask_realtime.web.app import create_app
from flask_realtime.web.identity import current_user

log = logging.getLogger("tests.web.test_logs")


@pytest.fixture
def app() -> Flask:
    app = create_app({"TESTING": True, "SECRET_KEY": "s", "STORE": "memory"})

    @app.get("/log-something")
    def log_something() -> str:
        current_user()  # the user is known to this request
        log.warning("run %s: something happened", "run-123")
        return "ok"

    return app


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What a JSON handler on the root logger writes."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    yield out
    logging.getLogger().removeHandler(handler)


def entries(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_names_the_request_the_run_and_the_users_hash(
        app: Flask, written: io.StringIO) -> None:
    response = app.test_client().get("/log-something", headers={"X-Request-Id": "req-42"})
    assert response.headers["X-Request-Id"] == "req-42"
    [entry] = [e for e in entries(written) if e["logger"] == log.name]
    assert entry["level"] == "WARNING" and entry["message"] == "run run-123: something happened"
    assert entry["time"].endswith("Z")
    assert entry["run_id"] == "run-123" and entry["request_id"] == "req-42"
    assert entry["user"] == user_hash("local") != "local"


def test_a_request_without_a_good_id_gets_one_made_here(app: Flask) -> None:
    forged = app.test_client().get("/log-something",
                                   headers={"X-Request-Id": 'a b "fake" ' + "x" * 80})
    made = forged.headers["X-Request-Id"]
    assert len(made) == 32 and made.isalnum()
    assert app.test_client().get("/log-something").headers["X-Request-Id"] != made


def test_plain_text_is_the_default_format() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    assert formatter_for("text").format(record).endswith("INFO x: hello there")


def test_bound_records_name_the_run_and_the_request(written: io.StringIO) -> None:
    with bind(run_id="r-9", request_id="req-9"):
        log.warning("finished")
    log.warning("after")
    bound, after = [e for e in entries(written) if e["logger"] == log.name]
    assert (bound["run_id"], bound["request_id"]) == ("r-9", "req-9")
    assert "run_id" not in after and "request_id" not in after


def test_a_queued_run_carries_its_request_id_to_the_worker(redis_url: str) -> None:
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from flask_realtime.adapters.rq import rq_job_id
    from redis import Redis

    app = create_app({"TESTING": True, "SECRET_KEY": "s", "REDIS_URL": redis_url,
                      "RUNNER": "rq", "LOGIN_REQUIRED": False, "JOBS": "tests.jobs_for_tests"})
    realtime = app.extensions["flask_realtime"]
    try:
        with app.test_request_context(headers={"X-Request-Id": "req-rq-1"}) as context:
            assert request_id_of(context.request.environ) == "req-rq-1"
            run = realtime.start("local", "numbers", {"n": 1})
        job = Job.fetch(rq_job_id(run.id), connection=Redis.from_url(redis_url),
                        serializer=JSONSerializer)
        assert job.meta["request_id"] == "req-rq-1"
    finally:
        realtime.close()
