"""The pump: one thread per process that turns the runs' buffers into stored lines.

Contract: :meth:`CapturePump.open` gives a run its :class:`~.buffer.RunCapture` (and
installs the hooks); from then on what the run's threads write reaches the sink as
lines, in order, at most ``FLUSH_WINDOW_SECONDS`` after it was written while the store
is available. :meth:`CapturePump.close` stores the rest, partial lines included, before
it returns. While the store is unavailable the pump keeps each run's lines (bounded:
the oldest are dropped and counted, and a system line says how many) and tries again
every ``RETRY_SECONDS``; every batch is numbered (``writer``, ``offset``) so that one
sent again after a lost reply is not stored twice. That bookkeeping is the pump's and
lives in :class:`_Outbox`, one per open run; the buffer only collects writes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from ..output import DEFAULT_MAX_LINE_CHARS, DEFAULT_PARTIAL_FLUSH_SECONDS, SYSTEM, Line
from ..ports import OutputBatch, StoreUnavailableError
from .buffer import RunCapture
from .context import _set_capture
from .hooks import install


class LineSink(Protocol):
    """Where assembled lines go: the store's :meth:`~..ports.OutputLog.append_output`.

    ``writer`` and ``offset`` number the lines so that a batch sent again after a lost
    reply is not stored twice.
    """

    def __call__(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                 writer: str | None = None, offset: int = 0) -> object: ...


class BatchesSink(Protocol):
    """Where a round's lines of several runs go at once: the store's
    :meth:`~..ports.OutputLog.append_outputs` (one write for them all)."""

    def __call__(self, batches: list[OutputBatch], epoch_ms: int) -> object: ...


#: Upper bound on how long a captured line waits for the pump while its run is open.
FLUSH_WINDOW_SECONDS = 0.02
#: While the store is unavailable, how often storing is tried again.
RETRY_SECONDS = 0.5
#: Lines per run kept while the store is unavailable; older ones are dropped and counted.
DEFAULT_MAX_UNSENT = 100_000

#: A drain of at least this many lines means the pipeline is busy: the pump then
#: coalesces, draining every ``interval`` instead of at each first write. Below it a
#: line printed leaves at once (at 1,000 lines/s a drain holds a line or two).
BUSY_LINES_PER_DRAIN = 100
#: So many runs writing within one batch interval make the pipeline busy too, however
#: few lines each wrote. Drained as they write, each run's line or two is a store write
#: and a delivery turn of its own: 100 runs printing 20 lines/s were 2,000 of each a
#: second (docs/performance.md, "Sockets per process"). Busy, the pump drains every
#: ``interval`` and stores the round's lines of all runs in one write (``batches``).
#: One run (or three) printing is never held back by it.
BUSY_RUNS_PER_INTERVAL = 4
#: The shortest time between two drains while the pipeline is idle. Each batch costs the
#: store, the delivery thread and every watcher's socket a turn (about 0.3 ms of CPU in
#: all on the bench machine), so a run printing thousands of lines a second makes at
#: most 2,000 batches a second rather than one per line; at 1,000 lines/s no line waits
#: for it. (At 5,000 lines/s, a 1 ms gap halved the server's CPU, 60% of a core to 30%.)
MIN_DRAIN_GAP_SECONDS = 0.0005
#: A run that wrote at least this many lines between two drains floods (at the 10 ms
#: batch interval, 100,000 lines/s). Alone in the process, a flooding run's stdout
#: writes take the buffer's fast path (no Python call, no wake-up).
FLOOD_LINES_PER_DRAIN = 1000
#: While a process run floods beside other runs, how many lines its reader may write
#: per drain cycle (``RunCapture.intake``; a round every 10 ms: 25,000-30,000 lines/s,
#: in reads sized to the slice). This process does every per-line step of a process
#: run's output (assemble, store, deliver, encode), and other runs' lines wait for the
#: GIL behind it: at the flood's threshold (1,000 lines, read 64 KiB at a time, so
#: 1,000-2,000 a round) it handled 90,000-125,000 of a shared flood's lines a second
#: (docs/performance.md, "Process isolation").
SHARED_FLOOD_LINES_PER_DRAIN = 250
#: The same bound for a thread run (``RunCapture.hold_after``), in characters of stdout:
#: the slice's 250 lines of 64 characters. Without it a thread run's printing went on
#: between the pump's drains for as long as they took, and while it flooded beside
#: another run that run's lines took 65-611 ms (p99; bench/flood.py, docs/reliability.md).
SHARED_FLOOD_CHARS_PER_DRAIN = SHARED_FLOOD_LINES_PER_DRAIN * 64
#: Otherwise (alone, or not flooding) how many lines a process run's reader may write
#: per drain cycle: at most 1,000,000 lines/s, above what the pump stores, and far
#: above what a run that does not flood writes. Unbounded, the rounds grew with a
#: flood: a round that took longer found more lines, up to 60,000-95,000 lines and
#: 30-65 ms of assembling alone, and a run started beside the flood waited behind
#: such rounds (docs/performance.md, "Process isolation").
FLOOD_ALONE_LINES_PER_DRAIN = 10_000
#: The same for a thread run flooding alone faster than the pump stores it
#: (``RunCapture.hold_after``): unbounded, its round held what it printed while the one
#: before was stored, and grew (a run that opened beside it waited 100-450 ms behind
#: such a round, and RSS grew by 80-100 MiB: bench/flood.py). Only once it has outrun
#: the pump, a round of more than ``FLOOD_OVERRUN_LINES``, and for as long as its
#: printing is held at the bound; otherwise it prints on the fast path, with no check at
#: all (a flood the pump keeps up with makes rounds of 10,000-20,000 lines).
FLOOD_ALONE_CHARS_PER_DRAIN = FLOOD_ALONE_LINES_PER_DRAIN * 64
FLOOD_OVERRUN_LINES = 4 * FLOOD_ALONE_LINES_PER_DRAIN
#: How long a flooding run's printing thread pauses once per drain cycle while other
#: runs share the process (0 turns it off). Without it a run printing as fast as it can
#: kept the GIL busy enough to triple another run's p99 latency (bench/flood.py).
DEFAULT_GIVE_WAY_SECONDS = 0.005

log = logging.getLogger(__name__)


class OutputBudget:
    """A run's output limit (``JOB_OUTPUT_BYTES``, a job's ``output_bytes``), counted by
    the pump as it stores: the UTF-8 bytes of each line and its end, system lines
    not counted. The first line past it is dropped with all that follow, and
    ``on_over`` is called once (from the pump's thread; it must be quick)."""

    __slots__ = ("left", "limit", "on_over", "over")

    def __init__(self, limit: int, on_over: Callable[[], object]) -> None:
        self.limit = limit
        self.left = limit
        self.on_over = on_over
        self.over = False

    def take(self, lines: list[Line]) -> list[Line]:
        """The lines of ``lines`` within the limit (and every system line)."""
        if self.over:
            return [line for line in lines if line[0] == SYSTEM]
        kept: list[Line] = []
        for line in lines:
            if line[0] != SYSTEM and not self.over:
                size = len(line[1].encode("utf-8", "replace")) + len(line[2])
                if size > self.left:
                    self.over = True
                    self.on_over()
                else:
                    self.left -= size
                    kept.append(line)
            elif line[0] == SYSTEM:
                kept.append(line)
        return kept


class _Outbox:
    """The pump's record of one open run: its buffer, whether it floods, and the lines
    the store has not taken yet.

    ``writer`` is this run's name as a writer to the store and ``given`` the number of
    its next line to give (the first of ``unsent``): a batch the store refused may have
    been stored all the same, its reply lost, and sent again under the same numbers it
    is skipped. ``lost`` counts the lines dropped to keep ``unsent`` within the bound.
    ``lock`` makes the pump's thread and :meth:`CapturePump.close` deliver one at a time.
    """

    __slots__ = ("budget", "capture", "closed", "flooding", "given", "lock", "lost",
                 "retry_at", "round_lines", "unsent", "unsent_since", "writer", "wrote_at")

    def __init__(self, capture: RunCapture) -> None:
        self.capture = capture
        self.lock = threading.Lock()
        self.closed = False
        self.flooding = False
        self.round_lines = 0  # lines drained since the pump's last round
        self.wrote_at = float("-inf")  # (monotonic) the last drain that found lines
        # Lines the store refused (it was unavailable), oldest first, and how many of
        # them had to be dropped to stay within the bound.
        self.unsent: list[Line] = []
        self.lost = 0
        self.writer = uuid.uuid4().hex
        self.given = 0
        self.retry_at = 0.0  # no try before this (monotonic) time while lines are unsent
        self.unsent_since = 0.0  # when the store first refused, for one warning per outage
        self.budget: OutputBudget | None = None  # set by CapturePump.limit_output

    def keep_unsent(self, lines: list[Line], bound: int) -> None:
        """Keep ``lines`` for the next try, dropping (and counting) the oldest beyond
        ``bound``; a dropped line's number is given up, so it is never sent."""
        self.unsent.extend(lines)
        excess = len(self.unsent) - bound
        if excess > 0:
            del self.unsent[:excess]
            self.lost += excess
            self.given += excess


class _Pending:
    """One run's batch taken from its outbox, not stored yet: ``lines`` (kept again if
    the store refuses them), ``batch`` (``lines`` after the note of lost ones, if any)
    and the number ``offset`` of its first line."""

    __slots__ = ("batch", "lines", "offset", "outbox")

    def __init__(self, outbox: _Outbox, lines: list[Line], batch: list[Line],
                 offset: int) -> None:
        self.outbox, self.lines, self.batch, self.offset = outbox, lines, batch, offset


class CapturePump:
    """One thread per process that turns captured writes into stored lines.

    Batching, as Nagle's algorithm does it: while the pipeline is idle (the last drain
    held fewer than ``BUSY_LINES_PER_DRAIN`` lines, and fewer than
    ``BUSY_RUNS_PER_INTERVAL`` runs wrote within the last ``interval``), a run's first
    write wakes the pump and its lines are stored at once, with no flush window; under
    load the pump drains every ``interval`` seconds, so that each batch is large and
    the store and the sockets see few, big appends. With ``batches`` (the store's
    ``append_outputs``), the lines a round found in several runs are stored with one
    call (one transaction), not one per run; if that call fails, each run's batch is
    sent on its own, so that one run's trouble is never another's.

    Fairness: runs share the process's GIL. A run that wrote ``FLOOD_LINES_PER_DRAIN``
    lines or more since the last round is flooding; while other runs are open:

    * its printing thread pauses ``give_way`` seconds once per drain cycle (a thread
      run's); a process run's reader writes at most ``SHARED_FLOOD_LINES_PER_DRAIN``
      lines per drain cycle (``RunCapture.intake``) and then waits for the next drain, the
      child held back by its full pipe meanwhile, so this process handles one slice
      of the flood per cycle (``give_way`` 0 turns both off);
    * the other runs are drained first in each round, and between rounds as soon as
      they write, without waiting for the flood's batch interval.

    A flood alone in the process is not slowed. A process run's reader writes at most
    ``FLOOD_ALONE_LINES_PER_DRAIN`` lines per drain cycle then (and from the start,
    before any round has seen how much it writes): more than the pump stores, so it
    only keeps each round short, and a run that opens waits behind one such round.
    """

    def __init__(
        self, sink: LineSink, *, interval: float = 0.01,
        partial_delay: float = DEFAULT_PARTIAL_FLUSH_SECONDS,
        max_line_chars: int = DEFAULT_MAX_LINE_CHARS, max_unsent: int = DEFAULT_MAX_UNSENT,
        give_way: float = DEFAULT_GIVE_WAY_SECONDS, batches: BatchesSink | None = None,
    ) -> None:
        self.sink = sink
        self.batches = batches
        self.give_way = give_way
        #: Called with True when a run starts flooding while others share the process,
        #: and with False when that ends (the web tier shortens the GIL switch interval).
        self.on_contention: Callable[[bool], object] | None = None
        self._contended = False
        self.max_unsent = max_unsent
        self.interval = interval
        self.partial_delay = partial_delay
        self.max_line_chars = max_line_chars
        # Keyed by the buffer itself, not the run id: each open buffer has its own
        # numbering as a writer, whatever run it belongs to.
        self._outboxes: dict[RunCapture, _Outbox] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._ending = threading.Event()  # set by shutdown: the thread's loop ends

    def open(self, run_id: str) -> RunCapture:
        """A new buffer for ``run_id``, drained by the pump until :meth:`close`.

        Installs the hooks (see :func:`~.hooks.install`) and starts the pump's thread on
        first use. The caller attaches the run's threads with :meth:`attach`.
        """
        install()
        capture = RunCapture(run_id, self._wake.set, self.max_line_chars)
        capture.intake = self._intake(contended=False)
        with self._lock:
            floods = [o.capture for o in self._outboxes.values() if o.flooding]
            self._outboxes[capture] = _Outbox(capture)
            if self._thread is None:
                self._ending = threading.Event()
                self._thread = threading.Thread(target=self._loop, args=(self._ending,),
                                                name="flask-realtime-capture", daemon=True)
                self._thread.start()
        for flood in floods:
            self._share(flood)
        return capture

    def _share(self, flood: RunCapture) -> None:
        """A run that floods alone is now beside another (one just opened): it is
        bounded from now on, as the pump's next round would have it (:meth:`_note`),
        not from the round after. A thread run flooding alone prints through the fast
        path with no bound, and a round holds what it printed while the last one was
        stored: the other run's first lines waited behind that round and the next."""
        if self.give_way:
            self._bound(flood, floods=True, shared=True)

    def shutdown(self, wait: float = 5.0) -> None:
        """End the pump's thread, after one last drain of every open run.

        Runs still open keep their buffers: :meth:`close` stores each one's rest when it
        ends, and an :meth:`open` after this starts a new thread. Waits up to ``wait``
        seconds for the thread (a store that hangs holds it in a delivery).
        """
        with self._lock:
            thread, self._thread = self._thread, None
            self._ending.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)
        with self._lock:  # no drain to wait for any more: nobody is held back
            for outbox in self._outboxes.values():
                outbox.capture.intake, outbox.capture.give_way = 0, 0.0
                outbox.capture.hold_after(0)

    def close(self, capture: RunCapture, wait: float = 120.0) -> bool:
        """Store everything the run wrote, partial lines included; then forget it.

        If the store is unavailable, keeps trying for ``wait`` seconds (the run is not
        seen to end before its output is stored); False if lines were still unsent.
        """
        with self._lock:
            # Closed already: what was written since is stored under a new writer name.
            outbox = self._outboxes.pop(capture, None) or _Outbox(capture)
        outbox.closed = True
        capture.hold_after(0)  # no round drains it any more: nobody waits for one
        deadline = time.monotonic() + wait
        with outbox.lock:
            self._deliver(outbox, time.monotonic(), force=True)
            while outbox.unsent and time.monotonic() < deadline:
                time.sleep(RETRY_SECONDS)
                self._deliver(outbox, time.monotonic(), force=True)
        return not outbox.unsent

    def limit_output(self, capture: RunCapture, limit: int,
                     on_over: Callable[[], object]) -> None:
        """Store at most ``limit`` bytes of ``capture``'s output (see
        :class:`OutputBudget`); ``on_over`` is called once when it is passed."""
        with self._lock:
            outbox = self._outboxes.get(capture)
        if outbox is not None:
            outbox.budget = OutputBudget(limit, on_over)

    def attach(self, capture: RunCapture) -> RunCapture | None:
        """Make the calling thread part of ``capture``'s run; returns what it was before."""
        return _set_capture(capture)

    def detach(self, previous: RunCapture | None = None) -> None:
        """Put the calling thread back in ``previous`` (what :meth:`attach` returned)."""
        _set_capture(previous)

    def _deliver(self, outbox: _Outbox, now: float, force: bool = False) -> int:
        """Drain and store; lines the store refuses wait (bounded) for the next try.
        Returns how many lines the run wrote since the last drain."""
        written, pending = self._take(outbox, now, force)
        if pending is not None:
            self._store(pending, now)
        return written

    def _take(self, outbox: _Outbox, now: float, force: bool = False,
              ) -> tuple[int, _Pending | None]:
        """Drain ``outbox`` (under its lock): how many lines the run wrote since the
        last drain, and the batch to store now (None: nothing, or not yet time to try
        the store again)."""
        capture = outbox.capture
        lines = capture.drain(now, self.partial_delay, force=force)
        written = len(lines)
        if written:
            outbox.wrote_at = now
        if outbox.budget is not None:
            lines = outbox.budget.take(lines)
        if outbox.unsent:
            if now < outbox.retry_at and not force:
                outbox.keep_unsent(lines, self.max_unsent)
                return written, None
            lines = outbox.unsent + lines
            outbox.unsent = []
        if not lines:
            return written, None
        batch, offset = lines, outbox.given
        if outbox.lost:
            # The lost lines came before every kept one: say so first. The note takes
            # the number of the last lost line, so the store skips it as well if an
            # attempt whose reply was lost had stored that line after all.
            batch = [(SYSTEM, f"[flask-realtime: {outbox.lost} lines were lost while "
                              "the output store was unavailable]", "\n"), *lines]
            offset -= 1
        return written, _Pending(outbox, lines, batch, offset)

    def _store(self, pending: _Pending, now: float) -> None:
        """Store one run's batch (under its outbox's lock)."""
        outbox = pending.outbox
        try:
            self.sink(outbox.capture.run_id, pending.batch, int(time.time() * 1000),
                      writer=outbox.writer, offset=pending.offset)
        except Exception as exc:
            self._refused(pending, exc, now)
        else:
            self._stored(pending)

    def _store_all(self, pendings: list[_Pending], now: float) -> None:
        """Store a round's batches (under their outboxes' locks): the quiet runs' with
        one call of ``batches`` when there are several, then each flooding run's on its
        own (a quiet run's line is not committed with a flood's many)."""
        quiet = [p for p in pendings if not p.outbox.flooding]
        if len(quiet) >= 2 and self.batches is not None:
            try:
                self.batches([(p.outbox.capture.run_id, p.batch, p.outbox.writer, p.offset)
                              for p in quiet], int(time.time() * 1000))
            except Exception as exc:  # each on its own below: what the failed call
                # stored is skipped by its numbers, and a run the store refuses keeps its
                # lines without holding back the others
                if not isinstance(exc, StoreUnavailableError):  # not an outage: a bug
                    log.exception("storing %d runs' lines in one call failed; storing "
                                  "each run's on its own", len(quiet))
            else:
                for pending in quiet:
                    self._stored(pending)
                pendings = [p for p in pendings if p.outbox.flooding]
        for pending in pendings:
            self._store(pending, now)

    def _refused(self, pending: _Pending, exc: Exception, now: float) -> None:
        outbox = pending.outbox
        if not outbox.unsent_since:
            log.warning("could not store output of run %s (%s): keeping up to %d "
                        "lines until the store is back", outbox.capture.run_id, exc,
                        self.max_unsent)
            outbox.unsent_since = now
        outbox.retry_at = now + RETRY_SECONDS
        outbox.keep_unsent(pending.lines, self.max_unsent)  # the count of lost ones grows

    @staticmethod
    def _stored(pending: _Pending) -> None:
        outbox = pending.outbox
        outbox.given = pending.offset + len(pending.batch)
        if outbox.unsent_since:
            log.info("output of run %s stored again", outbox.capture.run_id)
        outbox.unsent_since = 0.0
        outbox.lost = 0

    def _loop(self, ending: threading.Event) -> None:
        last = 0.0
        busy = False  # the last round found a run busy: coalesce
        while True:
            finishing = ending.is_set()  # read first: the round below still drains
            if not finishing:
                served = False
                if busy:
                    # Under load, as Nagle's algorithm does it: while a batch is made and
                    # stored the next one gathers, and drains come at most every
                    # ``interval``. A quiet pipeline never waits here; while a run
                    # floods, quiet runs are served meanwhile (:meth:`_serve_quiet`).
                    served = self._serve_quiet(last + self.interval, ending)
                with self._lock:
                    outboxes = list(self._outboxes.values())
                if not served and not any(o.capture.fast for o in outboxes):
                    # The first write wakes the pump (a run on its fast path wakes
                    # nobody: it is drained every ``interval``). The writer's lock-free
                    # "wake if it was empty" can lose a wake-up against a drain in
                    # progress, so open runs are also drained on a timer
                    # (FLUSH_WINDOW_SECONDS: the longest a line waits).
                    self._wake.wait(min(self.partial_delay, FLUSH_WINDOW_SECONDS)
                                    if outboxes else 1.0)
                    gap = MIN_DRAIN_GAP_SECONDS - (time.monotonic() - last)
                    if gap > 0:  # a bounded number of batches, however a run prints
                        time.sleep(gap)
            with self._lock:
                outboxes = list(self._outboxes.values())
            self._wake.clear()
            now = time.monotonic()
            last = now
            shared = len(outboxes) > 1
            busy = False
            # Quiet runs first: their few lines are not stored after a flood's many. Each
            # outbox's lock is held from its drain until its batch is stored (a close
            # meanwhile must not store the rest of its run first).
            pendings: list[_Pending] = []
            held: list[_Outbox] = []
            try:
                for outbox in sorted(outboxes, key=lambda o: o.flooding):
                    outbox.lock.acquire()
                    held.append(outbox)
                    if not outbox.closed:
                        written, pending = self._take(outbox, now)
                        busy |= written >= BUSY_LINES_PER_DRAIN
                        self._note(outbox, written, shared)
                        if pending is not None:
                            pendings.append(pending)
                self._store_all(pendings, now)
            finally:
                for outbox in held:
                    outbox.lock.release()
            busy |= sum(now - o.wrote_at < self.interval
                        for o in outboxes) >= BUSY_RUNS_PER_INTERVAL
            contended = shared and any(o.flooding for o in outboxes)
            if contended != self._contended:
                self._contended = contended
                if self.on_contention is not None:
                    self.on_contention(contended)
            if finishing:
                return

    def _note(self, outbox: _Outbox, written: int, shared: bool, round_: bool = True) -> None:
        """After a drain of ``outbox`` that found ``written`` lines: whether it floods,
        and so its pause (``give_way``), its reader's bound (``intake``) and its fast
        path. It floods when it wrote ``FLOOD_LINES_PER_DRAIN`` lines since the last
        round (``round_``: this drain is a round's; the drains between rounds only ever
        find a run flooding), or while its reader is held at its bound: held, it
        writes about that many per round, and the bound must not come and go."""
        capture = outbox.capture
        outbox.round_lines += written
        held = capture.take_held()
        floods = held or outbox.round_lines >= FLOOD_LINES_PER_DRAIN
        # Alone, a flood the pump does not keep up with (a round of more than
        # FLOOD_OVERRUN_LINES, or held at its bound since the last round) is bounded too.
        overrun = floods and not shared and bool(self.give_way) and (
            held or outbox.round_lines > FLOOD_OVERRUN_LINES)
        if round_:
            outbox.round_lines = 0
        elif not floods:
            return
        outbox.flooding = floods
        self._bound(capture, floods=floods, shared=shared, overrun=overrun)

    def _bound(self, capture: RunCapture, *, floods: bool, shared: bool,
               overrun: bool = False) -> None:
        """Set a run's pause (``give_way``), its reader's bound (``intake``), its
        printing's bound (``hold_after``) and its fast path for what it is now: flooding
        or not, beside other runs or alone, and alone, outrunning the pump or not."""
        contended = shared and floods
        capture.give_way = self.give_way if contended else 0.0
        capture.intake = self._intake(contended)
        capture.hold_after(SHARED_FLOOD_CHARS_PER_DRAIN if contended and self.give_way
                           else FLOOD_ALONE_CHARS_PER_DRAIN if overrun else 0)
        fast = floods and not shared and not overrun  # alone: nobody to give way to
        if capture.fast != fast:
            capture.set_fast(fast)
            if not fast and capture.pending():  # written since, no wake-up
                self._wake.set()

    def _intake(self, contended: bool) -> int:
        """A process run's reader bound (``RunCapture.intake``): one small slice while
        it floods beside others, a large one otherwise; none with ``give_way`` 0."""
        if not self.give_way:
            return 0
        return SHARED_FLOOD_LINES_PER_DRAIN if contended else FLOOD_ALONE_LINES_PER_DRAIN

    def _serve_quiet(self, until: float, ending: threading.Event) -> bool:
        """Wait until ``until`` (monotonic) for the next round; while some run floods,
        drain and store the other runs as soon as they write meanwhile, so that their
        lines never wait for a flood's batch interval. True if a wake-up was used up
        (the round is not to wait for one)."""
        served = False
        while not ending.is_set():
            pause = until - time.monotonic()
            if pause <= 0:
                break
            with self._lock:
                outboxes = list(self._outboxes.values())
            if not any(o.flooding for o in outboxes):  # busy, nobody floods: coalesce
                time.sleep(pause)
                break
            if not self._wake.wait(pause):
                break
            self._wake.clear()
            served = True
            now = time.monotonic()
            shared = len(outboxes) > 1
            for outbox in outboxes:
                if outbox.flooding:
                    continue  # its turn comes at ``until``
                with outbox.lock:
                    if not outbox.closed:
                        self._note(outbox, self._deliver(outbox, now), shared, round_=False)
            time.sleep(MIN_DRAIN_GAP_SECONDS)  # a bounded number of batches
        return served
