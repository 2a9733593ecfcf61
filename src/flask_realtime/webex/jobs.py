"""Webex jobs: space statistics, and creating and cleaning up test spaces.

They act as the logged-in user through ``context.services["webex"]`` (a
:class:`~flask_realtime.webex.client.WebexAccess` whose token the login layer renews).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from ..core.jobs import Range, RunContext, Running, job
from .client import WebexAccess

#: Titles of the spaces ``create_test_spaces`` makes start with this, and
#: ``clean_up_test_spaces`` deletes only those.
TEST_SPACE_PREFIX = "[flask-realtime test]"

T = TypeVar("T")


def webex_of(context: RunContext) -> WebexAccess:
    webex = context.services.get("webex")
    if not isinstance(webex, WebexAccess):
        raise RuntimeError("This job needs a Webex login: run the app with a Webex "
                           "integration or in demo mode, and log in (docs/webex.md).")
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


@job(title="Webex space statistics")
async def space_stats(
    running: Running, context: RunContext,
    concurrency: Annotated[int, Range(1, 200), "requests in flight at once"] = 32,
) -> list[dict[str, Any]]:
    """For each of your Webex spaces: how many messages, the oldest and the newest."""
    webex = webex_of(context)
    webex.concurrency = concurrency

    async def scan() -> list[dict[str, Any]]:
        rooms = [room async for room in webex.list_rooms()]
        print(f"{len(rooms)} spaces: reading their messages, {concurrency} requests at once")
        results: dict[str, dict[str, Any]] = {}
        done = [0]

        async def count(room: Any) -> None:
            total, newest, oldest = 0, None, None
            # Raw pages: only the count and the first and last times are needed, so no
            # Message object is built for the thousands of messages in between.
            async for page in webex.pages("messages", roomId=room.id):
                if page:
                    newest = newest or page[0].get("created")
                    oldest = page[-1].get("created")
                    total += len(page)
            results[room.id] = {"id": room.id, "title": room.title, "type": room.type,
                                "messages": total, "oldest": oldest, "newest": newest}
            done[0] += 1
            span = f"{oldest} .. {newest}" if total else "empty"
            print(f"[{done[0]}/{len(rooms)}] {room.title}: {total} messages, {span}")

        await asyncio.gather(*(count(room) for room in rooms))
        return [results[room.id] for room in rooms]

    async with webex:
        results = await until_stopped(running, scan())
    _print_table(results)
    return results


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("You are in no spaces.")
        return
    width = min(max(len(r["title"]) for r in rows), 50)
    print()
    print(f"{'space':{width}}  {'messages':>8}  {'oldest':24}  newest")
    for r in sorted(rows, key=lambda r: r["messages"], reverse=True):
        title = r["title"] if len(r["title"]) <= width else r["title"][: width - 1] + "…"
        print(f"{title:{width}}  {r['messages']:>8}  {r['oldest'] or '-':24}  "
              f"{r['newest'] or '-'}")
    total = sum(r["messages"] for r in rows)
    print(f"{len(rows)} spaces, {total} messages")


@job(title="Create test spaces")
async def create_test_spaces(
    running: Running, context: RunContext,
    count: Annotated[int, Range(1, 100), "spaces to create"] = 3,
    members: Annotated[int, Range(0, 20), "members to add to each (from member_emails)"] = 2,
    messages: Annotated[int, Range(0, 1000), "messages to post in each"] = 5,
    member_emails: Annotated[str, "comma-separated addresses to add"] =
        "user2@example.com,user3@example.com",
) -> list[dict[str, Any]]:
    """Create spaces titled with a marker prefix, add members, post messages."""
    webex = webex_of(context)
    emails = [e.strip() for e in member_emails.split(",") if e.strip()][:members]
    created: list[dict[str, Any]] = []

    async def make(n: int) -> None:
        room = await webex.create_room(f"{TEST_SPACE_PREFIX} space {n}")
        for email in emails:
            await webex.create_membership(room.id, email)
        for i in range(messages):
            await webex.create_message(room.id, f"Test message {i + 1} of {messages}")
        created.append({"id": room.id, "title": room.title, "members": len(emails) + 1,
                        "messages": messages})
        print(f"created {room.title!r}")

    async with webex:
        await until_stopped(running, asyncio.gather(*(make(n + 1) for n in range(count))))
    return sorted(created, key=lambda r: r["title"])


@job(title="Clean up test spaces")
async def clean_up_test_spaces(
    running: Running, context: RunContext,
    dry_run: Annotated[bool, "only list what would be deleted"] = True,
) -> list[dict[str, Any]]:
    """Delete the spaces create_test_spaces made (their titles start with the marker)."""
    webex = webex_of(context)

    async def clean() -> list[dict[str, Any]]:
        marked = [room async for room in webex.list_rooms()
                  if room.title.startswith(TEST_SPACE_PREFIX)]
        if not marked:
            print("No test spaces.")
        delete: Callable[[str], Awaitable[None]] = webex.delete_room

        async def remove(room: Any) -> dict[str, Any]:
            if not dry_run:
                await delete(room.id)
            print(f"{'would delete' if dry_run else 'deleted'} {room.title!r}")
            return {"id": room.id, "title": room.title, "deleted": not dry_run}

        return list(await asyncio.gather(*(remove(room) for room in marked)))

    async with webex:
        return await until_stopped(running, clean())
