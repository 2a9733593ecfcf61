"""Run state changes as the page hears them: the ``state`` event and its payload, and
their sending from a process that has no Socket.IO server (an RQ worker). No Flask.

A web process emits state changes itself (web/announcer.py, batched from a thread),
through the message queue, so that every process's sockets of the user hear them. A
worker moves runs too (running, succeeded, ...): :class:`QueueAnnouncer` publishes
those on the same queue, with python-socketio's write-only manager, its documented way
of emitting from an external process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.ports import OutputLog
from ..core.runs import Run, RunState
from .rooms import ADMIN_ROOM, user_room

#: The message queue's channel: Flask-SocketIO's default (``SocketIO(channel=...)``),
#: which every web process listens on.
CHANNEL = "flask-socketio"


def run_json(store: OutputLog, run: Run, *, with_result: bool = False) -> dict[str, Any]:
    """The run as the API and the page show it, with the number of its stored lines."""
    return run.to_json(lines=store.output_end(run.id), with_result=with_result)


def state_event(store: OutputLog, run: Run) -> dict[str, Any]:
    """The payload of the ``state`` event for ``run``, sent to :func:`~.rooms.user_room`.

    A queued run is announced once, as it is made (``RunService.start``, ``start_many``),
    before any line of it is stored (its first, if any, comes after: the RQ runner's
    "no worker" line, the job's output once running): its payload says 0 lines without
    asking the store (a scheduler round's 1,000 starts, 1,000 requests fewer)."""
    return state_events(store, [run])[0]


def state_events(store: OutputLog, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """:func:`state_event` of each of ``runs``, in order, with one question to the store
    (``output_ends``) for the lines of all that are not queued (a queued run says 0)."""
    asked = [run.id for run in runs if run.state is not RunState.QUEUED]
    ends = iter(store.output_ends(asked) if asked else ())
    return [{"run_id": run.id, **run.to_json(
        lines=0 if run.state is RunState.QUEUED else next(ends))} for run in runs]


class QueueAnnouncer:
    """A run listener (``RunService.subscribe``) that publishes each state change to the
    sockets of the run's user (and with ``admins`` to the admins' room), whichever web
    process holds them, through the Redis at ``redis_url``. Publishing needs no thread;
    a Redis that is away loses the event (python-socketio logs it), and the page reads
    the state again when it reconnects."""

    def __init__(self, store: OutputLog, redis_url: str, *, admins: bool = True) -> None:
        from .socketio_imports import restore_redis

        restore_redis()  # its Redis manager sees redis (web/socketio_imports.py)
        from .socketio_internals import redis_manager  # python-socketio alone: no Flask

        self.store = store
        #: Whether to send ``admin_state`` too (ADMIN_USERS is set; docs/access.md).
        self.admins = admins
        self.queue = redis_manager(redis_url, channel=CHANNEL, write_only=True)

    def __call__(self, run: Run) -> None:
        event = state_event(self.store, run)
        self.queue.emit("state", event, namespace="/", to=user_room(run.user))
        if self.admins:  # web/admin.py
            self.queue.emit("admin_state", event, namespace="/", to=ADMIN_ROOM)
