"""``flask-realtime webex-sim``: serve the Webex API simulator on its own."""

from __future__ import annotations

import threading

import click

from .simulator import SimulatorConfig, start_simulator


@click.command("webex-sim")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8099, show_default=True, type=click.IntRange(0, 65535))
@click.option("--seed", default=2019, show_default=True, help="Same seed, same data.")
@click.option("--users", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--spaces", default=40, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--messages", default=4000, show_default=True,
              type=click.IntRange(0, 10_000_000), help="In all, spread over the spaces.")
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(0))
@click.option("--jitter-ms", default=0.0, show_default=True, type=click.FloatRange(0))
@click.option("--rate-limit", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Requests per second per token before 429 (default: no limit).")
@click.option("--client-id", default="demo-client", show_default=True)
@click.option("--client-secret", default="demo-secret", show_default=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, metavar="URI",
              help="A redirect URI the integration registered (repeat for more): login "
                   "codes go to these only. Default: /redirect on 127.0.0.1, localhost "
                   "and [::1], any port.")
def webex_sim(host: str, port: int, seed: int, users: int, spaces: int, messages: int,
              latency_ms: float, jitter_ms: float, rate_limit: float | None,
              client_id: str, client_secret: str, redirect_uris: tuple[str, ...]) -> None:
    """Serve a simulated Webex API (people, rooms, messages, memberships, OAuth)."""
    config = SimulatorConfig(seed=seed, users=users, spaces=spaces, messages=messages,
                             latency_ms=latency_ms, jitter_ms=jitter_ms, rate_limit=rate_limit,
                             client_id=client_id, client_secret=client_secret)
    if redirect_uris:
        config.redirect_uris = list(redirect_uris)
    handle = start_simulator(config, host, port)
    click.echo(f"Webex simulator on {handle.base_url}  (Ctrl-C to quit)")
    click.echo(f"  users: user1..user{users}@{config.domain}; OAuth client {client_id}")
    click.echo(f"  redirect URIs: {' '.join(config.redirect_uris)}")
    click.echo(f"  a token for user1@{config.domain}: {handle.token_for()}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
