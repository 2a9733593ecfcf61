"""Inputs that once made ``POST /api/runs`` answer 500: now a 400 with a sentence.

On the real server with the Redis store, where a lone surrogate cannot be encoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.auth.conftest import Browser
from tests.conftest import LiveServer, Watcher

REQUEST_ID_SENTENCE = ('"request_id" must be a string of at most 100 printable characters '
                       "(letters, digits, punctuation or spaces).")


@pytest.fixture
def app_config(redis_url: str) -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "STOP_GRACE_SECONDS": 0.5,
            "JOBS": "tests.jobs_for_tests", "REDIS_URL": redis_url, "WEBEX_ENV_FILE": ""}


def post_raw(live_server: LiveServer, body: str) -> Any:
    page = Browser(live_server.url)
    try:
        return page.http.post("/api/runs", content=body.encode(), headers={
            "Content-Type": "application/json", "X-CSRF-Token": page.csrf()})
    finally:
        page.close()


def test_deeply_nested_json_is_a_400_with_a_sentence(live_server: LiveServer) -> None:
    depth = 100_000
    response = post_raw(live_server, '{"job": "numbers", "params": '
                        + "[" * depth + "]" * depth + "}")
    assert response.status_code == 400
    assert response.json() == {"error": "The JSON is nested too deeply: send "
                               '{"job": name, "params": {...}}.'}


@pytest.mark.parametrize("escaped", ["\\ud800", "\\udfff", "a\\u0000b", "\\n"])
def test_a_request_id_that_is_not_printable_text_is_a_400(
        live_server: LiveServer, escaped: str) -> None:
    response = post_raw(live_server, '{"job": "numbers", "request_id": "' + escaped + '"}')
    assert response.status_code == 400
    assert response.json() == {"error": REQUEST_ID_SENTENCE}


def test_a_lone_surrogate_request_id_is_refused_over_socketio(
        connect: Callable[..., Watcher]) -> None:
    ack = connect().call("start", {"job": "numbers", "request_id": "\ud800"})
    assert ack == {"error": REQUEST_ID_SENTENCE}
