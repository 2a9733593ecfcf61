"""A Webex API simulator: the subset of Webex that Flask-Realtime uses, over real HTTP.

These machines cannot reach Webex, so the tests, the benchmarks and the demo mode
talk to this instead (``flask-realtime webex-sim``, or :func:`start_simulator` in a
test). What it follows of Webex is in :mod:`.api` (people, rooms, messages,
memberships) and :mod:`.oauth` (the integration's login); the data, generated from a
seed, in :mod:`.dataset`, with the faults real Webex has (:class:`SimulatorConfig`);
the HTTP server, aiohttp on an event loop of its own so latency costs no thread, in
:mod:`.http`.
"""

from __future__ import annotations

from types import TracebackType

from .api import DEFAULT_PAGE, MAX_PAGE, Simulator
from .dataset import Dataset, SimulatorConfig
from .http import HttpServer

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "Dataset", "Simulator", "SimulatorConfig",
           "SimulatorHandle", "start_simulator"]


class SimulatorHandle:
    """A running simulator: its URL, its data (the ground truth), tokens, and ``stop()``."""

    def __init__(self, simulator: Simulator, server: HttpServer) -> None:
        self.simulator = simulator
        self.server = server
        self.config = simulator.config
        self.dataset = simulator.dataset
        self.base_url = f"http://{server.host}:{server.port}/v1"

    def token_for(self, email: str = "user1@example.com", lifetime: float | None = None) -> str:
        """A valid access token for ``email`` (tests, benchmarks, the CLI)."""
        return self.simulator.token_for(email, lifetime)

    def fail_next(self, *statuses: int) -> None:
        """Answer the next API requests with these statuses."""
        self.simulator.fail_next(*statuses)

    def messages_to(self, email: str) -> list[dict[str, str | None]]:
        """The direct messages posted to ``email`` (the bot's, for instance), oldest
        first: ``{"id", "from", "to", "roomId", "markdown", "text"}``."""
        with self.dataset.lock:
            return [dict(m) for m in self.simulator.sent if m["to"] == email.lower()]

    def outage(self, seconds: float, status: int = 503) -> None:
        """From now on, answer every request ``status`` (503 or 429) for ``seconds``."""
        self.simulator.outage.begin(seconds, status)

    def stop(self) -> None:
        """Close the listener and its connections and end the simulator's thread. Twice
        is fine."""
        self.server.stop()

    close = stop

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def start_simulator(config: SimulatorConfig | None = None, host: str = "127.0.0.1",
                    port: int = 0) -> SimulatorHandle:
    """Serve a simulator from a thread of its own, with its own event loop (``port=0``:
    a free port); the handle's ``stop()`` (or ``close()``, or leaving ``with``) ends it."""
    simulator = Simulator(config or SimulatorConfig())
    return SimulatorHandle(simulator, HttpServer(simulator.handle, host, port))
