"""The whole deployment, natively: scripts/stack's topology, one per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from scripts.stack import Stack

from tests.browser.conftest import browser, page, problems  # noqa: F401  (Chromium fixtures)
from tests.processes import free_port, session_members


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """nginx, 2 web processes (gunicorn), 2 RQ workers, Redis and the Webex simulator.

    The simulator answers slowly (150 ms a request) so that space_stats runs long
    enough to be reloaded mid-run.
    """
    running = Stack(tmp_path_factory.mktemp("stack"))
    try:
        with pytest.MonkeyPatch.context() as env:  # the web processes inherit it
            # test_proxy.py's public name; the app answers to no other (DNS rebinding).
            env.setenv("FLASK_REALTIME_ALLOWED_HOSTS", "console.example")
            state = running.start(port=free_port(), webs=2, workers=2, demo=True,
                                  sim_latency_ms=150)
    except BaseException:
        running.stop()
        raise
    state["stack"] = running
    yield state
    sessions = [p["pid"] for p in running.load()["processes"]]
    running.stop()
    # Nothing outlives the stack, RQ work-horses (groups of their own) included.
    assert not [pid for sid in sessions for pid in session_members(sid)]
