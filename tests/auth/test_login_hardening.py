"""The login page says only what the app means, and pending logins do not pile up.

Issue 13, items 12 and 13 (docs/reliability.md, section 7): ``/redirect``'s
``error_description`` (and an unknown ``error``) is text an attacker picks, so the page
shows a fixed sentence per OAuth error code instead; and each ``GET /login`` adds an
OAuth state to the session, so only the newest few are kept.
"""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer

SPOOF = "Your account is locked: call +1 555 0100 and give your password"


def test_error_description_is_not_shown(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        page = http.get("/redirect", params={"error": "access_denied",
                                             "error_description": SPOOF})
    assert page.status_code == 400
    assert "You did not allow the login at Webex" in page.text
    assert "call +1 555" not in page.text and "locked" not in page.text


def test_an_unknown_error_code_is_not_shown(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        page = http.get("/redirect", params={"error": "Call_support_at_555_0100"})
    assert page.status_code == 400
    assert "The login did not complete" in page.text
    assert "555" not in page.text and "support" not in page.text


def test_each_known_error_code_has_its_own_sentence(live_server: LiveServer) -> None:
    codes = ["access_denied", "invalid_request", "unauthorized_client",
             "unsupported_response_type", "invalid_scope", "server_error",
             "temporarily_unavailable"]
    with httpx.Client(base_url=live_server.url) as http:
        texts = [http.get("/redirect", params={"error": code}).text for code in codes]
    sentences = {text.split('id="login-error"', 1)[1].split("</p>", 1)[0] for text in texts}
    assert len(sentences) == len(codes)

