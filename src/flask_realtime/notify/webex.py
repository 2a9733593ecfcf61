"""The Webex message of a run's end, and its sending through Webex's ``/messages``.

Two ways (docs/notifications.md, "Webex"): with a bot token the operator configures
(``WEBEX_BOT_TOKEN``), a direct message from the bot to the user (``toPersonEmail``,
or ``toPersonId`` for a user known by their person id); without one, a message into
the space the user picked (``roomId``), sent with the user's own login. The text is
Webex markdown: the job's title in bold, the final state and the duration, the error
sentence of a failed run as a quote, and a link to the run. What came from the run (the
title, the error) is escaped, so it shows as the text it is and cannot make a link, a
mention or a heading.

:func:`send` makes one try and says how it went (:class:`Outcome`): Webex's
documented answers decide whether another try may help (429, 423 and 5xx, with their
``Retry-After``) or not (400, 401, 403, 404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from ..core.runs import Run, RunState

#: Webex's limit for a message's markdown (7,439 bytes); what is longer is clipped.
MAX_MARKDOWN = 7000
MAX_ERROR = 600
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~@&])")

STATE_WORDS = {RunState.SUCCEEDED: "succeeded", RunState.FAILED: "failed",
               RunState.STOPPED: "was stopped"}


@dataclass(frozen=True)
class Outcome:
    """One try's result: ``sent``; else ``reason`` (a sentence), whether a later try
    may succeed (``retry``), and how long the other side asked to wait (seconds)."""

    sent: bool
    reason: str | None = None
    retry: bool = False
    retry_after: float | None = None


def escape(text: str) -> str:
    """``text`` as literal markdown: one line, every markdown character escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def parse_time(value: str | None) -> datetime | None:
    """A run record's time (ISO 8601 with ``Z``) as a datetime; None if absent or bad."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration(run: Run) -> str:
    """How long the run took, from its start (or creation, if it never ran) to its end:
    ``0.4 s``, ``12 s``, ``3 min 5 s``, ``2 h 3 min``."""
    began = parse_time(run.started_at) or parse_time(run.created_at)
    ended = parse_time(run.ended_at)
    if began is None or ended is None:
        return "an unknown time"
    seconds = max((ended - began).total_seconds(), 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def run_markdown(run: Run, link: str | None) -> str:
    """The message for ``run``'s end, in Webex markdown."""
    state = STATE_WORDS.get(run.state, run.state.value)
    lines = [f"**{escape(run.title or run.job)}** {state} after {duration(run)}."]
    if run.state is RunState.FAILED and run.error:
        error = escape(run.error)
        if len(error) > MAX_ERROR:
            error = error[:MAX_ERROR].rstrip("\\") + "…"
        lines.append(f"> {error}")
    if link:
        lines.append(f"[Open the run]({link})")
    else:
        lines.append(f"Run `{escape(run.id)}` on Flask-Realtime.")
    return "\n\n".join(lines)[:MAX_MARKDOWN]


def notice_markdown(subject: str, text: str, link: str | None) -> str:
    """A notice that is not about one run (:meth:`Notifier.tell`), in Webex markdown."""
    lines = [f"**{escape(subject)}**", escape(text)]
    if link:
        lines.append(f"[Open Flask-Realtime]({link})")
    return "\n\n".join(lines)[:MAX_MARKDOWN]


def recipient(user: str) -> dict[str, str]:
    """The bot's addressee field for ``user``: their e-mail, else their person id."""
    return {"toPersonEmail": user} if "@" in user else {"toPersonId": user}


def send(client: httpx.Client, base_url: str, token: str, fields: dict[str, Any], *,
         timeout: float, where: str) -> Outcome:
    """POST one message (``fields``: the addressee and ``markdown``) with ``token``;
    ``where`` names the addressee in the sentences ("you", "the space you picked")."""
    try:
        response = client.post(f"{base_url.rstrip('/')}/messages", json=fields,
                               headers={"Authorization": f"Bearer {token}"}, timeout=timeout,
                               follow_redirects=False)
    except httpx.HTTPError as exc:
        return Outcome(False, f"Webex could not be reached ({type(exc).__name__}).",
                       retry=True)
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True)
    said = _webex_message(response)
    if status in (423, 429) or status >= 500:
        return Outcome(False, f"Webex answered {status}{said}.", retry=True,
                       retry_after=retry_after(response))
    if status == 401:
        return Outcome(False, "Webex refused the access token (401): "
                              + ("the operator must check WEBEX_BOT_TOKEN." if
                                 where == "you" else "log in again."))
    if status == 404:
        return Outcome(False, f"Webex does not know {where} (404){said}.")
    return Outcome(False, f"Webex refused the message to {where} ({status}){said}.")


def _webex_message(response: httpx.Response) -> str:
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {' '.join(str(message).split())[:200]}" if message else ""


def retry_after(response: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds, if it has one in seconds."""
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
