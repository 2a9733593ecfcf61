"""The whole deployment, natively: scripts/stack's topology, one per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scripts.stack import Stack, self_signed_certificate

from tests.browser.conftest import browser, page, problems  # noqa: F401  (Chromium fixtures)
from tests.processes import free_port, session_members


def running_stack(directory: Path, **options: Any) -> Iterator[dict[str, Any]]:
    """A started stack's state (``stack``: the :class:`Stack`), stopped at the end with
    nothing left behind, RQ work-horses (groups of their own) included."""
    running = Stack(directory)
    try:
        with pytest.MonkeyPatch.context() as env:  # the web processes inherit it
            # test_proxy.py's public name; the app answers to no other (DNS rebinding).
            env.setenv("FLASK_REALTIME_ALLOWED_HOSTS", "console.example")
            state = running.start(port=free_port(), demo=True, **options)
    except BaseException:
        running.stop()
        raise
    state["stack"] = running
    yield state
    sessions = [p["pid"] for p in running.load()["processes"]]
    running.stop()
    assert not [pid for sid in sessions for pid in session_members(sid)]


def log_tails(state: dict[str, Any], chars: int = 3000) -> str:
    """The end of each log of a running stack (its processes' and nginx's), for a
    failure's message: what a fixture's temporary folder would otherwise take away."""
    logs = sorted(Path(state["stack"].dir).rglob("*.log"))
    return "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-chars:]}"
                     for log in logs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """nginx, 2 web processes (gunicorn), 2 RQ workers, Redis and the Webex simulator.

    The simulator answers slowly (150 ms a request) so that space_stats runs long
    enough to be reloaded mid-run.
    """
    yield from running_stack(tmp_path_factory.mktemp("stack"), webs=2, workers=2,
                             sim_latency_ms=150)


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The stack behind https, with a self-signed certificate for 127.0.0.1 made here
    (``state["tls"]["cert"]`` is the CA file a client verifies it with); plain http on
    ``state["http_url"]``. One web process and one worker: TLS is the point."""
    directory = tmp_path_factory.mktemp("tls-stack")
    tls = self_signed_certificate(directory / "tls", ["127.0.0.1", "localhost"])
    yield from running_stack(directory, webs=1, workers=1, tls=tls)
