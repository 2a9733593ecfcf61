"""space_stats against an independent oracle: webexpythonsdk, one request after another,
over the same simulator, on seeded datasets with Webex's edge cases (threaded replies,
ties, edits, deleted messages, direct spaces, teams, a title Webex could not decrypt,
empty spaces, spaces of more than one page)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import Any

import pytest

from flask_realtime.core.jobs import RunContext
from flask_realtime.webex.client import WebexAccess, static_token
from flask_realtime.webex.jobs import space_stats
from flask_realtime.webex.simulator import SimulatorConfig, start_simulator

webexpythonsdk = pytest.importorskip("webexpythonsdk")

USER = "user1@example.com"

DATASETS = {
    "default-edge-cases": SimulatorConfig(seed=1, spaces=30, messages=4000, kms_failures=1),
    "many-ties-and-threads": SimulatorConfig(seed=7, spaces=20, messages=3000, ties=0.4,
                                             threads=0.4, edited=0.2, deleted=0.1),
    "one-big-space": SimulatorConfig(seed=11, spaces=2, messages=5500, users=2),
    "many-small": SimulatorConfig(seed=2019, spaces=120, messages=600, users=5, teams=4),
}


def sdk_scan(base_url: str, token: str) -> dict[str, tuple[Any, ...]]:
    """What a user of the SDK would write: every room, every message, in order."""
    api = webexpythonsdk.WebexAPI(access_token=token, base_url=base_url + "/",
                                  single_request_timeout=30)
    found = {}
    for room in api.rooms.list(max=1000):
        count, newest, oldest = 0, None, None
        for message in api.messages.list(roomId=room.id, max=1000):
            created = message.to_dict()["created"]
            newest = newest or created
            oldest = created
            count += 1
        found[room.id] = (room.to_dict().get("title"), room.type, count, oldest, newest)
    return found


@pytest.mark.parametrize("name", list(DATASETS))
def test_space_stats_equals_a_sequential_sdk_scan(name: str) -> None:
    with start_simulator(DATASETS[name]) as sim:
        token = sim.token_for(USER)
        context = RunContext("run-1", USER, {"webex": WebexAccess(sim.base_url,
                                                                  static_token(token))})
        with contextlib.redirect_stdout(io.StringIO()):
            result = asyncio.run(space_stats(lambda: True, context, concurrency=16))
        oracle = sdk_scan(sim.base_url, token)
    ours = {r["id"]: (r["title"], r["type"], r["messages"], r["oldest"], r["newest"])
            for r in result}
    assert ours == oracle
    assert len(result) == len(oracle) > 0


def test_the_datasets_hold_the_edge_cases() -> None:
    seen: set[str] = set()
    for config in DATASETS.values():
        with start_simulator(config) as sim:
            for row in sim.dataset.ground_truth(USER):
                seen |= {k for k, holds in [
                    ("direct", row["type"] == "direct"), ("no title", row["title"] is None),
                    ("empty", row["messages"] == 0), ("pages", row["messages"] > 1000)] if holds}
            messages = [m for r in sim.dataset.rooms.values() for m in r.messages]
            seen |= {k for k, holds in [
                ("replies", any(m.parent_id for m in messages)),
                ("edits", any(m.updated for m in messages)),
                ("ties", any(a.created == b.created for r in sim.dataset.rooms.values()
                             for a, b in zip(r.messages, r.messages[1:], strict=False)))]
                if holds}
    assert seen == {"direct", "no title", "empty", "pages", "replies", "edits", "ties"}
