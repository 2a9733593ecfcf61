"""A job on an RQ worker gets its user's Webex access, renewed there when it expired."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from flask_realtime.web.app import create_app
from flask_realtime.web.tokens import TokenSet
from tests.conftest import wait_for
from tests.redis.conftest import Process

USER = "alice@example.com"


@pytest.fixture
def token_endpoint() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A stand-in for Webex's token endpoint: every refresh gets ``renewed-token``."""
    refreshes: list[dict[str, str]] = []

    @Request.application
    def answer(request: Request) -> Response:
        if request.path != "/v1/access_token":
            return Response("not found", 404)
        refreshes.append(dict(request.form))
        return Response(json.dumps({"access_token": "renewed-token", "expires_in": 3600,
                                    "refresh_token": "refresh-2"}),
                        content_type="application/json")

    server = make_server("127.0.0.1", 0, answer, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1", refreshes
    server.shutdown()


def test_a_worker_renews_the_users_token_and_every_process_sees_it(
        redis_url: str, token_endpoint: tuple[str, list[dict[str, str]]],
        worker: Callable[..., Process], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        redis_server: Any) -> None:
    base_url, refreshes = token_endpoint
    integration = {"CLIENT_ID": "cid", "CLIENT_SECRET": "csecret",
                   "REDIRECT_URI": "http://localhost:5000/redirect"}
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "web"))
    app = create_app({  # the web side, in this process; configured as the worker is
        "REDIS_URL": redis_url, "SECRET_KEY": "shared-test-secret", "RUNNER": "rq",
        "LOGIN_REQUIRED": True, "JOBS": "tests.jobs_for_tests", "WEBEX_ENV_FILE": "",
        "WEBEX_BASE_URL": base_url, **{f"WEBEX_{k}": v for k, v in integration.items()}})
    realtime = app.extensions["flask_realtime"]
    vault = app.extensions["flask_realtime_auth"].vault
    try:
        now = time.time()
        vault.save(TokenSet(USER, "expired-token", "refresh-1", expires_at=now - 1,
                            refresh_expires_at=None, obtained_at=now - 3600,
                            valid_since=now - 3600))
        w = worker(FLASK_REALTIME_RUNNER="rq", FLASK_REALTIME_LOGIN_REQUIRED="true",
                   FLASK_REALTIME_WEBEX_BASE_URL=base_url, **integration)
        run = realtime.service.start(USER, "webex_token_digest", {})
        done = wait_for(lambda: (r := realtime.store.get_run(run.id)) and r.state.finished
                        and r, timeout=30)
        assert done.state.value == "succeeded", w.output()
        assert done.result == hashlib.sha256(b"renewed-token").hexdigest()
        assert [r["refresh_token"] for r in refreshes] == ["refresh-1"]
        assert refreshes[0]["client_id"] == "cid"
        renewed = vault.load(USER)  # saved by the worker, read by the web process
        assert renewed is not None and renewed.access_token == "renewed-token"
        dump = b"".join(redis_server.client().dump(k) or b""
                        for k in redis_server.client().keys("*"))
        assert b"renewed-token" not in dump and b"refresh-2" not in dump  # encrypted at rest
    finally:
        realtime.close()
