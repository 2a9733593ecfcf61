"""The whole deployment, natively: scripts/stack's topology for the test module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import browser, page, problems  # noqa: F401  (Chromium fixtures)
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))

from stack import Stack  # noqa: E402


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """nginx, 2 web processes (gunicorn), 2 RQ workers, Redis and the Webex simulator."""
    running = Stack(tmp_path_factory.mktemp("stack"))
    try:
        state = running.start(port=free_port(), webs=2, workers=2, demo=True,
                              sim_latency_ms=150)
    except BaseException:
        running.stop()
        raise
    state["stack"] = running
    yield state
    running.stop()
