"""Delivery: one thread per web process that sends runs' new lines to their watchers.

Every watcher has a position (the last seq it was sent). Watchers that are caught up
share a Socket.IO room per run, so a batch is encoded once for all of them; a watcher
that is behind (it just asked to watch from an old seq, or its connection is slow)
is sent batches of its own from the log until it reaches the room's position, then
joins the room. Because this one thread does both, a watcher can never miss or repeat
a line between the two modes. A slow client costs at most ``max_client_queue``
queued packets: past that it is taken out of the room and catches up from the log
when it reads again, without slowing the job or anyone else.

A socket can close while its ``watch`` is still being handled, so the watch may reach
this thread after the socket's ``forget``: a watch for a socket that is no longer
connected is dropped, and a socket that goes away during a turn is dropped at once.
What fails for one run never costs the other runs their turn.

Every batch is emitted with ``ignore_queue=True``: straight to this process's own
sockets, never through the message queue (Redis) to the other web processes.
python-socketio documents that flag as right for a single process only, because an
emit that skips the queue reaches no socket of another process. It is right here with
any number of processes: each process's delivery thread reads every line from the
store and sends it to the sockets connected to that process, and its rooms
(``live:<run_id>``, web/rooms.py) only ever hold them. Through the queue, each batch
would cross Redis once per process and reach every watcher once per process.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_socketio import SocketIO

from ..core.output import OutputSlice
from ..core.ports import OutputLog
from .rooms import live_room
from .socketio_internals import backlog, is_connected

log = logging.getLogger(__name__)

NAMESPACE = "/"

#: How often a watcher held back by its own full connection is looked at again.
HELD_POLL_SECONDS = 0.015
#: Runs share this thread while two or more had lines to send within this long.
SHARED_SECONDS = 0.25
#: While runs share this thread, a destination (a run's live room, or a watcher
#: catching up) with more than this many lines to send is paced: at most one batch
#: every ``SHARED_BATCH_GAP_SECONDS``, of what the run printed since the last one plus
#: this many lines. It keeps up with the run, and catches up on what it is behind by
#: 50,000 lines/s, twice what a process job flooding beside other runs is read at
#: (core/capture/pump.py, ``SHARED_FLOOD_LINES_PER_DRAIN``). Unpaced, a watcher that
#: had fallen behind a process flood was caught up as fast as it read, and every line
#: of it was read, encoded and sent here, where the other runs' lines waited for the
#: GIL behind it: another run's p99 stayed at 10 ms (11x quiet) for as long as the
#: catching up took (docs/performance.md, "A flood's watcher caught up at a pace").
#: Never slower than the run prints, a pace cannot make a watcher lose lines to the
#: store's retention (``RETENTION_LINES``).
SHARED_BATCH_LINES = 250
SHARED_BATCH_GAP_SECONDS = 0.005
#: The live room's key in ``_RunWatchers.paces`` (no sid is empty).
LIVE = ""


def output_event(piece: OutputSlice, run_id: str) -> dict[str, Any]:
    """The Socket.IO ``output`` payload of ``piece`` (see docs/protocol.md); the HTTP
    output endpoint answers the same fields."""
    lines = [
        {"stream": s, "text": t} if e == "\n" else {"stream": s, "text": t, "end": e}
        for s, t, e in piece.lines
    ]
    event: dict[str, Any] = {"run_id": run_id, "first_seq": piece.first_seq, "lines": lines}
    if piece.skipped:
        event["skipped"] = piece.skipped
    if piece.times:
        event["times"] = [list(t) for t in piece.times]
    return event


@dataclass
class _RunWatchers:
    sent: int  # lines up to here went to the live room
    live: set[str] = field(default_factory=set)
    behind: dict[str, int] = field(default_factory=dict)  # sid -> last seq sent
    #: While runs share the thread: each paced destination's (LIVE, or a sid catching
    #: up) next batch time (monotonic) and the run's end at its last batch.
    paces: dict[str, tuple[float, int]] = field(default_factory=dict)


class Delivery:
    """Sends each run's new lines to the sockets of this process that watch it, from one
    thread (see the module's docstring).

    :meth:`watch`, :meth:`unwatch` and :meth:`forget` may be called from any thread: they
    queue a request for the delivery thread (started by the first one) and return at once. A
    batch holds at most ``max_batch_lines`` lines and ``max_batch_chars`` characters.

    Pacing: while two or more runs have had lines to send within ``SHARED_SECONDS``, a
    destination with more than ``shared_batch_lines`` lines to send gets at most one
    batch every ``shared_batch_gap`` seconds (0 turns pacing off), of what the run
    printed since its last one plus ``shared_batch_lines`` (within ``max_batch_lines``).
    Alone, or with less to send, nothing waits."""

    def __init__(
        self, socketio: SocketIO, store: OutputLog, *, max_batch_chars: int = 65_536,
        max_batch_lines: int = 2_000, max_client_queue: int = 32, batches_per_turn: int = 2,
        shared_batch_lines: int = SHARED_BATCH_LINES,
        shared_batch_gap: float = SHARED_BATCH_GAP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.socketio = socketio
        self.store = store
        self.max_batch_chars = max_batch_chars
        self.max_batch_lines = max_batch_lines
        self.max_client_queue = max_client_queue
        self.batches_per_turn = batches_per_turn
        self.shared_batch_lines = min(shared_batch_lines, max_batch_lines)
        self.shared_batch_gap = shared_batch_gap
        self.clock = clock  # for the pace (monotonic seconds)
        self._shared_until = 0.0  # runs share the thread until then (monotonic)
        self._sharing = False  # ... in this turn
        self._paced_wake: float | None = None  # a paced run's next batch is due then
        self._runs: dict[str, _RunWatchers] = {}
        self._requests: queue.SimpleQueue[tuple[str, str, str | None, int]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._held = False  # a watcher waits for its connection to drain: poll soon
        self._appended = False  # this turn took output_changed: go round again
        #: This turn's first batch of each run with live watchers, read in one call.
        self._prefetched: dict[tuple[str, int], OutputSlice] = {}
        self._start_lock = threading.Lock()
        #: Called after each batch is emitted, with its payload, the number of sockets
        #: it went to and whether it went to the live room (web/metrics.py sets it).
        self.on_sent: Callable[[dict[str, Any], int, bool], None] | None = None

    def watcher_count(self) -> int:
        """Sockets watching a run in this process, live or catching up (approximate:
        read without stopping the delivery thread)."""
        try:
            return sum(len(w.live) + len(w.behind) for w in list(self._runs.values()))
        except RuntimeError:  # a set changed size while counted: count again next time
            return 0

    # -- called from Socket.IO handler threads -----------------------------------------
    def watch(self, sid: str, run_id: str, after: int) -> None:
        """Send ``sid`` every line of ``run_id`` after seq ``after``, then each new one,
        until :meth:`unwatch` or :meth:`forget`. Does not check who may watch: the caller
        has."""
        self._request("watch", sid, run_id, after)

    def unwatch(self, sid: str, run_id: str) -> None:
        """Stop sending ``run_id``'s lines to ``sid``; nothing happens if it was not
        watching."""
        self._request("unwatch", sid, run_id, 0)

    def forget(self, sid: str) -> None:
        """``sid`` disconnected: stop sending it anything, for every run."""
        self._request("forget", sid, None, 0)

    def _request(self, op: str, sid: str, run_id: str | None, after: int) -> None:
        self._ensure_thread()
        self._requests.put((op, sid, run_id, after))
        self.store.output_changed.set()

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="flask-realtime-delivery", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Ask the delivery thread to end after its current turn; does not wait for it."""
        self._stopping = True
        self.store.output_changed.set()

    # -- the delivery thread ---------------------------------------------------------------
    def _loop(self) -> None:
        changed = self.store.output_changed
        while not self._stopping:
            changed.wait(self._idle_seconds())
            changed.clear()
            try:
                if self._turn():
                    changed.set()  # a turn was cut short for fairness: go round again
            except Exception:
                log.exception("output delivery failed; retrying")
                changed.set()
                threading.Event().wait(0.1)

    def _idle_seconds(self) -> float:
        """How long the thread may sleep after a turn if no output or request arrives.
        Nothing signals that a client's queue drained, so a held-back watcher is polled;
        a paced run is looked at again when its next batch is due."""
        timeout = HELD_POLL_SECONDS if self._held else 1.0
        if self._paced_wake is not None:
            timeout = max(0.0, min(timeout, self._paced_wake - self.clock()))
        return timeout

    def _turn(self) -> bool:
        """Apply watch requests, then send each run's share; True if some run has more
        (or output was appended since the turn began, see :meth:`_others_wrote`).

        The runs with the least to send go first (to any one destination: the live
        room, a watcher catching up), so that a quiet run's new line does not wait
        behind a flooding run's batches. A run with nothing to send (no new
        line, no watcher catching up) is not looked at: with 100 runs watched and one
        of them printing, a turn costs that one run's sockets, not every socket's
        backlog (tests/web/test_delivery_turns.py). The first batch of every run with
        new lines for its live room is read in one ``read_outputs`` call (on Redis, one
        round trip for them all rather than one or more per run); a paced run's is
        not (see the class's docstring): it is read when it is due, at its size.
        """
        self._apply_requests()
        self._held = False
        self._appended = False
        self._paced_wake = None
        more = False
        ends = self._ends(list(self._runs))
        failure: Exception | None = None
        due = [(run_id, watchers) for run_id, watchers in self._runs.items()
               if watchers.behind or ends[run_id] != watchers.sent]
        due.sort(key=lambda item: self._to_send(item[1], ends[item[0]]))
        now = self.clock()
        if len(due) > 1:
            self._shared_until = now + SHARED_SECONDS
        self._sharing = bool(self.shared_batch_gap) and now < self._shared_until
        self._prefetch([(run_id, watchers.sent) for run_id, watchers in due
                        if watchers.live and watchers.sent < ends[run_id]
                        and not self._paced(ends[run_id] - watchers.sent)])
        for run_id, watchers in due:
            try:
                more |= self._deliver(run_id, watchers, ends[run_id], ends)
            except Exception as exc:  # this run's turn failed: the others still get theirs
                failure = failure or exc
            if more and self._others_wrote(ends, run_id):
                break  # a new turn, which serves them first
        if failure is not None:
            raise failure
        return more or self._appended

    def _others_wrote(self, ends: dict[str, int], sending: str) -> bool:
        """Whether a run other than ``sending`` has new lines since ``ends`` (its end
        when the turn began): ``sending`` then yields after its current batch, so that
        a quiet run's line waits for at most one batch of a flood's.

        Looked at only once per append (``output_changed``; each look is one
        ``output_ends`` call, a round trip to Redis): the event is taken, and the turn
        is to go round again (``_appended``) so that what set it is delivered."""
        changed = self.store.output_changed
        if not changed.is_set():
            return False  # nothing appended since the last look
        changed.clear()
        self._appended = True
        others = [run_id for run_id in ends if run_id != sending]
        return any(now > ends[run_id] for run_id, now in self._ends(others).items())

    def _prefetch(self, reads: list[tuple[str, int]]) -> None:
        """Read the live-room batch after each ``(run_id, sent)`` at once, for
        :meth:`_batch` to take (what this turn does not take is dropped with it)."""
        self._prefetched = {}
        if not reads:
            return
        try:
            slices = self.store.read_outputs(
                reads, max_lines=self.max_batch_lines, max_chars=self.max_batch_chars)
        except Exception:  # each run then reads its own, and fails on its own
            log.debug("reading the turn's batches at once failed", exc_info=True)
            return
        self._prefetched = dict(zip(reads, slices, strict=True))

    @staticmethod
    def _to_send(watchers: _RunWatchers, end: int) -> int:
        """The most lines the run has to send to one destination: its live room, or
        the watcher of it that is furthest behind."""
        return max(end - watchers.sent,
                   max((watchers.sent - p for p in watchers.behind.values()), default=0))

    def _paced(self, remaining: int) -> bool:
        """Whether a destination with ``remaining`` lines to send is paced this turn."""
        return self._sharing and remaining > self.shared_batch_lines

    def _allowance(self, watchers: _RunWatchers, destination: str, remaining: int,
                   end: int) -> int:
        """How many lines the next batch to ``destination`` (LIVE or a sid) of a run
        whose output ends at ``end`` may hold, with ``remaining`` lines to send:
        ``max_batch_lines``; or, paced, 0 if its batch is not due yet (the thread then
        wakes when it is), else what the run printed since its last one plus
        ``shared_batch_lines``."""
        if not self._paced(remaining):
            watchers.paces.pop(destination, None)
            return self.max_batch_lines
        now = self.clock()
        due, last_end = watchers.paces.get(destination, (0.0, end))
        if now < due:
            self._paced_wake = due if self._paced_wake is None else min(self._paced_wake, due)
            return 0
        watchers.paces[destination] = (now + self.shared_batch_gap, end)
        return min(self.max_batch_lines, self.shared_batch_lines + max(0, end - last_end))

    def _ends(self, run_ids: list[str]) -> dict[str, int]:
        """The output end of each of ``run_ids``, asked of the store in one call
        (``output_ends``: one MGET on Redis, however many runs are watched)."""
        return dict(zip(run_ids, self.store.output_ends(run_ids), strict=True))

    def _apply_requests(self) -> None:
        while True:
            try:
                op, sid, run_id, after = self._requests.get_nowait()
            except queue.Empty:
                return
            if op == "forget":
                self._forget_now(sid)
            elif op == "unwatch" and run_id is not None:
                self._drop(sid, run_id)
            elif op == "watch" and run_id is not None:
                self._drop(sid, run_id)
                if not self._connected(sid):
                    # Closed while its watch was handled: its forget came first (the
                    # disconnect starts before the handler calls forget), so nothing
                    # would ever take it out again.
                    continue
                watchers = self._runs.get(run_id)
                if watchers is None:
                    watchers = self._runs[run_id] = _RunWatchers(sent=self.store.output_end(run_id))
                watchers.behind[sid] = max(after, 0)

    def _drop(self, sid: str, run_id: str) -> None:
        watchers = self._runs.get(run_id)
        if watchers is None:
            return
        if sid in watchers.live:
            watchers.live.discard(sid)
            self.socketio.server.leave_room(sid, live_room(run_id), namespace=NAMESPACE)
        watchers.behind.pop(sid, None)
        watchers.paces.pop(sid, None)
        if not watchers.live and not watchers.behind:
            del self._runs[run_id]

    def _deliver(self, run_id: str, watchers: _RunWatchers, end: int,
                 ends: dict[str, int] | None = None) -> bool:
        """Send what is new up to ``end``; True if there is more than one turn's share
        left, or if it yielded after a batch because another run of ``ends`` wrote."""
        more = False
        if watchers.live:
            for sid in [s for s in watchers.live if self._backlog(s) > self.max_client_queue]:
                watchers.live.discard(sid)  # slow: it catches up from the log later
                self.socketio.server.leave_room(sid, live_room(run_id), namespace=NAMESPACE)
                watchers.behind[sid] = watchers.sent
            turns = 0
            while watchers.sent < end and watchers.live:
                if turns == self.batches_per_turn or (
                        turns and ends is not None and self._others_wrote(ends, run_id)):
                    more = True
                    break
                limit = self._allowance(watchers, LIVE, end - watchers.sent, end)
                if not limit:
                    break  # paced: the thread wakes when its next batch is due
                payload, watchers.sent = self._batch(run_id, watchers.sent, limit=limit)
                if payload is None:
                    break
                # ignore_queue: this process's sockets only (see the module's docstring).
                self.socketio.emit("output", payload, to=live_room(run_id), namespace=NAMESPACE,
                                   ignore_queue=True)
                if self.on_sent is not None:
                    self.on_sent(payload, len(watchers.live), True)
                turns += 1
        if not watchers.live:
            watchers.sent = end  # nobody is in the room: nothing to send it
        for sid, position in list(watchers.behind.items()):
            turns = 0
            while position < watchers.sent:
                if turns == self.batches_per_turn or (
                        turns and ends is not None and self._others_wrote(ends, run_id)):
                    more = True
                    break
                if self._backlog(sid) > self.max_client_queue:
                    self._held = True
                    break
                limit = self._allowance(watchers, sid, watchers.sent - position, end)
                if not limit:
                    break  # paced: the thread wakes when its next batch is due
                payload, position = self._batch(run_id, position, upto=watchers.sent,
                                                limit=limit)
                if payload is None:
                    position = watchers.sent
                    break
                self.socketio.emit("output", payload, to=sid, namespace=NAMESPACE,
                                   ignore_queue=True)  # a socket of this process
                if self.on_sent is not None:
                    self.on_sent(payload, 1, False)
                turns += 1
            if position >= watchers.sent:
                del watchers.behind[sid]
                watchers.paces.pop(sid, None)
                if self._join(sid, run_id):
                    watchers.live.add(sid)
                else:
                    self._forget_now(sid)
            else:
                watchers.behind[sid] = position
        return more

    def _connected(self, sid: str) -> bool:
        """Whether ``sid`` is connected: python-socketio says no from the moment its
        disconnect begins, before the disconnect handler calls :meth:`forget`."""
        return is_connected(self.socketio.server, sid, NAMESPACE)

    def _join(self, sid: str, run_id: str) -> bool:
        """Put a caught-up watcher in the run's room; False if its socket is gone."""
        if not self._connected(sid):
            return False
        try:
            self.socketio.server.enter_room(sid, live_room(run_id), namespace=NAMESPACE)
        except (KeyError, ValueError):  # it went away since the line above
            return False
        return True

    def _forget_now(self, sid: str) -> None:
        """Drop a socket found gone from every run (its forget request may follow)."""
        for rid in list(self._runs):
            self._drop(sid, rid)

    def _batch(self, run_id: str, after: int, upto: int | None = None,
               limit: int | None = None) -> tuple[dict[str, Any] | None, int]:
        limit = self.max_batch_lines if limit is None else limit
        piece = self._prefetched.pop((run_id, after), None) if upto is None else None
        if piece is None or len(piece.lines) > limit:
            limit = limit if upto is None else min(limit, upto - after)
            piece = self.store.read_output(
                run_id, after, max_lines=limit, max_chars=self.max_batch_chars)
        if not piece.lines:
            return None, after
        return output_event(piece, run_id), piece.last_seq

    def _backlog(self, sid: str) -> int:
        """Packets waiting to be written to this client's connection."""
        return backlog(self.socketio.server, sid, NAMESPACE)
