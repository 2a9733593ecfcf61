"""The token vault on its own: encryption at rest, failing closed, when it renews."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet, MultiFernet

from flask_realtime.store.memory import MemoryStore
from flask_realtime.web import tokens as tokens_module
from flask_realtime.web.tokens import LoginRequiredError, TokenError, TokenVault, encryption

CONFIG = {"SECRET_KEY": "one", "WEBEX_BASE_URL": "http://webex.invalid/v1",
          "WEBEX_CLIENT_ID": "id", "WEBEX_CLIENT_SECRET": "secret",
          "TOKEN_REFRESH_MARGIN_SECONDS": 60}
ANSWER = {"access_token": "access-1", "expires_in": 3600, "refresh_token": "refresh-1",
          "refresh_token_expires_in": 7_776_000}


class TokenEndpoint:
    """Stands in for Webex's token endpoint: counts refreshes, answers as told."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, str]] = []
        self.status = 200
        self.lock = threading.Lock()
        monkeypatch.setattr(tokens_module.httpx, "post", self.post)

    def post(self, url: str, *, data: dict[str, str], timeout: float) -> httpx.Response:
        with self.lock:
            self.calls.append(data)
            n = len(self.calls)
        body = ({"access_token": f"access-{n + 1}", "expires_in": 3600}
                if self.status == 200 else {"error": "invalid_grant"})
        return httpx.Response(self.status, json=body, request=httpx.Request("POST", url))


@pytest.fixture
def vault() -> TokenVault:
    return TokenVault(MemoryStore(), encryption(CONFIG), CONFIG)


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> TokenEndpoint:
    return TokenEndpoint(monkeypatch)


def expire(vault: TokenVault, user: str, **changes: Any) -> None:
    tokens = vault.load(user)
    assert tokens is not None
    # An hour-long token with 30 s left: inside the 60 s margin.
    vault.save(replace(tokens, obtained_at=tokens.obtained_at - 3570,
                       expires_at=tokens.obtained_at + 30, **changes))


def test_store_holds_no_plaintext(vault: TokenVault) -> None:
    vault.login("ann@example.com", ANSWER)
    blob = vault.store.load_tokens("ann@example.com")
    assert blob is not None and b"access-1" not in blob and b"refresh-1" not in blob
    assert vault.access_token("ann@example.com") == "access-1"


def test_wrong_key_fails_closed(vault: TokenVault) -> None:
    vault.login("ann@example.com", ANSWER)
    other = TokenVault(vault.store, MultiFernet([Fernet(Fernet.generate_key())]), CONFIG)
    assert other.load("ann@example.com") is None
    with pytest.raises(LoginRequiredError, match="log in again"):
        other.access_token("ann@example.com")


def test_a_blob_copied_to_another_user_is_not_theirs(vault: TokenVault) -> None:
    vault.login("ann@example.com", ANSWER)
    blob = vault.store.load_tokens("ann@example.com")
    assert blob is not None
    vault.store.save_tokens("bob@example.com", blob)
    assert vault.load("bob@example.com") is None


def test_old_secret_keys_still_decrypt() -> None:
    store = MemoryStore()
    TokenVault(store, encryption(CONFIG), CONFIG).login("ann@example.com", ANSWER)
    rotated = {**CONFIG, "SECRET_KEY": "two", "SECRET_KEY_FALLBACKS": ["one"]}
    assert TokenVault(store, encryption(rotated), rotated).load("ann@example.com") is not None


def test_configured_key_must_be_a_fernet_key() -> None:
    with pytest.raises(ValueError, match="Fernet keys"):
        encryption({**CONFIG, "TOKEN_ENCRYPTION_KEY": "not a key"})
    key = Fernet.generate_key().decode()
    assert encryption({**CONFIG, "TOKEN_ENCRYPTION_KEY": f"{key}, {key}"})


def test_fresh_token_is_not_renewed(vault: TokenVault, endpoint: TokenEndpoint) -> None:
    vault.login("ann@example.com", ANSWER)
    assert vault.access_token("ann@example.com") == "access-1" and endpoint.calls == []


def test_token_is_renewed_within_the_margin(vault: TokenVault, endpoint: TokenEndpoint) -> None:
    vault.login("ann@example.com", ANSWER)
    expire(vault, "ann@example.com")
    assert vault.access_token("ann@example.com") == "access-2"
    assert endpoint.calls == [{"grant_type": "refresh_token", "refresh_token": "refresh-1",
                               "client_id": "id", "client_secret": "secret"}]
    renewed = vault.load("ann@example.com")
    assert renewed is not None and renewed.refresh_token == "refresh-1"  # kept: none new


def test_many_threads_renew_once(vault: TokenVault, endpoint: TokenEndpoint) -> None:
    vault.login("ann@example.com", ANSWER)
    expire(vault, "ann@example.com")
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(vault.access_token("ann@example.com")))
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(endpoint.calls) == 1 and set(got) == {"access-2"}


def test_forced_refresh_after_a_401_renews_once(vault: TokenVault,
                                                endpoint: TokenEndpoint) -> None:
    vault.login("ann@example.com", ANSWER)
    tokens = vault.load("ann@example.com")
    assert tokens is not None
    vault.save(replace(tokens, obtained_at=tokens.obtained_at - 10))
    assert vault.access_token("ann@example.com", force_refresh=True) == "access-2"
    assert vault.access_token("ann@example.com", force_refresh=True) == "access-2"
    assert len(endpoint.calls) == 1


def test_refused_refresh_logs_the_user_out(vault: TokenVault, endpoint: TokenEndpoint) -> None:
    vault.login("ann@example.com", ANSWER)
    expire(vault, "ann@example.com")
    endpoint.status = 400
    with pytest.raises(LoginRequiredError, match="log in again"):
        vault.access_token("ann@example.com")
    assert vault.load("ann@example.com") is None


def test_unreachable_webex_keeps_the_tokens(vault: TokenVault, endpoint: TokenEndpoint) -> None:
    vault.login("ann@example.com", ANSWER)
    expire(vault, "ann@example.com")
    endpoint.status = 503
    with pytest.raises(TokenError, match="log in again"):
        vault.access_token("ann@example.com")
    assert vault.load("ann@example.com") is not None


def test_expired_refresh_token_asks_for_a_login(vault: TokenVault,
                                                endpoint: TokenEndpoint) -> None:
    vault.login("ann@example.com", ANSWER)
    expire(vault, "ann@example.com", refresh_expires_at=1.0)
    with pytest.raises(LoginRequiredError, match="log in again"):
        vault.access_token("ann@example.com")
    assert endpoint.calls == []


def test_login_elsewhere_keeps_valid_since(vault: TokenVault) -> None:
    first = vault.login("ann@example.com", ANSWER)
    second = vault.login("ann@example.com", {**ANSWER, "access_token": "access-9"})
    assert second.valid_since == first.valid_since
    vault.delete("ann@example.com")
    third = vault.login("ann@example.com", ANSWER)
    assert third.valid_since > first.valid_since


def test_blob_is_json_inside(vault: TokenVault) -> None:
    vault.login("ann@example.com", ANSWER)
    blob = vault.store.load_tokens("ann@example.com")
    assert blob is not None
    assert json.loads(vault.fernet.decrypt(blob))["user"] == "ann@example.com"
