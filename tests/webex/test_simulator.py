"""The simulator speaks Webex: shapes, limits, errors, OAuth, data from a seed, latency."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from flask_realtime.webex.simulator import (
    Dataset,
    SimulatorConfig,
    SimulatorHandle,
    oauth,
    start_simulator,
)

USER = "user1@example.com"
REDIRECT = "http://127.0.0.1:5000/redirect"  # loopback: registered by default


def api(sim: SimulatorHandle, email: str = USER) -> httpx.Client:
    return httpx.Client(base_url=sim.base_url, headers={
        "Authorization": f"Bearer {sim.token_for(email)}"})


def test_lists_cut_max_to_the_documented_limit_and_link_the_next_page(
        sim: SimulatorHandle) -> None:
    biggest = max(sim.dataset.ground_truth(USER), key=lambda r: r["messages"])
    with api(sim) as client:
        first = client.get("/messages", params={"roomId": biggest["id"], "max": 5000})
        assert len(first.json()["items"]) == min(biggest["messages"], 1000)
        small = client.get("/messages", params={"roomId": biggest["id"], "max": 10})
        link = small.links["next"]["url"]
        assert "beforeMessage=" in link and "max=10" in link
        second = client.get(link).json()["items"]
        assert second[0]["created"] <= small.json()["items"][-1]["created"]
        assert client.get("/messages", params={"roomId": biggest["id"]}).json()["items"].__len__() \
            == min(biggest["messages"], 50)  # Webex's default page of messages
        refused = client.get("/rooms", params={"max": 0})
    assert refused.status_code == 400
    body = refused.json()
    assert set(body) == {"message", "errors", "trackingId"}
    assert refused.headers["TrackingID"] == body["trackingId"]


def test_rooms_have_webex_fields_and_most_recent_activity_first(sim: SimulatorHandle) -> None:
    with api(sim) as client:
        rooms = client.get("/rooms", params={"max": 1000}).json()["items"]
    assert {"id", "title", "type", "isLocked", "lastActivity", "creatorId", "created"} <= set(
        rooms[0])
    activity = [r["lastActivity"] for r in rooms]
    assert activity == sorted(activity, reverse=True)
    assert all(r["created"].endswith("Z") and len(r["created"]) == 24 for r in rooms)


def test_a_missing_or_expired_token_is_401(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000.0]  # the tokens' clock, moved by the test: no race with a 0.3 s life
    monkeypatch.setattr(oauth, "time", SimpleNamespace(time=lambda: clock[0]))
    sim = start_simulator(SimulatorConfig(spaces=2, messages=10))
    try:
        short = sim.token_for(USER, lifetime=0.3)
        assert httpx.get(f"{sim.base_url}/people/me").status_code == 401
        me = httpx.get(f"{sim.base_url}/people/me", headers={"Authorization": f"Bearer {short}"})
        assert me.json()["emails"] == [USER]
        clock[0] += 0.31
        assert httpx.get(f"{sim.base_url}/people/me", headers={
            "Authorization": f"Bearer {short}"}).status_code == 401
    finally:
        sim.stop()


def test_above_the_rate_limit_is_429_with_retry_after() -> None:
    sim = start_simulator(SimulatorConfig(spaces=1, messages=0, rate_limit=3))
    try:
        with api(sim) as client:
            statuses = [client.get("/people/me") for _ in range(5)]
        limited = [r for r in statuses if r.status_code == 429]
        assert [r.status_code for r in statuses[:3]] == [200, 200, 200] and limited
        assert int(limited[0].headers["Retry-After"]) >= 1
        assert limited[0].json()["trackingId"] == limited[0].headers["TrackingID"]
    finally:
        sim.stop()


def _pkce() -> tuple[str, str]:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _authorize(sim: SimulatorHandle, challenge: str, hint: str = "user2") -> str:
    answer = httpx.get(f"{sim.base_url}/authorize", params={
        "client_id": "demo-client", "response_type": "code", "redirect_uri": REDIRECT,
        "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256",
        "login_hint": hint})
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def _token(sim: SimulatorHandle, **form: str) -> httpx.Response:
    return httpx.post(f"{sim.base_url}/access_token", data={
        "client_id": "demo-client", "client_secret": "demo-secret", **form})


def test_oauth_code_with_pkce_then_refresh(sim: SimulatorHandle) -> None:
    verifier, challenge = _pkce()
    wrong = _token(sim, grant_type="authorization_code", redirect_uri=REDIRECT,
                   code=_authorize(sim, challenge), code_verifier="w" * 50)
    assert wrong.status_code == 400
    code = _authorize(sim, challenge)
    tokens = _token(sim, grant_type="authorization_code", redirect_uri=REDIRECT, code=code,
                    code_verifier=verifier).json()
    assert {"access_token", "expires_in", "refresh_token", "refresh_token_expires_in"} <= set(
        tokens)
    me = httpx.get(f"{sim.base_url}/people/me",
                   headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["emails"] == ["user2@example.com"]
    reused = _token(sim, grant_type="authorization_code", redirect_uri=REDIRECT, code=code,
                    code_verifier=verifier)
    assert reused.status_code == 400  # a code is good once
    renewed = _token(sim, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert renewed.status_code == 200 and renewed.json()["access_token"] != tokens[
        "access_token"]
    assert _token(sim, grant_type="refresh_token", refresh_token="nope").status_code == 400


def test_data_is_the_same_for_a_seed_and_skewed() -> None:
    config = SimulatorConfig(seed=7, spaces=60, messages=6000)
    truth = Dataset(config).ground_truth(USER)
    assert truth == Dataset(config).ground_truth(USER)
    assert truth != Dataset(SimulatorConfig(seed=8, spaces=60, messages=6000)).ground_truth(USER)
    sizes = [r["messages"] for r in truth]
    assert sum(sizes) == 6000 and 0 in sizes and max(sizes) > 1000
    titles = " ".join(r["title"] for r in truth)
    assert "<script>" in titles and any(ord(c) > 0x2000 for c in titles)


def test_latency_is_a_wait_not_a_thread_so_requests_overlap() -> None:
    sim = start_simulator(SimulatorConfig(spaces=1, messages=0, latency_ms=1000))
    token = sim.token_for(USER)
    n = 20

    async def many() -> list[int]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=n)) as client:
            answers = await asyncio.gather(*(client.get(
                f"{sim.base_url}/people/me", headers={"Authorization": f"Bearer {token}"})
                for _ in range(n)))
        return [a.status_code for a in answers]

    try:
        started = time.monotonic()
        statuses = asyncio.run(many())
        took = time.monotonic() - started
    finally:
        sim.stop()
    assert statuses == [200] * n
    # One after the other they would take n seconds; overlapping, about one.
    assert took < n / 2, f"{n} requests of 1 s took {took:.1f} s: latency is serialised"


@pytest.mark.parametrize("path", ["/nothing-here", "/rooms/x/y/z"])
def test_unknown_paths_are_webex_404s(sim: SimulatorHandle, path: str) -> None:
    with api(sim) as client:
        answer = client.get(path)
    assert answer.status_code == 404 and answer.json()["trackingId"]
