"""nginx in front of gunicorn, over plain HTTP: static files, proxy headers, transports.

What the browser test cannot see: which headers nginx sends on, that long-polling
sessions stay on one web process, and that the websocket upgrade works under gunicorn's
gthread worker with simple-websocket, with and without nginx.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import websocket
from scripts.stack import STATIC

from tests.conftest import wait_for

pytestmark = pytest.mark.stack

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
            body: str | bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def web_ports(stack: dict[str, Any]) -> list[int]:
    return [int(p["port"]) for p in stack["stack"].processes("web")]


def test_static_files_come_from_nginx_with_caching(stack: dict[str, Any]) -> None:
    status, headers, body = request(stack["port"], "GET", "/static/app.js?v=1")
    assert status == 200
    assert body == (STATIC / "app.js").read_bytes()
    assert "max-age=3600" in headers["cache-control"]
    assert "javascript" in headers["content-type"]
    # From disk, not from a web process: the app would have added its CSP header.
    assert "content-security-policy" not in headers
    status, headers, _ = request(stack["port"], "GET", "/healthz")
    assert status == 200 and "content-security-policy" in headers


def test_the_access_log_keeps_no_query_string(stack: dict[str, Any]) -> None:
    """The login callback's one-time code and state never reach nginx's access log."""
    request(stack["port"], "GET", "/redirect?code=SECRET-CODE-4711&state=SECRET-STATE-0815")
    log = Path(stack["dir"]) / "nginx" / "logs" / "access.log"
    wait_for(lambda: "/redirect" in log.read_text())  # written as each request ends
    text = log.read_text()
    assert '"GET /redirect HTTP/1.1" ' in text
    assert "SECRET-CODE" not in text and "SECRET-STATE" not in text and "?" not in text


def login_redirect_uri(port: int, headers: dict[str, str]) -> str:
    """The redirect URI the app builds for the Webex login: the public URL as it sees it."""
    status, response, _ = request(port, "GET", "/login", headers)
    assert status == 302, status
    return parse_qs(urlsplit(response["location"]).query)["redirect_uri"][0]


def test_the_app_sees_the_public_url_and_not_forged_forwarded_headers(
        stack: dict[str, Any]) -> None:
    port = stack["port"]
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
              "X-Forwarded-Port": "4443", "X-Forwarded-For": "203.0.113.9"}
    assert login_redirect_uri(port, {"Host": f"console.example:{port}", **forged}) == (
        f"http://console.example:{port}/redirect")
    # No port in the Host: none is added (neither the forged one nor nginx's own).
    assert login_redirect_uri(port, {"Host": "console.example", **forged}) == (
        "http://console.example/redirect")


def test_a_host_not_ours_is_refused_through_nginx(stack: dict[str, Any]) -> None:
    """nginx passes the browser's Host on: a rebound name gets 400, and a forged
    X-Forwarded-Host changes nothing (nginx overwrites it)."""
    port = stack["port"]
    assert request(port, "GET", "/healthz", {"Host": "rebind.attacker.example"})[0] == 400
    forged = {"Host": f"127.0.0.1:{port}", "X-Forwarded-Host": "rebind.attacker.example"}
    assert request(port, "GET", "/healthz", forged)[0] == 200


def test_foreign_origins_are_refused_through_nginx(stack: dict[str, Any]) -> None:
    port = stack["port"]
    own = f"http://127.0.0.1:{port}"
    status, _, body = request(port, "GET", HANDSHAKE, {"Origin": own})
    assert status == 200 and body.startswith(b"0{"), body
    for forged in ({}, {"X-Forwarded-Host": "evil.example"},
                   {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}):
        status, _, body = request(port, "GET", HANDSHAKE,
                                  {"Origin": "http://evil.example", **forged})
        assert status == 400, (forged, status, body)


def polling_session(port: int) -> str:
    """An Engine.IO long-polling session: handshake, then a packet each way on its sid.

    Every request after the handshake must reach the process that made the sid;
    another one answers 400 "Invalid session".
    """
    status, _, body = request(port, "GET", HANDSHAKE)
    assert status == 200, body
    sid = json.loads(body[1:])["sid"]
    path = f"{HANDSHAKE}&sid={sid}"
    status, _, body = request(port, "POST", path, {"Content-Type": "text/plain"}, "40")
    assert (status, body) == (200, b"OK"), (status, body)
    status, _, body = request(port, "GET", path)
    assert status == 200, body
    assert body.startswith(b"4"), body  # the Socket.IO answer to the connect
    return str(sid)


def test_long_polling_sessions_stick_to_one_web_process(stack: dict[str, Any]) -> None:
    sids = {polling_session(stack["port"]) for _ in range(20)}
    assert len(sids) == 20


@pytest.mark.parametrize("through", ["nginx", "gunicorn"])
def test_websocket_upgrade_under_gunicorn_gthread(stack: dict[str, Any], through: str) -> None:
    port = stack["port"] if through == "nginx" else web_ports(stack)[0]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=10,
        origin=f"http://127.0.0.1:{port}")
    try:
        opened = ws.recv()
        assert opened.startswith("0{") and '"upgrades"' in opened, opened
        ws.send("40")  # Socket.IO connect: refused without a login, but answered
        assert ws.recv().startswith("4")
    finally:
        ws.close()


def multipart(size: int) -> tuple[dict[str, str], bytes]:
    boundary = "flask-realtime-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job\"\r\n\r\n"
            f"file_lines\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; "
            f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + b"x" * size + f"\r\n--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


def test_a_start_with_a_file_of_several_megabytes_reaches_the_app_through_nginx(
        stack: dict[str, Any]) -> None:
    """nginx takes bodies of 1 MB elsewhere; a start takes MAX_UPLOAD_BYTES and the
    form's other fields (issue 20). Not logged in: the app's own sentence answers (a
    body refused by nginx would be its 413)."""
    headers, body = multipart(5 * 1024 * 1024)
    status, response, text = request(stack["port"], "POST", "/api/runs", headers,
                                     body)
    assert status in (401, 403) and "application/json" in response["content-type"], text
    assert json.loads(text)["error"]
    headers, body = multipart(12 * 1024 * 1024)
    status, response, text = request(stack["port"], "POST", "/api/runs", headers,
                                     body)
    assert status == 413 and "application/json" in response["content-type"]
    assert json.loads(text)["error"].startswith("The upload is too large")
    headers, body = multipart(2 * 1024 * 1024)  # elsewhere, nginx's 1 MB stays
    status, _, _ = request(stack["port"], "POST", "/api/runs/x/rerun", headers,
                           body)
    assert status == 413
