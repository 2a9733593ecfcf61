"""The Webex jobs through the whole product: log in (demo), start, read the result."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.auth.conftest import Browser
from tests.conftest import wait_for

USER = "user1@example.com"


@pytest.fixture
def simulator_options() -> dict[str, Any]:
    return {"latency_ms": 40, "spaces": 40, "messages": 4000}


def finished(b: Browser, run_id: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(lambda: (r := b.http.get(f"/api/runs/{run_id}").json())["state"] in (  # type: ignore[no-any-return]
        "succeeded", "failed", "stopped") and r, timeout=timeout)


def test_space_stats_finds_what_the_simulator_holds(user: Browser, simulator: Any) -> None:
    run_id = user.post("/api/runs", {"job": "space_stats"}).json()["id"]
    run = finished(user, run_id)
    assert run["state"] == "succeeded", run["error"]
    truth = simulator.dataset.ground_truth(USER)
    assert run["result"] == truth
    assert any(r["messages"] == 0 for r in truth) and max(r["messages"] for r in truth) > 1000
    log = user.http.get(f"/api/runs/{run_id}/log").text
    assert f"[{len(truth)}/{len(truth)}]" in log  # a line per space as it completes
    assert f"{len(truth)} spaces, {sum(r['messages'] for r in truth)} messages" in log


def test_space_stats_stops_within_a_second_mid_scan(user: Browser, simulator: Any) -> None:
    simulator.config.latency_ms = 300  # slow enough to be mid-scan for seconds
    run_id = user.post("/api/runs", {"job": "space_stats", "params": {"concurrency": 4}}
                       ).json()["id"]
    wait_for(lambda: "reading their messages" in user.http.get(
        f"/api/runs/{run_id}/log").text, timeout=15)
    asked = time.monotonic()
    assert user.post(f"/api/runs/{run_id}/stop").json() == {"ok": True}
    run = finished(user, run_id)
    took = time.monotonic() - asked
    assert run["state"] == "stopped"
    assert took < 1.5, f"stopped after {took:.2f}s"
    assert "[40/40]" not in user.http.get(f"/api/runs/{run_id}/log").text


def test_create_then_clean_up_test_spaces(user: Browser, simulator: Any) -> None:
    before = len(simulator.dataset.ground_truth(USER))
    made = finished(user, user.post("/api/runs", {"job": "create_test_spaces", "params": {
        "count": 2, "members": 1, "messages": 3}}).json()["id"])
    assert made["state"] == "succeeded", made["error"]
    assert [r["title"] for r in made["result"]] == [
        "[flask-realtime test] space 1", "[flask-realtime test] space 2"]
    assert len(simulator.dataset.ground_truth(USER)) == before + 2
    dry = finished(user, user.post("/api/runs", {"job": "clean_up_test_spaces"}).json()["id"])
    assert [r["deleted"] for r in dry["result"]] == [False, False]
    assert len(simulator.dataset.ground_truth(USER)) == before + 2
    done = finished(user, user.post("/api/runs", {"job": "clean_up_test_spaces", "params": {
        "dry_run": False}}).json()["id"])
    assert sorted(r["title"] for r in done["result"]) == [
        "[flask-realtime test] space 1", "[flask-realtime test] space 2"]
    assert len(simulator.dataset.ground_truth(USER)) == before  # nothing else was touched


def test_webex_jobs_without_a_login_say_what_is_missing() -> None:
    import asyncio

    from flask_realtime.core.jobs import RunContext
    from flask_realtime.webex.jobs import space_stats

    with pytest.raises(RuntimeError, match="needs a Webex login"):
        asyncio.run(space_stats(lambda: True, RunContext("r", "u", {})))
