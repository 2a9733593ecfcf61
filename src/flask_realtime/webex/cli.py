"""``flask-realtime webex-sim``: serve the Webex API simulator on its own."""

from __future__ import annotations

import threading
from typing import Any

import click

from .simulator import SimulatorConfig, start_simulator

SHARE = click.FloatRange(0, 1)
COUNT = click.IntRange(0)


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
@click.option("--scope", "scopes", multiple=True, metavar="SCOPE",
              help="A scope the integration has (repeat for more); a login asking for "
                   "another gets invalid_scope. Default: spark:all, spark:kms and the "
                   "read and write scopes of people, rooms, messages, memberships.")
# -- the data's edge cases (docs/webex.md, "Real-Webex behaviours")
@click.option("--threads", default=0.1, show_default=True, type=SHARE,
              help="Share of messages that are threaded replies (parentId).")
@click.option("--mentions", default=0.1, show_default=True, type=SHARE,
              help="Share of group-space messages that mention a member.")
@click.option("--edited", default=0.05, show_default=True, type=SHARE,
              help="Share of messages edited after posting (updated).")
@click.option("--ties", default=0.05, show_default=True, type=SHARE,
              help="Share of messages created in the same millisecond as the one before.")
@click.option("--deleted", default=0.02, show_default=True, type=SHARE,
              help="Deleted messages, as a share of --messages, on top of them.")
@click.option("--teams", default=2, show_default=True, type=COUNT,
              help="Teams; every fourth group space is in one (teamId).")
@click.option("--kms-failures", default=0, show_default=True, type=COUNT,
              help="Spaces listed without a title, with a kms_failure errors object.")
# -- faults, all off by default
@click.option("--forbidden-spaces", default=0, show_default=True, type=COUNT,
              help="Spaces whose messages answer 403 \"Failed to get activity\".")
@click.option("--vanishing-spaces", default=0, show_default=True, type=COUNT,
              help="Spaces deleted at the first read of their messages (404).")
@click.option("--locked-spaces", default=0, show_default=True, type=COUNT,
              help="Spaces whose messages answer 423 Locked --locked-times times.")
@click.option("--locked-times", default=1, show_default=True, type=COUNT)
@click.option("--retry-after", default=None, type=COUNT, metavar="SECONDS",
              help="Retry-After on every 429, 503 and 423 (default: the honest wait).")
@click.option("--outage-seconds", default=0.0, show_default=True, type=click.FloatRange(0),
              help="An outage: every request refused for this long.")
@click.option("--outage-status", default="503", show_default=True,
              type=click.Choice(["503", "429"]), help="What the outage answers.")
@click.option("--outage-at", default=None, type=click.FloatRange(0), metavar="SECONDS",
              help="The outage starts this long after the simulator (default: at once).")
@click.option("--outage-after-requests", default=None, type=COUNT, metavar="N",
              help="The outage starts after N requests instead.")
@click.option("--next-link-max-null", is_flag=True,
              help="Next links carry max=null (which answers 400), as Webex's have.")
@click.option("--relative-next-links", is_flag=True,
              help="Next links are relative (/v1/...), not absolute URLs.")
# -- the bot's messages (docs/notifications.md)
@click.option("--bot-token", default="simulated-bot-token", show_default=True,
              help="The bot's access token (WEBEX_BOT_TOKEN); empty for no bot.")
@click.option("--bot-email", default="notifier@webex.bot", show_default=True)
@click.option("--fail-messages", is_flag=True,
              help="Every POST /messages fails (--fail-messages-status).")
@click.option("--fail-messages-status", default=503, show_default=True,
              type=click.IntRange(400, 599))
def webex_sim(host: str, port: int, redirect_uris: tuple[str, ...], scopes: tuple[str, ...],
              outage_status: str, **options: Any) -> None:
    """Serve a simulated Webex API (people, rooms, messages, memberships, OAuth)."""
    # Every other option is named as its SimulatorConfig field.
    config = SimulatorConfig(outage_status=int(outage_status), **options)
    if redirect_uris:
        config.redirect_uris = list(redirect_uris)
    if scopes:
        config.scopes = list(scopes)
    handle = start_simulator(config, host, port)
    click.echo(f"Webex simulator on {handle.base_url}  (Ctrl-C to quit)")
    click.echo(f"  users: user1..user{config.users}@{config.domain}; OAuth client "
               f"{config.client_id}")
    click.echo(f"  redirect URIs: {' '.join(config.redirect_uris)}")
    faults = sorted(handle.dataset.faulty.values())
    if faults:
        counts = ", ".join(f"{faults.count(f)} {f}" for f in sorted(set(faults)))
        click.echo(f"  faulty spaces: {counts}")
    click.echo(f"  a token for user1@{config.domain}: {handle.token_for()}")
    if config.bot_token:
        click.echo(f"  the bot {config.bot_email}: its messages at GET /_sim/messages with "
                   "its token" + (f"; every POST /messages fails with "
                                  f"{config.fail_messages_status}" if config.fail_messages
                                  else ""))
    try:
        wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()


def wait_for_interrupt() -> None:
    """Block until Ctrl-C (KeyboardInterrupt): the simulator serves from its own thread."""
    threading.Event().wait()
