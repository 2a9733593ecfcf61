"""Secrets never leave the server (issue 8, item 6).

With a known SECRET_KEY and a user logged in through the Webex simulator, this greps
everything an outsider or an operator can see for the secret key, the token encryption
key derived from it, the integration's client secret, the user's access and refresh
tokens, the session cookie's value and the login's one-time code, the Webex bot's token,
the user's webhook secret and a token in their webhook's URL (issue 19): the server's log
(every record, tracebacks included, as text and as LOG_FORMAT=json writes it, and
whatever reached stderr), error pages (400, 401, 403, 404, 405, 500 and the login's own
error page), the page, every API answer, and the Socket.IO traffic of a run that used
the tokens.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from flask import Flask

from flask_realtime.logs import JsonFormatter
from flask_realtime.web.app import create_app
from flask_realtime.web.auth import configure_demo, get_auth
from flask_realtime.web.tokens import _derive
from tests.auth.conftest import Browser, browser, simulator, simulator_options  # noqa: F401
from tests.conftest import LiveServer, wait_for
from tests.hardening.conftest import JOBS, ServerProblems
from tests.hardening.rawclient import RawClient
from tests.notify.receiver import receiver

SECRET_KEY = "hx-known-secret-key-0f3c9a1b7e5d2468"
WEBHOOK_SECRET = "hx-webhook-secret-7c2a9e0f"
USER = "user1@example.com"


@pytest.fixture
def app_config() -> dict[str, Any]:
    # TESTING off: errors are answered as in production.
    return {"SECRET_KEY": SECRET_KEY, "STOP_GRACE_SECONDS": 0.5, "WEBEX_ENV_FILE": "",
            "JOBS": f"{JOBS},tests.auth.jobs_for_auth",
            "NOTIFY_WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"]}  # the test's own webhook


@pytest.fixture
def app(app_config: dict[str, Any], simulator: Any, tmp_path: Any,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("FLASK_REALTIME_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)
    configure_demo(app, simulator)

    @app.get("/hx-boom")
    def boom() -> str:
        raise RuntimeError("an unexpected fault in a handler")

    return app


def secrets_of(app: Flask, cookie: str) -> dict[str, str]:
    with app.app_context():
        tokens = get_auth().vault.load(USER)
    assert tokens is not None and tokens.refresh_token
    return {"SECRET_KEY": SECRET_KEY, "token encryption key": _derive(SECRET_KEY).decode(),
            "client secret": str(app.config["WEBEX_CLIENT_SECRET"]),
            "access token": tokens.access_token, "refresh token": tokens.refresh_token,
            "session cookie": cookie, "bot token": str(app.config["WEBEX_BOT_TOKEN"]),
            "webhook secret": WEBHOOK_SECRET, "webhook URL's token": "hx-hook-token-5e1d"}


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value and value in text]


def test_no_secret_in_logs_pages_api_or_socket_traffic(
    live_server: LiveServer, browser: Callable[[], Browser],  # noqa: F811
    server_problems: ServerProblems, capfd: pytest.CaptureFixture[str],
) -> None:
    with contextlib.ExitStack() as stack:
        _look_everywhere(live_server, browser, server_problems, capfd, stack)


def _look_everywhere(live_server: LiveServer, browser: Callable[[], Browser],  # noqa: F811
                     server_problems: ServerProblems, capfd: pytest.CaptureFixture[str],
                     stack: contextlib.ExitStack) -> None:
    user = browser()
    user.login("user1")
    assert user.cookie
    secrets = secrets_of(live_server.app, user.cookie)
    seen: dict[str, str] = {}  # what was looked at -> its text
    # Runs that end tell their owner by the bot and by a signed webhook (notifications).
    hook = stack.enter_context(receiver())
    assert user.http.put("/api/preferences", headers={"X-CSRF-Token": user.csrf()}, json={
        "notify": "finish", "webex": True, "webhook_secret": WEBHOOK_SECRET,
        "webhook_url": f"{hook.url}?token=hx-hook-token-5e1d"}).status_code == 200

    def keep(label: str, response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items()
                            if k.lower() != "set-cookie")  # the cookie's own header
        seen[f"{response.request.method} {label} -> {response.status_code}"] = (
            headers + "\n" + response.text)
        return response

    # A run that uses the user's tokens (people/me), watched over a raw socket.
    raw = RawClient(live_server.url, cookie=user.cookie)
    run_id = raw.call("start", {"job": "webex_me", "params": {}})["run_id"]
    failed_id = raw.call("start", {"job": "fail", "params": {}})["run_id"]
    for bad in ({"job": "nope"}, {"run_id": "x"}, "junk"):
        raw.call("watch", bad)
    wait_for(lambda: raw.pump(0.05) or any('"succeeded"' in m and run_id in m
                                           for m in raw.received), timeout=20)
    raw.call("watch", {"run_id": failed_id, "after": 0})
    hook.wait_for(2)  # both runs were told
    wait_for(lambda: raw.pump(0.05) or sum(m.count('"sent"') for m in raw.received) >= 4,
             timeout=20)  # and their outcomes announced
    raw.close()
    seen["socket.io traffic"] = "\n".join(raw.received)
    assert USER in seen["socket.io traffic"]  # the job did use the tokens

    for path in ("/", "/static/app.js", "/static/notify.js", "/api/preferences", "/api/jobs",
                 "/api/runs", f"/api/runs/{run_id}", f"/api/runs/{run_id}/lines",
                 f"/api/runs/{run_id}/log",
                 f"/api/runs/{failed_id}", f"/api/runs/{failed_id}/log",
                 "/api/openapi.json", "/healthz", "/no-such-page", "/api/runs/nope",
                 "/hx-boom", "/redirect?code=forged&state=forged", "/login"):
        keep(path, user.http.get(path, follow_redirects=False))
    keep("/api/runs (bad JSON)", user.post("/api/runs", None))
    keep("/api/runs (no CSRF)", user.post("/api/runs", {"job": "fail"}, csrf=False))
    keep("/api/jobs (POST)", user.post("/api/jobs", {}))
    keep("/api/runs (anonymous)", httpx.get(live_server.url + "/api/runs"))
    keep("/logout", user.logout())
    codes = {label.rsplit(" ", 1)[1] for label in seen if " -> " in label}
    assert {"200", "302", "400", "401", "403", "404", "405", "500"} <= codes

    seen["server log"] = server_problems.text()
    json_log = JsonFormatter()  # LOG_FORMAT=json: the same records, one object a line
    seen["server log (JSON)"] = "\n".join(json_log.format(r) for r in server_problems.all)
    captured = capfd.readouterr()
    seen["server stdout/stderr"] = captured.out + captured.err
    assert "an unexpected fault in a handler" in seen["server log"]  # the 500 was logged
    found = {label: leaks(text, secrets) for label, text in seen.items()}
    # The webhook's URL is its owner's setting: shown to them (and only there), as a
    # webhook's page shows it; the secret that signs is never shown again.
    owners = "GET /api/preferences -> 200"
    assert found[owners] == ["webhook URL's token"]
    found[owners] = []
    assert {label: names for label, names in found.items() if names} == {}
    # The login's callback was logged, without its one-time code and state.
    assert "GET /redirect?code=[redacted]&state=[redacted]" in seen["server log"]
    assert "GET /redirect?code=[redacted]&state=[redacted]" in seen["server log (JSON)"]
    request_log = [line for line in seen["server log"].splitlines() if " werkzeug: " in line]
    assert not [line for line in request_log
                if re.search(r"[?&](code|state)=(?!\[redacted\])", line)]
