"""``SCHEDULER=false``: no process fires schedules, and the routes say so (503, a sentence)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "SCHEDULER": False}


def test_schedules_off_answer_503_with_a_sentence(app: Flask) -> None:
    assert app.extensions["flask_realtime"].system.scheduler is None
    client = app.test_client()
    for method, path in (("GET", "/api/schedules"), ("GET", "/api/schedules/x")):
        answer = client.open(path, method=method)
        assert answer.status_code == 503
        assert answer.json == {"error": "Schedules are off on this server (SCHEDULER is "
                                        "false): ask its operator to turn them on."}
    app.extensions["flask_realtime"].close()
