"""Webex jobs: space statistics, and creating and cleaning up test spaces.

They act as the logged-in user through ``context.services["webex"]`` (a
:class:`~flask_realtime.webex.client.WebexAccess` whose token the login layer renews).

What they share (docs/webex.md, "The jobs"): one space that fails is a row saying why,
not the end of the run; only a failure of the room list or of the login ends a run
early. Pauses the client makes (429, outages) are one printed line each. Re-running
``create_test_spaces`` or ``clean_up_test_spaces`` finishes what an earlier run left
(they find their spaces by title), and Stop prints what was left half-made.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import wcwidth

from ..core.files import ArtifactError, Picture
from ..core.jobs import Range, RunContext, Running, job
from . import charts
from .client import WebexAccess, WebexApiError, WebexLoginError
from .models import Room

#: Titles of the spaces ``create_test_spaces`` makes start with this, and
#: ``clean_up_test_spaces`` deletes only those.
TEST_SPACE_PREFIX = "[flask-realtime test]"

#: The widest a title gets in a printed table (display columns).
TITLE_COLUMNS = 40

T = TypeVar("T")


def webex_of(context: RunContext) -> WebexAccess:
    webex = context.services.get("webex")
    if not isinstance(webex, WebexAccess):
        raise RuntimeError("This job needs a Webex login: run the app with a Webex "
                           "integration or in demo mode, and log in (docs/webex.md).")
    webex.notify = print  # one line per pause, in the run's output
    return webex


async def until_stopped(running: Running, work: Awaitable[T], poll: float = 0.05) -> T:
    """Run ``work``; cancel it (and the requests it has in flight) soon after Stop."""
    task = asyncio.ensure_future(work)
    while not task.done():
        if not running():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise asyncio.CancelledError("stopped")
        await asyncio.wait([task], timeout=poll)
    return task.result()


async def each(work: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run ``work`` at once; the first exception cancels the rest and is raised as it
    is (not in an ExceptionGroup: the run's error should read as the sentence it is)."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in work:
                group.create_task(coroutine)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


# -- space_stats ---------------------------------------------------------------------------
@job(title="Webex space statistics")
async def space_stats(
    running: Running, context: RunContext,
    concurrency: Annotated[int, Range(1, 200), "requests in flight at once"] = 32,
) -> list[dict[str, Any]]:
    """For each of your Webex spaces: how many messages, the oldest and the newest.

    A space Webex will not read (403, or deleted meanwhile) gets a row with the reason
    and no counts; the run still succeeds, with a warning line and the number of such
    spaces. Rows come most recently active first, as Webex lists them; ``error`` is
    there only when some space could not be read; ``id`` comes last. With matplotlib
    (the ``charts`` extra) the run also keeps two charts, shown on its page: the 20
    largest spaces, and messages per day over time.
    """
    webex = webex_of(context)
    webex.concurrency = concurrency
    drawing = charts.available()
    days: Counter[str] = Counter()  # "YYYY-MM-DD" -> messages, for the timeline

    async def scan() -> list[dict[str, Any]]:
        try:
            rooms = [room async for room in webex.list_rooms()]
        except WebexLoginError:
            raise
        except WebexApiError as exc:
            raise RuntimeError(f"Could not list your Webex spaces, so nothing was counted: "
                               f"{exc}. Try again later.") from exc
        print(f"{len(rooms)} spaces: reading their messages, {concurrency} requests at once")
        rows: dict[str, dict[str, Any]] = {}

        async def count(room: Room) -> None:
            total, newest, oldest = 0, None, None
            try:
                # Raw pages: only the count and the first and last times are needed, so
                # no Message object is built for the thousands of messages in between.
                async for page in webex.pages("messages", roomId=room.id):
                    if page:
                        newest = newest or page[0].get("created")
                        oldest = page[-1].get("created")
                        total += len(page)
                        if drawing:
                            days.update([str(m.get("created") or "")[:10] for m in page])
            except WebexLoginError:
                raise
            except WebexApiError as exc:
                rows[room.id] = _stats_row(room, None, None, None, exc.reason)
                print(f"[{len(rows)}/{len(rooms)}] {_printable(room.label)}: could not be "
                      f"read: {exc.reason}")
                return
            rows[room.id] = _stats_row(room, total, oldest, newest)
            span = f"{oldest} .. {newest}" if total else "empty"
            print(f"[{len(rows)}/{len(rooms)}] {_printable(room.label)}: {total} messages, "
                  f"{span}")

        await each(count(room) for room in rooms)
        # Webex's own order (most recently active first); the list was asked for by id,
        # which Webex lists completely, and ties keep that order.
        ordered = sorted(rooms, key=lambda r: r.last_activity or r.created, reverse=True)
        return [rows[room.id] for room in ordered]

    async with webex:
        results = await until_stopped(running, scan())
        print(f"{webex.requests_sent} requests to Webex ({webex.retried} retried, "
              f"{webex.rate_limited} answered 429)")
    unreadable = [r for r in results if r.get("error")]
    if unreadable:
        results = [_with_error_column(r) for r in results]
    if drawing:  # before the table: the summary stays the last line
        _keep_charts(context, results, days)
    else:
        print(charts.NEEDS_EXTRA)
    _print_table(results)
    if unreadable:
        print(f"warning: {len(unreadable)} of {len(results)} spaces could not be read; "
              "their rows say why (the other spaces are counted in full).")
    total = sum(r["messages"] or 0 for r in results)
    print(f"{len(results)} spaces, {total} messages"
          + (f"; {len(unreadable)} could not be read" if unreadable else ""))
    return results


def _keep_charts(context: RunContext, rows: list[dict[str, Any]],
                 days: Counter[str]) -> None:
    """Draw space_stats's charts and keep them with the run (shown on its page); a chart
    that cannot be kept is a line saying why, and the table is the result all the same."""
    drawings: list[Callable[[], Picture | None]] = [
        lambda: charts.messages_per_space(rows), lambda: charts.activity(days)]
    for draw in drawings:
        try:
            chart = draw()
            if chart is None:
                continue
            context.artifacts.save(chart.name, chart)
        except ArtifactError as exc:
            print(f"warning: {exc}")
            continue
        except Exception as exc:  # matplotlib's own trouble: the table is the result
            print(f"warning: a chart could not be drawn ({type(exc).__name__}: {exc}); "
                  "the table has the same figures.")
            continue
        print(f"chart: {chart.name}")


def _stats_row(room: Room, messages: int | None, oldest: str | None, newest: str | None,
               error: str | None = None) -> dict[str, Any]:
    """What a person reads first, the id last (the page's table keeps this order)."""
    row: dict[str, Any] = {"title": room.title if room.has_title else None,
                           "type": room.type, "messages": messages, "oldest": oldest,
                           "newest": newest}
    if error is not None:
        row["error"] = error
    row["id"] = room.id
    return row


def _with_error_column(row: dict[str, Any]) -> dict[str, Any]:
    """Every row with an ``error`` (None when readable), before ``id``."""
    rest = {k: v for k, v in row.items() if k not in ("error", "id")}
    return {**rest, "error": row.get("error"), "id": row["id"]}


#: Shown as ``<U+202E>`` in printed tables, as the page shows them (docs/ui.md): bidi
#: controls and zero-width characters, which reorder or hide text on a terminal too,
#: and control characters.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u2064\u2066-\u206f\ufeff]")


def _printable(text: str) -> str:
    return _INVISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def _cell(text: str, columns: int, right: bool = False) -> str:
    """``text`` in exactly ``columns`` display columns: wide (CJK) characters and emoji
    count two, cut with an ellipsis when longer."""
    if wcwidth.width(text) > columns:
        text = wcwidth.clip(text, 0, columns - 1) + "…"
    return wcwidth.rjust(text, columns) if right else wcwidth.ljust(text, columns)


def format_table(headers: list[str], rows: list[list[str]], right: Iterable[int] = (),
                 widest: dict[int, int] | None = None) -> list[str]:
    """Lines of a plain-text table whose columns stay aligned whatever the script:
    widths are display columns (``wcwidth``), not characters."""
    aligned = set(right)
    widths = [max([wcwidth.width(h)] + [wcwidth.width(r[i]) for r in rows])
              for i, h in enumerate(headers)]
    for i, most in (widest or {}).items():
        widths[i] = min(widths[i], most)
    return ["  ".join(_cell(cell, widths[i], i in aligned) for i, cell in enumerate(line))
            .rstrip() for line in [headers, *rows]]


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("You are in no spaces.")
        return
    with_error = any("error" in r for r in rows)
    headers = ["space", "type", "messages", "oldest", "newest"] + (
        ["could not be read"] if with_error else [])
    lines = []
    for r in sorted(rows, key=lambda r: -1 if r["messages"] is None else r["messages"],
                    reverse=True):
        label = r["title"] if r["title"] is not None else "(no title)"
        line = [_printable(label), r["type"],
                "-" if r["messages"] is None else str(r["messages"]),
                r["oldest"] or "-", r["newest"] or "-"]
        if with_error:
            line.append(r.get("error") or "")
        lines.append(line)
    print()
    for text in format_table(headers, lines, right=[2], widest={0: TITLE_COLUMNS}):
        print(text)


# -- test spaces ---------------------------------------------------------------------------
@dataclass
class _Progress:
    """How far one test space got: what a Stop or a failure reports, and a re-run
    finishes."""

    title: str
    room: Room | None = None
    members: set[str] = field(default_factory=set)
    posted: set[str] = field(default_factory=set)  # the texts posted
    resumed: bool = False
    error: str | None = None

    def row(self, want_members: int, want_messages: int) -> dict[str, Any]:
        done = (self.room is not None and len(self.members) >= want_members
                and len(self.posted) >= want_messages)
        state = ("failed" if self.error else "complete" if done else "unfinished") + (
            " (resumed)" if self.resumed and not self.error else "")
        return {"title": self.title, "state": state, "members": len(self.members),
                "messages": len(self.posted), "error": self.error,
                "id": self.room.id if self.room else None}

    def missing(self, want_members: int, want_messages: int) -> str:
        if self.room is None:
            return "not created"
        return (f"{len(self.members)} of {want_members} members, {len(self.posted)} of "
                f"{want_messages} messages")


@job(title="Create test spaces")
async def create_test_spaces(
    running: Running, context: RunContext,
    count: Annotated[int, Range(1, 100), "spaces to create"] = 3,
    members: Annotated[int, Range(0, 20), "members to add to each (from member_emails)"] = 2,
    messages: Annotated[int, Range(0, 1000), "messages to post in each"] = 5,
    member_emails: Annotated[str, "comma-separated addresses to add"] =
        "user2@example.com,user3@example.com",
) -> list[dict[str, Any]]:
    """Create spaces titled with a marker prefix, add members, post messages.

    Run it again to finish what a failed or stopped run left: a space of that title is
    reused, and only its missing members and messages are added. One space failing is
    a row saying why; the others are made all the same.
    """
    webex = webex_of(context)
    emails = [e.strip().lower() for e in member_emails.split(",") if e.strip()][:members]
    texts = [f"Test message {i + 1} of {messages}" for i in range(messages)]
    titles = [f"{TEST_SPACE_PREFIX} space {n + 1}" for n in range(count)]
    progress = {title: _Progress(title) for title in titles}

    async def make(p: _Progress) -> None:
        try:
            if p.room is None:
                p.room = await webex.create_room(p.title)
                print(f"created {p.title!r}")
            else:
                # Resume: what is there already counts (a re-run adds only the rest).
                p.members |= {m.person_email.lower() async for m in
                              webex.list_memberships(room_id=p.room.id)} & set(emails)
                p.posted |= {m.text async for m in webex.list_messages(p.room.id)} & set(
                    texts)
                p.resumed = True
            for email in emails:
                if email not in p.members:
                    try:
                        await webex.create_membership(p.room.id, email)
                    except WebexApiError as exc:
                        if exc.status != 409:  # 409: already a member, which is the goal
                            raise
                    p.members.add(email)
            for text in texts:
                if text not in p.posted:
                    await webex.create_message(p.room.id, text)
                    p.posted.add(text)
            if p.resumed:
                print(f"finished {p.title!r}")
        except WebexLoginError:
            raise
        except WebexApiError as exc:
            p.error = exc.reason
            print(f"{p.title!r}: {p.missing(len(emails), messages)}; stopped there: "
                  f"{exc.reason}")

    async def make_all() -> None:
        async for room in webex.list_rooms():
            if room.title in progress and progress[room.title].room is None:
                progress[room.title].room = room
        await each(make(progress[title]) for title in titles)

    async with webex:
        try:
            await until_stopped(running, make_all())
        except asyncio.CancelledError:
            _report_unfinished([p for p in progress.values() if p.room is not None], emails,
                               messages, "create_test_spaces")
            raise
    rows = [progress[title].row(len(emails), messages) for title in titles]
    _warn_failed(rows, "create_test_spaces")
    return rows


def _report_unfinished(made: list[_Progress], emails: list[str], messages: int,
                       job_name: str) -> None:
    unfinished = [p for p in made if p.row(len(emails), messages)["state"] != "complete"]
    for p in unfinished:
        print(f"stopped: {p.title!r} is half made ({p.missing(len(emails), messages)})")
    if unfinished:
        print(f"Run {job_name} again with the same parameters to finish them.")


def _warn_failed(rows: list[dict[str, Any]], job_name: str) -> None:
    failed = [r for r in rows if r.get("error")]
    if failed:
        print(f"warning: {len(failed)} of {len(rows)} spaces failed (their rows say why); "
              f"run {job_name} again to retry them.")


@job(title="Clean up test spaces")
async def clean_up_test_spaces(
    running: Running, context: RunContext,
    dry_run: Annotated[bool, "only list what would be deleted"] = True,
) -> list[dict[str, Any]]:
    """Delete the spaces create_test_spaces made (their titles start with the marker).

    A space that cannot be deleted is a row saying why; the others are deleted all the
    same, and a re-run deletes what is left. One already gone counts as deleted.
    """
    webex = webex_of(context)
    rows: dict[str, dict[str, Any]] = {}
    marked: list[Room] = []

    async def remove(room: Room) -> None:
        row: dict[str, Any] = {"title": room.title, "deleted": False, "error": None,
                               "id": room.id}
        rows[room.id] = row
        if dry_run:
            print(f"would delete {room.title!r}")
            return
        try:
            await webex.delete_room(room.id)
        except WebexLoginError:
            raise
        except WebexApiError as exc:
            if exc.status != 404:  # 404: gone already, which is the goal
                row["error"] = exc.reason
                print(f"could not delete {room.title!r}: {exc.reason}")
                return
        row["deleted"] = True
        print(f"deleted {room.title!r}")

    async def clean() -> None:
        marked.extend([room async for room in webex.list_rooms()
                       if room.title.startswith(TEST_SPACE_PREFIX)])
        if not marked:
            print("No test spaces.")
        await each(remove(room) for room in marked)

    async with webex:
        try:
            await until_stopped(running, clean())
        except asyncio.CancelledError:
            left = [r for r in marked if not rows.get(r.id, {}).get("deleted")]
            if left and not dry_run:
                print(f"stopped: {len(marked) - len(left)} of {len(marked)} test spaces "
                      f"deleted, {len(left)} left; run clean_up_test_spaces again to delete "
                      "them.")
            raise
    result = [rows[room.id] for room in marked]
    _warn_failed(result, "clean_up_test_spaces")
    return result
