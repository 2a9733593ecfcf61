"""Run state changes on their way to the sockets of the run's user: queued by whoever
moved the run, sent by one thread, several changes in one packet. No Flask.

Why (docs/performance.md, "Sockets per process"): a user's every socket hears every
state change of every run of theirs (all tabs, all devices). Sent one by one from the
thread that moved the run, 100 runs watched by 300 sockets of one user made 90,000
packets, each waking a socket's writer thread, and a scheduler round of 1,000 fires
waited for 1,000 sends (a read of the run's output end and a publish on the message
queue each) before its jobs began.

:class:`StateAnnouncer` is a run listener (``RunService.subscribe``) that only queues
the run and returns. Its thread sends the way a write-combining queue does: a change
that comes when nothing was sent for ``window`` seconds leaves at once; changes that
come while the last send is younger than that wait for the window to end and leave
together. The window grows with the number of packets the last send made for this
process's sockets (``SECONDS_PER_PACKET``, at most ``MAX_WINDOW_SECONDS``): a user with
300 open sockets, or 1,000 users with one each, hear of changes at most every 0.15 s or
0.5 s, and the announcements cost at most about 2,000 packets a second.

Nothing is dropped or reordered: each room gets, in the order of the changes, one
``state`` event for a single change, or one ``states`` event whose payload is the list
of the changes (oldest first), each as ``state`` would carry it (docs/protocol.md).
The admins' room gets ``admin_state`` / ``admin_states`` the same way.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ..core.ports import OutputLog
from ..core.runs import Run
from .rooms import ADMIN_ROOM, user_room
from .states import state_events

log = logging.getLogger(__name__)

#: How long changes are gathered once one was just sent, in seconds: at most this
#: many sends a second, whatever the number of changes. A change after a quiet spell
#: is not held back at all.
WINDOW_SECONDS = 0.05
#: And at least this long for each packet the last send gave this process's sockets
#: (a send to a room of 300 sockets is 300 packets, each a wake-up of the socket's
#: writer thread): announcements cost at most about 2,000 packets a second, however
#: many sockets hear them, so they never crowd out the output (docs/protocol.md).
SECONDS_PER_PACKET = 0.0005
#: The longest the gathering lasts, however many sockets the last send reached.
MAX_WINDOW_SECONDS = 1.0
#: How long :meth:`StateAnnouncer.close` waits for the last changes to be sent.
CLOSE_WAIT_SECONDS = 5.0

#: One packet to send: ``(event, payload, room)``.
Emit = tuple[str, Any, str]
#: Sends packets, in order (web/socketio_internals.py ``emit_many``), and returns how
#: many packets that made for this process's sockets (None: not known, taken as none).
Sender = Callable[[Sequence[Emit]], int | None]


def packets(events: Sequence[dict[str, Any]], users: Sequence[str], *,
            admins: bool) -> list[Emit]:
    """The packets for ``events`` (each a ``state`` payload, of the run of the same index
    in ``users``): per user room, in first-seen order, one ``state`` event when the room
    has one change and one ``states`` event with the list otherwise; with ``admins``, the
    same for the admins' room as ``admin_state`` / ``admin_states``."""
    rooms: dict[str, list[dict[str, Any]]] = {}
    for event, user in zip(events, users, strict=True):
        rooms.setdefault(user_room(user), []).append(event)
    out: list[Emit] = [
        ("state", changes[0], room) if len(changes) == 1 else ("states", changes, room)
        for room, changes in rooms.items()]
    if admins and events:
        out.append(("admin_state", events[0], ADMIN_ROOM) if len(events) == 1
                   else ("admin_states", list(events), ADMIN_ROOM))
    return out


class StateAnnouncer:
    """Sends each run's state changes to its user's sockets (and the admins' with
    ``admins``) through ``send``, batched as the module says.

    ``announcer(run)`` never blocks on the store or the network: it queues the run and
    wakes the thread (started at the first change). A failed send is logged and its
    changes are not retried (the page reads the state again when it reconnects, as
    with any lost event). :meth:`close` sends what is queued and ends the thread;
    a change after that is sent at once in the caller's thread, so that the changes
    of a shutdown (runs failed as the process ends) still go out, after the others.
    """

    def __init__(self, store: OutputLog, send: Sender, *, admins: bool = False,
                 window: float = WINDOW_SECONDS) -> None:
        self.store = store
        self.send = send
        self.admins = admins
        self.window = window
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queued: list[Run] = []
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._done = False  # the thread has sent its last: later changes go at once

    def __call__(self, run: Run) -> None:
        with self._lock:
            if not self._done:  # (closed before any change: done, no thread)
                self._queued.append(run)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=_loop, args=(weakref.ref(self),), daemon=True,
                        name="flask-realtime-announcer")
                    self._thread.start()
                self._wake.notify()
                return
        self._send([run])

    def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """Send what is queued, end the thread (within ``wait`` seconds), and from then
        on send every change at once."""
        with self._lock:
            self._closing.set()
            self._wake.notify()
            thread = self._thread
            if thread is None:
                self._done = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def _take(self, timeout: float) -> list[Run] | None:
        """The queued changes once there are some (``[]`` after ``timeout`` seconds
        without any); None once closing with nothing queued, and from then on
        :meth:`__call__` sends itself."""
        with self._lock:
            if not self._queued and not self._closing.is_set():
                self._wake.wait(timeout)
            if not self._queued and self._closing.is_set():
                self._done = True
                return None
            taken, self._queued = self._queued, []
            return taken

    def _send(self, runs: Sequence[Run]) -> float:
        """Send ``runs``' changes; returns how long to gather the next ones (seconds)."""
        try:
            events = state_events(self.store, runs)
            reached = self.send(packets(events, [run.user for run in runs],
                                        admins=self.admins)) or 0
        except Exception:
            log.exception("could not announce the state of %d run(s)", len(runs))
            reached = 0
        return min(max(self.window, reached * SECONDS_PER_PACKET), MAX_WINDOW_SECONDS)


#: How long the thread waits for a change before it looks whether its announcer is
#: still referenced (an announcer never closed ends its thread once collected).
IDLE_CHECK_SECONDS = 1.0


def _loop(ref: weakref.ref[StateAnnouncer]) -> None:
    """The announcer's thread: take, send, then let ``window`` pass (changes meanwhile
    are gathered) before the next take."""
    while True:
        announcer = ref()
        if announcer is None:
            return
        runs = announcer._take(IDLE_CHECK_SECONDS)
        if runs is None:
            return
        if runs:
            announcer._closing.wait(announcer._send(runs))
        del announcer
