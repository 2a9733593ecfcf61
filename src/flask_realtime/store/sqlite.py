"""The SQLite store: runs, output, sessions and tokens in one file of the instance folder.

The default store (``flask-realtime run``): nothing to install, and everything survives a
restart. One server process owns a database at a time (:class:`InstanceLock`); several
processes share a Redis store instead (docs/scale-out.md).

Layout (schema version in ``PRAGMA user_version``, upgraded by :data:`MIGRATIONS`):

* ``runs``: one row per run, numbered ``n`` in creation order (the history's order), with
  ``state`` beside the JSON record so that a move is one compare-and-set ``UPDATE``.
* ``chunks``: output in rows addressed by ``(run_id, last_seq)``, as the Redis store's
  stream entries are: whole chunks of :data:`CHUNK_LINES` lines, then the run's open
  chunk as small rows, one per append (only the new lines are written). When the open
  chunk fills, its rows become one whole chunk, built from memory; so a run that prints
  a line at a time has about one row per 1,000 lines, and each line is encoded about
  twice. A read after seq N starts at the first chunk whose ``last_seq`` > N and decodes
  only the chunks it returns; the open chunk is kept in memory (:class:`_Tail`, as
  committed), so a watcher that is caught up reads without touching the database or
  waiting for a write in progress (issue 15: latency at 1,000 lines/s).
* ``outputs``: per run, the last seq, the first seq still stored, and the stored bytes
  (the byte budgets drop whole chunks, oldest first). ``writers`` counts the lines each
  writer has given (see :meth:`~..core.ports.OutputLog.append_output`).
* ``requests`` (start idempotency), ``stops``, ``sessions`` (with expiry),
  ``tokens`` (encrypted blobs), ``shares`` (read-only links: the tokens' hashes only;
  migration 2), ``preferences`` (each user's notification preferences as JSON).
* ``inputs`` and ``inputs_closed``: each run's unread standard input (docs/jobs.md, "Input").
* ``schedules``: one row per schedule, its JSON record beside ``user``,
  ``version`` (saves are compare-and-set on it) and ``wake_at`` (indexed: the scheduler
  asks for the due ones). Fire claims are kept in memory: one process owns the database.
* ``audit``: the audit trail, numbered by ``AUTOINCREMENT`` so that a number is never
  used twice.
* ``blobs``: a run's uploads and artifacts, in parts of :data:`BLOB_PART_BYTES`,
  ``size`` the whole file's on each part.

Every ``append_output`` call is one transaction (never one per line), and so is every
``append_outputs`` call, whatever number of runs it holds (the capture pump's round of
many runs is one commit, not one per run): the capture pump stores at least every flush
window, so a ``kill -9`` loses nothing older than that, and
nothing a watcher has received (delivery reads what is committed). WAL mode with
``synchronous=NORMAL``: a commit survives the process being killed; a power cut may lose
the last commits, never the database.

Checkpoints (folding the WAL back into the database, with an fsync) are off the commit
path: SQLite's automatic one ran inside whichever commit crossed 1,000 WAL pages, under
the store's lock, about three times a second for a run printing 1,000 lines/s, and set
the p99 latency of every run's lines (docs/performance.md, "Checkpoints off the commit
path"). Here the main connection has ``wal_autocheckpoint=0`` and
:class:`Checkpointer` runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its
own, in its own thread, without making writers wait, except every two seconds for the
few milliseconds that let the WAL start over (:class:`CheckpointPolicy` says when).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import operator
import os
import sqlite3
import threading
import time
import weakref
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..core.output import SYSTEM, Line, OutputSlice, take_fitting
from ..core.ports import (
    DEFAULT_MAX_QUEUED_INPUT,
    DEFAULT_RETENTION_LINES,
    ActiveLimitError,
    InputOutcome,
    OutputBatch,
    RunStore,
    ScheduleStore,
    StoreClosedError,
    StoreUnavailableError,
    create_each,
)
from ..core.runs import Run, RunState
from ..core.schedules import Schedule
from .memory import audit_bound, times_for

log = logging.getLogger(__name__)

#: The database file's name in the instance folder.
DATABASE_NAME = "flask-realtime.sqlite3"
#: The lock file's name: held by the one server process using the instance folder.
LOCK_NAME = "flask-realtime.lock"
#: Lines per chunk row.
CHUNK_LINES = 1000
#: Default byte budget of one run's stored output (RETENTION_BYTES).
DEFAULT_RETENTION_BYTES = 1 << 30
#: What an interrupted run's error says after a restart.
INTERRUPTED = "The server stopped while this run was going."
#: Rows are stored zlib-compressed (level 1) from this many encoded bytes: log lines
#: shrink 10 to 30 times (1 page instead of 15 for 1,000 lines of 60 characters). The
#: small rows of an open chunk (a few lines each) mostly stay plain JSON.
COMPRESS_FROM_BYTES = 512
COMPRESS_LEVEL = 1
#: Decoded whole chunks kept in memory (by characters of text), newest used first: a
#: chunk of a run that is being read is cached as it is written, so a watcher a little
#: behind never decodes (a run nobody reads caches nothing while it prints). About
#: 3 MB for lines of 60 characters (issue 21: RSS after a flood); a chunk missed costs
#: about 0.15 ms to decode (docs/performance.md).
CACHE_CHARS = 1_000_000
#: Open chunks kept in memory (by characters of text, all runs), least recently used
#: dropped first (read from the database again when next needed): appends to them
#: and live reads of them touch no stored row. A run's goes when it finishes.
TAIL_CHARS = 8_000_000
#: Open chunks of runs finished in this process kept for reads (a replay reads the same
#: run's ending for every batch), apart from TAIL_CHARS: a read must not bring back
#: every finished run's last lines (issue 21: memory across 100 finished runs).
FINISHED_TAILS = 4

#: The line a run's watchers see while its output cannot be written (a full disk, an I/O
#: error). It takes the next seq at once, and is stored first when writing works again.
NOT_STORED = ("[flask-realtime: the output cannot be stored right now ({reason}); the run "
              "goes on and its output waits in memory until it can be written]")
#: After a write failed for lack of space, at most one checkpoint a second: folding the
#: WAL back in and truncating it may be what frees the space.
CHECKPOINT_AFTER_FULL_SECONDS = 1.0

#: Packings of a chunk row's payload: a JSON array of ``[stream, text, end]`` (0; 1
#: compressed), or (2; 3 compressed, from schema version 3) a JSON header then the texts
#: joined by newlines, which decodes about ten times faster (a split and a ``zip``, no
#: object per field: issue 15's replay). The JSON array is kept for lines whose text
#: holds a newline, and still read from older rows.
_JSON, _ZLIB, _TEXTS, _TEXTS_ZLIB = 0, 1, 2, 3
_STREAM, _TEXT, _END = (operator.itemgetter(i) for i in range(3))
ACTIVE = (RunState.QUEUED.value, RunState.RUNNING.value, RunState.STOPPING.value)
FINISHED = tuple(s.value for s in RunState if s.finished)

#: A checkpoint at most this often while writes come in (:class:`CheckpointPolicy`).
CHECKPOINT_SECONDS = 0.5
#: While a run floods (an append of FLOOD_APPEND_LINES lines or more in the last
#: FLOOD_WINDOW_SECONDS), checkpoints are this far apart instead: the flood's own writes
#: go first, and the WAL grows meanwhile (by about 2 bytes per byte of text printed;
#: ``journal_size_limit`` shrinks its file back to 64 MB after a checkpoint).
FLOOD_CHECKPOINT_SECONDS = 2.0
FLOOD_APPEND_LINES = 100
FLOOD_WINDOW_SECONDS = 0.25
#: A checkpoint is finished with the writers held (a stall of a few milliseconds)
#: this often: the WAL holds about this long of writes (Checkpointer).
FINISH_CHECKPOINT_SECONDS = 2.0
#: A WAL file larger than this has a checkpoint made and finished at once, flood or not
#: (the size ``journal_size_limit`` trims it back to): a flood's WAL stays about this size.
WAL_LIMIT_BYTES = 64 * 1024 * 1024

#: Ordered migrations: ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``.
#: Append new scripts; never edit a released one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        user TEXT NOT NULL,
        job TEXT NOT NULL,
        state TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX runs_by_user ON runs (user, n);
    CREATE INDEX runs_by_state ON runs (state, n);
    CREATE TABLE requests (key TEXT PRIMARY KEY, run_id TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX requests_by_run ON requests (run_id);
    CREATE TABLE stops (run_id TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE outputs (
        run_id TEXT PRIMARY KEY,
        end_seq INTEGER NOT NULL,
        low_seq INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE chunks (
        run_id TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        first_seq INTEGER NOT NULL,
        times TEXT NOT NULL,
        packing INTEGER NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (run_id, last_seq)
    );
    CREATE TABLE writers (
        run_id TEXT NOT NULL,
        writer TEXT NOT NULL,
        given INTEGER NOT NULL,
        PRIMARY KEY (run_id, writer)
    ) WITHOUT ROWID;
    CREATE TABLE sessions (sid TEXT PRIMARY KEY, expires REAL NOT NULL, data TEXT NOT NULL)
        WITHOUT ROWID;
    CREATE INDEX sessions_by_expiry ON sessions (expires);
    CREATE TABLE tokens (user TEXT PRIMARY KEY, blob BLOB NOT NULL) WITHOUT ROWID;
    """,
    """
    CREATE TABLE shares (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        run_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX shares_by_run ON shares (run_id, expires_at);
    """,
    """
    CREATE TABLE inputs (n INTEGER PRIMARY KEY, run_id TEXT NOT NULL, data TEXT);
    CREATE INDEX inputs_by_run ON inputs (run_id, n);
    CREATE TABLE inputs_closed (run_id TEXT PRIMARY KEY) WITHOUT ROWID;
    """,
    """
    CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        version INTEGER NOT NULL,
        wake_at REAL,
        record TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX schedules_by_user ON schedules (user);
    CREATE INDEX schedules_by_wake ON schedules (wake_at) WHERE wake_at IS NOT NULL;
    """,
    # IF NOT EXISTS: safe whichever place this script takes among migrations that other
    # branches append at the same time.
    """
    CREATE TABLE IF NOT EXISTS preferences (user TEXT PRIMARY KEY, data TEXT NOT NULL)
        WITHOUT ROWID;
    """,
    """
    CREATE TABLE audit (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        entry TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at);
    """,
    """
    CREATE TABLE blobs (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        part INTEGER NOT NULL,
        size INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (run_id, name, part)
    ) WITHOUT ROWID;
    """,
    # Chunk payloads may use the packings _TEXTS and _TEXTS_ZLIB: no table changes, but
    # code knowing only the versions before this one could not read them, so it refuses
    # the file.
    "-- packings 2 and 3",
]
#: Bytes per row of ``blobs``: a file is stored in parts of this size.
BLOB_PART_BYTES = 1 << 20
SCHEMA_VERSION = len(MIGRATIONS)

F = TypeVar("F", bound=Callable[..., Any])
_T = TypeVar("_T")


class StoreOpenError(Exception):
    """The store cannot be opened; the message names the file and says what to do."""


def _guarded(method: F) -> F:
    """SQLite errors at run time (disk full, I/O error) become StoreUnavailableError: the
    capture pump keeps output in its bounded buffer and tries again, as during a Redis
    outage; the web tier answers 503 with the sentence."""

    @wraps(method)
    def call(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.ProgrammingError as exc:
            if self._closed:  # a thread still at work while the app shuts down
                raise StoreClosedError("The store is closed: the server is stopping."
                                       ) from exc
            raise
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            if _no_room(exc):
                self._after_no_room()
            raise StoreUnavailableError(
                f"The store ({self.path}) cannot be used right now ({exc}): free disk space "
                "or fix the file, then try again.") from exc

    return call  # type: ignore[return-value]


def _no_room(exc: sqlite3.Error) -> bool:
    """Whether a write failed for lack of disk (SQLITE_FULL) or an I/O error."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # text orjson refuses (a lone surrogate): the json module escapes it
        return json.dumps(value).encode()


def _index(lines: list[Line], field: operator.itemgetter[Any]) -> tuple[list[str],
                                                                         int | list[int]]:
    """The distinct values of ``field`` in order, and which one each line has (0 if all
    the same: the common case, found with a set, no list made)."""
    if len(set(map(field, lines))) == 1:
        return [field(lines[0])], 0
    values = list(map(field, lines))
    distinct = list(dict.fromkeys(values))
    return distinct, list(map({v: i for i, v in enumerate(distinct)}.__getitem__, values))


def _pack(lines: list[Line]) -> tuple[int, bytes]:
    """Lines as a row's payload (see :data:`_TEXTS`), compressed unless tiny.

    The texts joined by newlines (as UTF-8, lone surrogates kept), after a JSON line
    ``[streams, stream of each, ends, end of each]`` (an index per line, or 0 when all
    are the first). Lines whose text holds a newline are a JSON array instead."""
    texts = list(map(_TEXT, lines))
    if "\n" not in "".join(texts):  # (a join and a memchr: cheaper than counting)
        joined = "\n".join(texts)
        streams, ends = _index(lines, _STREAM), _index(lines, _END)
        raw = b"%b\n%b" % (_dumps([*streams, *ends]), joined.encode("utf-8", "surrogatepass"))
        packing = _TEXTS
    else:
        raw, packing = _dumps(lines), _JSON
    if len(raw) < COMPRESS_FROM_BYTES:
        return packing, raw
    return packing + 1, zlib.compress(raw, COMPRESS_LEVEL)


def _sizes(texts: Iterable[str]) -> array[int]:
    """Running totals of the texts' characters, from 0 (see :func:`take_fitting`)."""
    return array("q", accumulate(map(len, texts), initial=0))


def _decode(packing: int, payload: bytes) -> tuple[list[Line], array[int]]:
    """A row's lines (see :func:`_pack`) and the running totals of their characters."""
    raw = zlib.decompress(payload) if packing in (_ZLIB, _TEXTS_ZLIB) else payload
    if packing >= _TEXTS:
        head, _, body = raw.partition(b"\n")
        streams, stream_of, ends, end_of = _loads(head)
        text = body.decode("utf-8", "surrogatepass")
        texts = text.split("\n")
        column = (repeat(streams[0]) if stream_of == 0 else map(streams.__getitem__, stream_of))
        last = repeat(ends[0]) if end_of == 0 else map(ends.__getitem__, end_of)
        # strict=False: repeat() never ends; the texts say how many lines there are
        return list(zip(column, texts, last, strict=False)), _sizes(texts)
    lines = list(map(tuple, _loads(raw)))
    return lines, _sizes(map(_TEXT, lines))


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # a lone surrogate, escaped by the json module
        return json.loads(raw)


def _add_time(times: list[tuple[int, int]], at: int, ms: int) -> None:
    """Note in ``times`` (``(position, epoch_ms)`` where the time changes) that lines
    from ``at`` on have time ``ms``."""
    if times and times[-1][0] == at:
        times[-1] = (at, ms)  # a later change point for the same line
    elif not times or times[-1][1] != ms:
        times.append((at, ms))


class _Tail:
    """One run's output state in memory, as committed: the ``outputs`` row (``end``,
    ``low``, ``size``), the writers' counts seen so far, and its open chunk: the lines
    of seqs ``first`` to ``end`` (fewer than CHUNK_LINES), stored as the open rows
    ``rows`` (``(last_seq, bytes)``), with ``times`` (``(seq, epoch_ms)`` where the time
    changes, the first at ``first``).

    Never changed once made (an append makes the next one), so a reader that took one
    under the store's ``_mem`` lock reads it without any lock. Its three lists are
    shared with the tails made after it, though, so that an append to the open chunk
    costs its new lines only, not a copy of the lines already held (a run printing a
    line at a time): a tail's own entries are the first ``end - first + 1`` of
    ``lines``, ``ntimes`` of ``times`` and ``nrows`` of ``rows``, and what follows them
    (if anything) is a later tail's, or a rolled-back append's, always for seqs after
    ``end``. A tail's own entries are never changed or removed, and others are only
    ever added after them (a reader's slice or bisect of the first entries is not
    disturbed by an append going on), and the next tail grows a list in place only if
    it ends exactly where this tail's entries end (:func:`_own`); otherwise this tail's
    are copied first. See
    :meth:`SQLiteStore._add_lines` for why that is safe under the store's locks."""

    __slots__ = ("chars", "end", "first", "lines", "low", "nrows", "ntimes", "rows", "size",
                 "times", "writers")

    def __init__(self, end: int, low: int, size: int, first: int, lines: list[Line],
                 times: list[tuple[int, int]], rows: list[tuple[int, int]],
                 chars: int | None = None) -> None:
        """``lines``, ``times`` and ``rows`` are taken whole: the tail's own entries are
        all of them as they are now (later appends may add to them, past these)."""
        self.end, self.low, self.size = end, low, size
        self.first, self.lines, self.times, self.rows = first, lines, times, rows
        self.ntimes, self.nrows = len(times), len(rows)
        self.writers: dict[str, int] = {}
        self.chars = sum(map(len, map(_TEXT, lines))) if chars is None else chars


def _own(items: list[_T], count: int) -> list[_T]:
    """``items`` to grow in place if its ``count`` entries are all there is (a tail's
    own), else a copy of those (a rolled-back append left others after them)."""
    return items if len(items) == count else items[:count]


def _finish(tail: _Tail, note: tuple[Line, int] | None, after: int, start: int,
            lines: list[Line], times: list[tuple[int, int]], total: int, max_lines: int,
            max_chars: int) -> OutputSlice:
    """The slice from seq ``start``: ``lines`` (with ``times`` and ``total``
    characters) read from whole chunks, then the open chunk's from ``tail``, then the
    warning line ``note`` once everything stored was read."""
    at = start + len(lines)
    room = max_lines - len(lines)
    if room > 0 and tail.first <= at <= tail.end:
        base, skip = len(lines), at - tail.first
        # Only the tail's own lines and times: later appends may have added to the lists.
        take_fitting(lines, tail.lines[skip:skip + min(room, tail.end + 1 - at)], total,
                     max_lines, max_chars)
        for index, ms in times_for(tail.times, at, len(lines) - base, stop=tail.ntimes):
            _add_time(times, base + index, ms)
    end = tail.end
    if note is not None:
        if start + len(lines) == end + 1 and len(lines) < max_lines:
            if not times or times[-1][1] != note[1]:
                times.append((len(lines), note[1]))
            lines.append(note[0])  # everything stored was read: the warning is next
        end += 1
    return OutputSlice(start, lines, end, start - (after + 1),
                       [t for t in times if t[0] < len(lines)])


class CheckpointPolicy:
    """When :class:`Checkpointer` folds the WAL back in. Times are ``time.monotonic()``.

    Due when something was written since the last checkpoint and ``every`` seconds have
    passed since it; while a run floods (:meth:`flooded` was called in the last
    ``flood_window`` seconds), only once ``flood_every`` seconds have passed. The store
    calls :meth:`flooded` on a big append; the checkpointer passes the connection's
    ``total_changes`` (a count SQLite keeps of every row written, by any statement).
    Every ``finish_every`` seconds a checkpoint is finished with the writers held
    (:meth:`finish_due`; see :class:`Checkpointer`).
    """

    def __init__(self, every: float = CHECKPOINT_SECONDS,
                 flood_every: float = FLOOD_CHECKPOINT_SECONDS,
                 flood_window: float = FLOOD_WINDOW_SECONDS,
                 finish_every: float = FINISH_CHECKPOINT_SECONDS,
                 wal_limit: int = WAL_LIMIT_BYTES) -> None:
        self.every = every
        self.wal_limit = wal_limit
        self.flood_every = flood_every
        self.flood_window = flood_window
        self.finish_every = finish_every
        self.last_checkpoint = self.last_finish = time.monotonic()
        self.last_flood = float("-inf")
        self.checkpointed_changes = 0  # total_changes at the last checkpoint's start

    def flooded(self, now: float) -> None:
        """A big append was committed at ``now``."""
        self.last_flood = now

    def wait(self, now: float, changes: int, wal_bytes: int = 0) -> float | None:
        """Seconds until a checkpoint is due (0: now), or None when nothing was written
        since the last one (check again after ``every``). A WAL file larger than
        ``wal_limit`` bytes makes one due at once, flood or not: ``journal_size_limit``
        trims the file to exactly that size when the WAL starts over, so a file of that
        size is a WAL that has not grown past it since."""
        if changes == self.checkpointed_changes:
            return None
        if wal_bytes > self.wal_limit:  # (once started over, its file is trimmed to it)
            return 0.0
        flooding = now - self.last_flood < self.flood_window
        due = self.last_checkpoint + (self.flood_every if flooding else self.every)
        return max(0.0, min(due - now, self.every))  # the WAL's size looked at again

    def done(self, started: float, changes: int) -> None:
        """A checkpoint that started at ``started``, when ``total_changes`` was
        ``changes``, has finished: what was written since counts for the next one."""
        self.last_checkpoint = started
        self.checkpointed_changes = changes

    def finish_due(self, now: float, wal_bytes: int = 0) -> bool:
        """Whether the checkpoint just run is to be finished with the writers held:
        ``finish_every`` seconds since the last, or a WAL file past ``wal_limit`` bytes."""
        return now - self.last_finish >= self.finish_every or wal_bytes > self.wal_limit

    def finished(self, now: float) -> None:
        """A checkpoint was finished with the writers held at ``now``."""
        self.last_finish = now


class Checkpointer:
    """Folds the WAL of the database at ``path`` back into it, on a connection and a
    daemon thread of its own, when ``policy`` says (``changes()``: the writing
    connection's ``total_changes``, or None once its store is closed or gone: then the
    thread ends).

    A PASSIVE checkpoint copies what it can without waiting for, or blocking, the
    writers (the bulk of the work). But SQLite starts the WAL over from its beginning
    only when a writer finds every frame copied, and a server that writes every
    millisecond never gives it such a moment: the WAL would grow for as long as it
    writes (65 MB in 5 s at 1,000 lines/s). So every ``finish_every`` seconds the
    checkpoint is finished with the writers held (``writers``, the lock the store's
    writes take): the frames written while it ran are copied, and the next write starts
    the WAL over (``journal_size_limit`` then trims its file).

    An error is logged once and tried again at the next turn (a full disk is the
    store's to report). :meth:`close` stops the thread, which closes its connection
    (before the store's own close, so that the last connection to close folds the rest
    in and removes the WAL file); call it without holding ``writers``."""

    def __init__(self, path: Path, changes: Callable[[], int | None],
                 policy: CheckpointPolicy, writers: threading.RLock) -> None:
        self.policy = policy
        self.checkpoints = 0  # PASSIVE checkpoints run (for tests)
        self.finishes = 0  # of which finished with the writers held (for tests)
        self._changes = changes
        self._writers = writers
        self._stop = threading.Event()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._wal = path.with_name(path.name + "-wal")
        self._failing = False
        self._thread = threading.Thread(target=self._loop, name="flask-realtime-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _wal_bytes(self) -> int:
        """The WAL file's size: it only grows until the WAL starts over (then
        ``journal_size_limit`` trims it), so past :data:`WAL_LIMIT_BYTES` the WAL has
        grown that much since it last started over."""
        try:
            return os.stat(self._wal).st_size
        except OSError:
            return 0

    def _checkpoint(self) -> None:
        """One PASSIVE checkpoint. (What it answers cannot tell whether frames were
        written while it ran: it counts the frames there were when it started.)"""
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _loop(self) -> None:
        policy = self.policy
        while not self._stop.is_set():
            now = time.monotonic()
            changes = self._changes()
            if changes is None:
                break
            wal_bytes = self._wal_bytes()
            pause = policy.wait(now, changes, wal_bytes)
            if pause is None or pause > 0:
                self._stop.wait(policy.every if pause is None else pause)
                continue
            try:
                self._checkpoint()
                self.checkpoints += 1
                if policy.finish_due(now, wal_bytes):
                    with self._writers:  # a few frames; then the next write starts over
                        self._checkpoint()
                    self.finishes += 1
                    policy.finished(now)
            except sqlite3.Error as exc:
                if not self._failing:
                    log.warning("WAL checkpoint failed (%s): tried again in %.1f s", exc,
                                policy.every)
                self._failing = True
                policy.done(now, policy.checkpointed_changes)  # retried after ``every``
                continue
            self._failing = False
            policy.done(now, changes)
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def close(self) -> None:
        """Stop the thread (after a checkpoint in progress) and close its connection."""
        self._stop.set()
        self._thread.join()  # it closes its connection on the way out


class InstanceLock:
    """An exclusive ``flock`` on a file holding the owner's pid, held while open.

    The kernel drops the lock when the process dies however it dies, so a lock file left
    by a killed server never blocks the next start; and when the lock is garbage
    collected (its file closes), so an app dropped without being closed frees it too.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def acquire(self) -> None:
        """Take the lock and write this process's pid in the file; raises
        :class:`StoreOpenError` naming the holder if another process has it."""
        try:
            file = open(self.path, "a+b")  # noqa: SIM115  (held open: that is the lock)
        except OSError as exc:
            raise StoreOpenError(
                f"Cannot create the lock file {self.path} ({exc.strerror}): make the "
                "instance folder writable, or set FLASK_REALTIME_INSTANCE_PATH to one that "
                "is.") from exc
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(file.fileno(), 32, 0).decode(errors="replace").strip()
            file.close()
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise StoreOpenError(
                f"Another Flask-Realtime server ({who}) is using the instance folder "
                f"{self.path.parent} (it holds {self.path.name}): stop it first, or give "
                "this one another folder with FLASK_REALTIME_INSTANCE_PATH.") from exc
        os.ftruncate(file.fileno(), 0)
        os.pwrite(file.fileno(), f"{os.getpid()}\n".encode(), 0)
        self._file = file

    def release(self) -> None:
        """Empty the file and let the lock go (nothing if it is not held)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._file.fileno(), 0)
            self._file.close()  # closing the file releases the flock
            self._file = None


class SQLiteStore(RunStore, ScheduleStore):
    """The store in one SQLite database file (WAL mode), for one process.

    ``retention_lines`` caps each run's lines as the other stores do; ``retention_bytes``
    caps each run's stored bytes, and ``disk_budget_bytes`` (None: none) all runs'
    output: past it, the oldest finished runs' output is dropped first, with a warning.
    Dropped lines are counted in :attr:`OutputSlice.skipped` as with ``retention_lines``.

    ``lock`` (default) takes the instance lock next to the database first: a second
    process opening it gets :class:`StoreOpenError` naming the holder's pid. Opening a
    file that is not a database, a damaged one, or one written by a newer version also
    raises :class:`StoreOpenError`; nothing is ever replaced.

    One connection, shared by the capture pump, the delivery loop and request threads
    under a lock (measured against a connection per thread: the same append throughput,
    see docs/configuration.md), ``check_same_thread=False``.
    """

    def __init__(
        self, path: str | os.PathLike[str], retention_lines: int = DEFAULT_RETENTION_LINES, *,
        retention_bytes: int = DEFAULT_RETENTION_BYTES, disk_budget_bytes: int | None = None,
        lock: bool = True, busy_timeout: float = 5.0, check: bool = True,
        checkpoint_policy: CheckpointPolicy | None = None,
    ) -> None:
        self.retention_lines = retention_lines
        self.output_changed = threading.Event()
        self.path = Path(path)
        self.retention_bytes = retention_bytes
        self.disk_budget_bytes = disk_budget_bytes
        self._lock = threading.RLock()
        self._instance_lock: InstanceLock | None = None
        self._next_sweep = 0.0
        self._closed = False
        self._cache: OrderedDict[tuple[str, int], tuple[list[Line], array[int]]] = OrderedDict()
        self._cached_chars = 0
        # Per run, what appends and live reads need (see _Tail), least recently used
        # first; guarded by ``_mem``, never held while waiting for ``_lock``.
        self._mem = threading.Lock()
        self._tails: OrderedDict[str, _Tail] = OrderedDict()
        self._finished: set[str] = set()  # runs that finished in this process
        self._read_runs: set[str] = set()  # runs still printing that have been read
        self._finished_tails: OrderedDict[str, _Tail] = OrderedDict()  # for reads only
        self._tail_chars = 0
        # While writes fail for lack of room: since when (0: they do not), and per run
        # the warning line (and its time) its watchers see, stored with its next batch.
        self._no_room_since = 0.0
        self._next_checkpoint = 0.0
        self._notes: dict[str, tuple[Line, int]] = {}
        # Notified at each send_input: one process owns the database, so a reader
        # waiting for input needs no polling to hear of it.
        self._input_sent = threading.Condition(threading.Lock())
        self._inputs_sent = 0  # counted under _input_sent: a send never goes unheard
        self._claims: dict[str, float] = {}  # fire claim key -> monotonic expiry
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreOpenError(f"Cannot create the folder {self.path.parent} for the "
                                 f"database ({exc.strerror}): create it or set "
                                 "FLASK_REALTIME_INSTANCE_PATH.") from exc
        if lock:
            self._instance_lock = InstanceLock(self.path.with_name(
                LOCK_NAME if self.path.name == DATABASE_NAME else self.path.stem + ".lock"))
            self._instance_lock.acquire()
        try:
            self._db = self._connect(busy_timeout, check)
        except BaseException:
            if self._instance_lock is not None:
                self._instance_lock.release()
            raise
        self._total_bytes = int(self._db.execute(
            "SELECT coalesce(sum(bytes), 0) FROM outputs").fetchone()[0])
        try:
            self.checkpointer = Checkpointer(self.path, self._changes_counter(),
                                             checkpoint_policy or CheckpointPolicy(),
                                             self._lock)
        except BaseException:
            self._db.close()
            if self._instance_lock is not None:
                self._instance_lock.release()
            raise

    def _changes_counter(self) -> Callable[[], int | None]:
        """The Checkpointer's view of this store: its connection's ``total_changes``,
        None once it is closed, or collected without being closed (a weak reference:
        the thread does not keep a forgotten store alive)."""
        ref = weakref.ref(self)

        def changes() -> int | None:
            store = ref()
            if store is None or store._closed:
                return None
            return store._db.total_changes
        return changes

    # -- opening -----------------------------------------------------------------------
    def _connect(self, busy_timeout: float, check: bool) -> sqlite3.Connection:
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                 check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreOpenError(f"Cannot open the database {self.path} ({exc}): check the "
                                 "folder's permissions.") from exc
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreOpenError(
                    f"The database {self.path} was written by a newer version of "
                    f"Flask-Realtime (schema version {version}; this version knows up to "
                    f"{SCHEMA_VERSION}): upgrade Flask-Realtime, or set "
                    "FLASK_REALTIME_INSTANCE_PATH to another folder.")
            if existed and check:
                problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
                if problems != ["ok"]:
                    raise sqlite3.DatabaseError("; ".join(problems))
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                log.warning("%s: journal mode is %s, not WAL (a filesystem without shared "
                            "memory?): readers will wait for writers", self.path, mode)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")  # the WAL shrinks back
            db.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does them
            for number in range(version, SCHEMA_VERSION):
                self._migrate(db, number)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreOpenError(
                f"{self.path} is not a Flask-Realtime database, or it is damaged ({exc}): "
                "restore it from a backup, or move it away to start with an empty one "
                "(docs/configuration.md).") from exc
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection, number: int) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={number + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: no upgrade deadlock), under the lock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._no_room_since = 0.0

    def _after_no_room(self) -> None:
        """A write failed for lack of room: remember since when (the health check says
        so), and fold the WAL into the database and truncate it (at most once a second),
        which frees its space: on a small disk the WAL alone can fill it."""
        now = time.monotonic()
        with self._lock:
            if not self._no_room_since:
                self._no_room_since = now
                log.warning("%s: a write failed for lack of disk space (or an I/O error): "
                            "output waits in memory until there is room", self.path)
            if now >= self._next_checkpoint:
                self._next_checkpoint = now + CHECKPOINT_AFTER_FULL_SECONDS
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # -- startup -----------------------------------------------------------------------
    @_guarded
    def recover_interrupted(self) -> list[str]:
        """Fail the runs a previous process left queued, running or stopping (it died or
        was stopped with them): their output is kept, with a last line saying so.
        Called once at startup by the process that holds the instance lock."""
        failed = []
        for run in self.list_runs(states=[RunState(s) for s in ACTIVE], limit=1_000_000):
            self.append_output(run.id, [(SYSTEM, INTERRUPTED, "\n")], int(time.time() * 1000))
            if self.replace_run(run.moved_to(RunState.FAILED, error=INTERRUPTED), run.state):
                failed.append(run.id)
            self.close_input(run.id)  # what was typed and never read is not kept
        if failed:
            log.warning("%d runs were going when the server stopped: marked failed",
                        len(failed))
        return failed

    # -- run records -------------------------------------------------------------------
    @_guarded
    def create_run(self, run: Run, request_key: str | None = None, *,
                   per_user: int | None = None, total: int | None = None) -> Run:
        with self._write() as db:  # one transaction: the limits hold against every thread
            return self._create_run(db, run, request_key, per_user, total)

    @_guarded
    def create_runs(self, creates: list[tuple[Run, str | None]], *,
                    per_user: int | None = None, total: int | None = None,
                    ) -> list[Run | ActiveLimitError]:
        with self._write() as db:  # one transaction for the batch: one commit, not one each
            return create_each(lambda run, request_key: self._create_run(
                db, run, request_key, per_user, total), creates)

    def _create_run(self, db: sqlite3.Connection, run: Run, request_key: str | None,
                    per_user: int | None, total: int | None) -> Run:
        """:meth:`create_run` inside the write transaction ``db``."""
        if request_key is not None:
            row = db.execute("SELECT record FROM runs JOIN requests ON runs.id = "
                             "requests.run_id WHERE key = ?", (request_key,)).fetchone()
            if row is not None:
                return Run.from_json(json.loads(row[0]))
        if per_user is not None or total is not None:
            marks = ",".join("?" * len(ACTIVE))
            mine, everyone = db.execute(
                f"SELECT coalesce(sum(user = ?), 0), count(*) FROM runs WHERE state IN "
                f"({marks})", (run.user, *ACTIVE)).fetchone()
            if per_user is not None and mine >= per_user:
                raise ActiveLimitError("user")
            if total is not None and everyone >= total:
                raise ActiveLimitError("total")
        if request_key is not None:
            db.execute("INSERT OR REPLACE INTO requests VALUES (?, ?)",
                       (request_key, run.id))
        db.execute("INSERT INTO runs (id, user, job, state, record) VALUES (?, ?, ?, ?, ?)",
                   (run.id, run.user, run.job, run.state.value, _record(run)))
        return run

    @_guarded
    def run_for_request(self, request_key: str) -> Run | None:
        rows = self._read("SELECT record FROM runs JOIN requests ON runs.id = requests.run_id "
                          "WHERE key = ?", (request_key,))
        return Run.from_json(json.loads(rows[0][0])) if rows else None

    @_guarded
    def get_run(self, run_id: str) -> Run | None:
        rows = self._read("SELECT record FROM runs WHERE id = ?", (run_id,))
        return Run.from_json(json.loads(rows[0][0])) if rows else None

    @_guarded
    def replace_run(self, run: Run, expected_state: RunState) -> bool:
        with self._lock:
            done = self._db.execute(
                "UPDATE runs SET state = ?, record = ? WHERE id = ? AND state = ?",
                (run.state.value, _record(run), run.id, expected_state.value))
            if done.rowcount == 1 and run.state.finished:
                # Its output is complete (the runner stores every line before the run
                # ends): its open chunk need not stay in memory for appends and live
                # reads; reads keep it among FINISHED_TAILS (issue 21: memory across
                # 100 finished runs).
                self._forget_tails([run.id])
                with self._mem:
                    self._finished.add(run.id)
                    self._read_runs.discard(run.id)
            return done.rowcount == 1

    @_guarded
    def replace_runs(self, changes: list[tuple[Run, RunState]]) -> list[bool]:
        with self._write():  # one transaction for the batch: one commit, not one each
            return [self.replace_run(run, expected) for run, expected in changes]

    @_guarded
    def list_runs(
        self, user: str | None = None, *, job: str | None = None,
        states: Iterable[RunState] | None = None, limit: int = 100,
    ) -> list[Run]:
        where, args = [], []
        if user is not None:
            where.append("user = ?")
            args.append(user)
        if job is not None:
            where.append("job = ?")
            args.append(job)
        if states is not None:
            wanted = [RunState(s).value for s in states]
            where.append(f"state IN ({','.join('?' * len(wanted))})" if wanted else "0")
            args += wanted
        sql = "SELECT record FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._read(sql + " ORDER BY n DESC LIMIT ?", [*args, max(limit, 0)])
        return [Run.from_json(json.loads(row[0])) for row in rows]

    @_guarded
    def forget_old_runs(self, user: str, keep: int) -> list[str]:
        with self._write() as db:
            old = [row[0] for row in db.execute(
                "SELECT id, state FROM runs WHERE user = ? ORDER BY n DESC LIMIT -1 OFFSET ?",
                (user, max(keep, 0))) if row[1] in FINISHED]
            freed = self._delete_runs(db, old)
        self._total_bytes -= freed
        return old

    def _delete_runs(self, db: sqlite3.Connection, run_ids: list[str]) -> int:
        """Delete runs with everything of theirs; returns the output bytes freed."""
        if not run_ids:
            return 0
        ids = json.dumps(run_ids)
        freed = int(db.execute("SELECT coalesce(sum(bytes), 0) FROM outputs WHERE run_id IN "
                               "(SELECT value FROM json_each(?))", (ids,)).fetchone()[0])
        for table, column in (("runs", "id"), ("chunks", "run_id"), ("outputs", "run_id"),
                              ("writers", "run_id"), ("stops", "run_id"),
                              ("requests", "run_id"), ("inputs", "run_id"),
                              ("inputs_closed", "run_id"), ("blobs", "run_id")):
            db.execute(f"DELETE FROM {table} WHERE {column} IN "
                       "(SELECT value FROM json_each(?))", (ids,))
        self._forget_tails(run_ids)
        with self._mem:
            self._finished.difference_update(run_ids)
            self._read_runs.difference_update(run_ids)
        return freed

    # -- blobs (uploads and artifacts) --------------------------------------------------
    @_guarded
    def put_blob(self, run_id: str, name: str, data: bytes) -> None:
        view = memoryview(bytes(data))
        parts = range(0, max(len(view), 1), BLOB_PART_BYTES)
        with self._write() as db:  # one transaction: a reader sees the old file or the new
            db.execute("DELETE FROM blobs WHERE run_id = ? AND name = ?", (run_id, name))
            db.executemany("INSERT INTO blobs VALUES (?, ?, ?, ?, ?)", (
                (run_id, name, number, len(view), bytes(view[at:at + BLOB_PART_BYTES]))
                for number, at in enumerate(parts)))

    @_guarded
    def get_blob(self, run_id: str, name: str) -> bytes | None:
        rows = self._read("SELECT data FROM blobs WHERE run_id = ? AND name = ? ORDER BY part",
                          (run_id, name))
        return b"".join(bytes(row[0]) for row in rows) if rows else None

    @_guarded
    def list_blobs(self, run_id: str) -> dict[str, int]:
        return dict(self._read("SELECT name, size FROM blobs WHERE run_id = ? AND part = 0",
                               (run_id,)))

    @_guarded
    def delete_blobs(self, run_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM blobs WHERE run_id = ?", (run_id,))

    # -- stop requests -------------------------------------------------------------------
    @_guarded
    def request_stop(self, run_id: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO stops VALUES (?)", (run_id,))

    @_guarded
    def stop_requested(self, run_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM stops WHERE run_id = ?", (run_id,)))

    # -- input ---------------------------------------------------------------------------
    @_guarded
    def send_input(self, run_id: str, text: str | None, *,
                   max_queued: int = DEFAULT_MAX_QUEUED_INPUT) -> InputOutcome:
        with self._write() as db:
            if db.execute("SELECT 1 FROM inputs_closed WHERE run_id = ?",
                          (run_id,)).fetchone():
                return "closed"
            if text is None:
                db.execute("INSERT INTO inputs_closed VALUES (?)", (run_id,))
            else:
                queued = db.execute("SELECT coalesce(sum(length(CAST(data AS BLOB))), 0) "
                                    "FROM inputs WHERE run_id = ?", (run_id,)).fetchone()[0]
                if queued + len(text.encode()) > max_queued:
                    return "full"
            db.execute("INSERT INTO inputs (run_id, data) VALUES (?, ?)", (run_id, text))
        with self._input_sent:
            self._inputs_sent += 1
            self._input_sent.notify_all()
        return "sent"

    @_guarded
    def take_input(self, run_id: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            with self._input_sent:
                seen = self._inputs_sent
            with self._write() as db:
                row = db.execute("SELECT n, data FROM inputs WHERE run_id = ? ORDER BY n "
                                 "LIMIT 1", (run_id,)).fetchone()
                if row is not None:
                    db.execute("DELETE FROM inputs WHERE n = ?", (row[0],))
                    return "" if row[1] is None else str(row[1])
            with self._input_sent:
                while self._inputs_sent == seen:  # nothing sent since the read above
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._input_sent.wait(left)

    @_guarded
    def close_input(self, run_id: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO inputs_closed VALUES (?)", (run_id,))
            db.execute("DELETE FROM inputs WHERE run_id = ?", (run_id,))

    # -- output --------------------------------------------------------------------------
    @_guarded
    def append_output(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                      writer: str | None = None, offset: int = 0) -> int:
        """As :meth:`~..core.ports.OutputLog.append_output`. When the write fails for lack of room
        (or an I/O error), the run's watchers are shown a warning line at once: it takes
        the next seq (:meth:`read_output` and :meth:`output_end` include it) and is
        stored first, before the lines that waited, once a write works again."""
        try:
            return self._append(run_id, lines, epoch_ms, writer, offset)
        except sqlite3.DatabaseError as exc:
            if _no_room(exc):
                self._note_no_room(run_id, exc)
                self.output_changed.set()
            raise

    @_guarded
    def append_outputs(self, batches: list[OutputBatch], epoch_ms: int) -> list[int]:
        """As :meth:`~..core.ports.OutputLog.append_outputs`: every batch in one
        transaction (one commit for a round of the capture pump, however many runs it
        holds), and all or none of them stored. When the write fails for lack of room,
        each run's watchers are shown the warning line, as :meth:`append_output` does."""
        try:
            return self._append_all(batches, epoch_ms)
        except sqlite3.DatabaseError as exc:
            if _no_room(exc):
                for run_id, *_ in batches:
                    self._note_no_room(run_id, exc)
                self.output_changed.set()
            raise

    def _note_no_room(self, run_id: str, exc: sqlite3.DatabaseError) -> None:
        """The warning line ``run_id``'s watchers see while its lines cannot be stored."""
        with self._mem:
            if run_id not in self._notes:
                reason = str(exc) or "no room"
                self._notes[run_id] = ((SYSTEM, NOT_STORED.format(reason=reason), "\n"),
                                       int(time.time() * 1000))

    def _append(self, run_id: str, lines: list[Line], epoch_ms: int, writer: str | None,
                offset: int) -> int:
        return self._append_all([(run_id, lines, writer, offset)], epoch_ms)[0]

    def _append_all(self, batches: list[OutputBatch], epoch_ms: int) -> list[int]:
        """Store ``batches`` in one transaction; returns each one's new end seq."""
        ends: list[int] = []
        # Per run written: its tail before the transaction, after it, the chunks written.
        staged: dict[str, tuple[_Tail, _Tail, list[tuple[int, list[Line]]]]] = {}
        with self._lock:  # held until the new tails are in memory: appends see them in order
            with self._write() as db:
                for run_id, lines, writer, offset in batches:
                    step = staged.get(run_id)
                    tail = step[1] if step is not None else self._tail(run_id, create=True)
                    assert tail is not None
                    added = self._stage(db, run_id, tail, lines, epoch_ms, writer, offset,
                                        noted=step is None)
                    if added is None:
                        ends.append(tail.end)
                        continue
                    after, written = added
                    staged[run_id] = ((step[0], after, step[2] + written) if step is not None
                                      else (tail, after, written))
                    ends.append(after.end)
            # Committed: only now may readers see it (a batch rolled back must not be read
            # back from memory, and nothing a watcher got may be lost at a kill -9).
            with self._mem:
                for run_id, (_, after, _) in staged.items():
                    self._install(run_id, after)
                    self._notes.pop(run_id, None)
            for run_id, (_, _, written) in staged.items():
                if run_id in self._read_runs:  # someone reads it: a watcher a little behind
                    for last_seq, chunk in written:
                        self._remember(run_id, last_seq, chunk)
        if not staged:
            return ends
        if any(len(lines) >= FLOOD_APPEND_LINES for _, lines, _, _ in batches):
            self.checkpointer.policy.flooded(time.monotonic())
        self._total_bytes += sum(after.size - before.size for before, after, _ in staged.values())
        if self.disk_budget_bytes is not None and self._total_bytes > self.disk_budget_bytes:
            self._enforce_disk_budget()
        self.output_changed.set()
        return ends

    def _stage(self, db: sqlite3.Connection, run_id: str, tail: _Tail, lines: list[Line],
               epoch_ms: int, writer: str | None, offset: int, *, noted: bool,
               ) -> tuple[_Tail, list[tuple[int, list[Line]]]] | None:
        """Write one batch after ``tail`` in the open transaction: its tail once committed
        and the whole chunks written, or None if the writer had given every line already.
        ``noted``: the run's warning line (if any) goes first, as its watchers saw it."""
        writers = tail.writers
        if writer is not None:
            given = writers.get(writer)
            if given is None:
                row = db.execute("SELECT given FROM writers WHERE run_id = ? AND "
                                 "writer = ?", (run_id, writer)).fetchone()
                given = row[0] if row is not None else 0
            if given > offset:
                lines, offset = lines[given - offset:], given
            if lines:
                db.execute("INSERT OR REPLACE INTO writers VALUES (?, ?, ?)",
                           (run_id, writer, offset + len(lines)))
                writers = {**writers, writer: offset + len(lines)}
        if not lines:
            return None
        note = None
        if noted:
            with self._mem:
                note = self._notes.get(run_id)
        segments = [([note[0]], note[1])] if note is not None else []
        segments.append((lines, epoch_ms))  # the warning its watchers saw comes first
        after, written = self._add_lines(db, run_id, tail, segments)
        after.writers = writers
        db.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?)",
                   (run_id, after.end, after.low, after.size))
        return after, written

    def _add_lines(self, db: sqlite3.Connection, run_id: str, tail: _Tail,
                   segments: list[tuple[list[Line], int]],
                   ) -> tuple[_Tail, list[tuple[int, list[Line]]]]:
        """Write ``segments`` (lines, epoch ms) after the run's ``tail``; returns the tail
        once committed, and the whole chunks written (``(last_seq, lines)``).

        While the open chunk has room, the new lines are one more small row: nothing
        already stored is read, decoded or encoded again. When it fills, its rows become
        one row of CHUNK_LINES lines (from the lines in memory), and the rest whole chunks
        plus a new open row: each line is encoded about twice, whatever the batch sizes.

        In memory too, an append that fits in the open chunk (and whose byte budget and
        line cap take none of its rows) costs its new lines only, not the lines held: the
        new tail grows the old one's lists in place (see :class:`_Tail`) instead of
        copying them, and its ``times`` are not rebuilt (with ``first`` unchanged and
        nothing trimmed they already are the change points from ``first`` on). Skipping
        the rebuild alone would still copy the lines, times and rows held at every
        append. Sharing keeps the old tail as committed, which is what readers and a
        failed transaction need:

        * ``read_output``'s live path reads a tail without ``self._lock`` (taken under
          ``_mem``, while an append may be growing its lists): it reads only the tail's
          own entries, by slices and bisects bounded by its counts (a slice is one step
          under the GIL, and a bisect's indices below its bound stay valid and
          unchanged), and entries are only ever added after them;
        * appends run one at a time (under ``self._lock``, from the tail read to its
          install), and the new tail is installed only once committed
          (:meth:`_append_all`). If the transaction fails, the old tail stays installed
          and what this call added past its entries is read by no tail; the next append
          from it finds its lists longer than its own entries and copies those
          (:func:`_own`) instead of growing after the rolled-back ones;
        * no entry a tail owns is changed: :func:`_add_time` replaces only a change point
          at seq ``tail.end + 1`` or after, one this call added.

        When the chunk fills or open rows are trimmed, fresh lists are built as before
        (O(lines held), at most once per chunk for the former)."""
        count = tail.end - tail.first + 1  # the lines held
        new: list[Line] = []
        for lines, _ in segments:
            new += lines
        end = tail.end + len(new)
        fits = count + len(new) < CHUNK_LINES
        times = _own(tail.times, tail.ntimes) if fits else tail.times[:tail.ntimes]
        at = tail.end + 1
        for lines, ms in segments:
            _add_time(times, at, ms)
            at += len(lines)
        size = tail.size
        written: list[tuple[int, list[Line]]] = []
        chars: int | None
        if fits:
            packing, packed = _pack(new)
            db.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
                       (run_id, end, tail.end + 1,
                        orjson.dumps(times_for(times, tail.end + 1, len(new))).decode(),
                        packing, packed))
            size += len(packed)
            first, held, rows = tail.first, _own(tail.lines, count), _own(tail.rows, tail.nrows)
            held += new
            rows.append((end, len(packed)))
            chars = tail.chars + sum(map(len, map(_TEXT, new)))
        else:
            if tail.nrows:
                db.execute("DELETE FROM chunks WHERE run_id = ? AND last_seq >= ?",
                           (run_id, tail.first))
                size -= sum(n for _, n in tail.rows[:tail.nrows])
            pending = tail.lines[:count] + new
            seq, first, held, rows, chars = tail.first, end + 1, [], [], None
            inserts = []
            for start in range(0, len(pending), CHUNK_LINES):
                chunk = pending[start:start + CHUNK_LINES]
                packing, packed = _pack(chunk)
                last = seq + len(chunk) - 1
                inserts.append((run_id, last, seq,
                                orjson.dumps(times_for(times, seq, len(chunk))).decode(),
                                packing, packed))
                size += len(packed)
                if len(chunk) == CHUNK_LINES:
                    written.append((last, chunk))
                else:  # the rest: the new open chunk
                    first, held, rows = seq, chunk, [(last, len(packed))]
                seq = last + 1
            db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)", inserts)
        low, size = self._trim(db, run_id, end, tail.low, size)
        trimmed = low > first
        if trimmed:  # the byte budget took open rows too
            held, first, chars = held[low - first:], low, None
            rows = [row for row in rows if row[0] >= low]
        if trimmed or not fits:  # fresh lists, the change points from the new ``first``
            times = [(first + index, ms) for index, ms in times_for(times, first, len(held))
                     ] if held else []
        return _Tail(end, low, size, first, held, times, rows, chars), written

    def _trim(self, db: sqlite3.Connection, run_id: str, end: int, low: int,
              size: int) -> tuple[int, int]:
        """Drop whole chunks below the line cap and past the run's byte budget (keeping
        the newest); returns (first seq still stored, bytes)."""
        lowest = end - self.retention_lines + 1
        if lowest <= low and size <= self.retention_bytes:
            return low, size  # nothing to drop: no query
        doomed = db.execute("SELECT last_seq, length(payload) FROM chunks WHERE run_id = ? "
                            "AND last_seq < ? ORDER BY last_seq", (run_id, lowest)).fetchall()
        if size - sum(n for _, n in doomed) > self.retention_bytes:
            over = size - sum(n for _, n in doomed) - self.retention_bytes
            for last_seq, n in db.execute(
                    "SELECT last_seq, length(payload) FROM chunks WHERE run_id = ? AND "
                    "last_seq >= ? AND last_seq < ? ORDER BY last_seq",
                    (run_id, lowest, end)).fetchall():
                if over <= 0:
                    break
                doomed.append((last_seq, n))
                over -= n
        if doomed:
            db.execute("DELETE FROM chunks WHERE run_id = ? AND last_seq <= ?",
                       (run_id, doomed[-1][0]))
            low = max(low, doomed[-1][0] + 1)
            size -= sum(n for _, n in doomed)
        return low, size

    def _enforce_disk_budget(self) -> None:
        """Past DISK_BUDGET_BYTES, drop the oldest finished runs' output (records stay)."""
        assert self.disk_budget_bytes is not None
        with self._write() as db:
            candidates = db.execute(
                "SELECT outputs.run_id, outputs.end_seq, outputs.bytes FROM outputs JOIN runs "
                "ON runs.id = outputs.run_id WHERE outputs.bytes > 0 AND runs.state IN "
                f"({','.join('?' * len(FINISHED))}) ORDER BY runs.n", FINISHED).fetchall()
            dropped = []
            for run_id, end, n in candidates:
                if self._total_bytes <= self.disk_budget_bytes:
                    break
                db.execute("DELETE FROM chunks WHERE run_id = ?", (run_id,))
                db.execute("UPDATE outputs SET low_seq = ?, bytes = 0 WHERE run_id = ?",
                           (end + 1, run_id))
                self._total_bytes -= n
                dropped.append(run_id)
            self._forget_tails(dropped)  # read again from the database when next needed
        if dropped:
            log.warning("DISK_BUDGET_BYTES (%d) reached: dropped the output of %d finished "
                        "runs, oldest first (%s)", self.disk_budget_bytes, len(dropped),
                        ", ".join(dropped[:5]) + (" …" if len(dropped) > 5 else ""))

    @_guarded
    def read_output(
        self, run_id: str, after: int, *, max_lines: int = 1000, max_chars: int = 65_536,
    ) -> OutputSlice:
        after = max(after, 0)
        with self._mem:
            tail = self._tails.get(run_id)
            note = self._notes.get(run_id)
            if run_id not in self._finished:
                self._read_runs.add(run_id)
        if tail is not None:
            start = max(after + 1, tail.low, tail.end - self.retention_lines + 1)
            if start >= tail.first:
                # The live path (a watcher that is caught up): the open chunk, committed,
                # from memory; it never waits behind a write holding the database.
                return _finish(tail, note, after, start, [], [], 0, max_lines, max_chars)
        with self._lock:
            tail = self._tail(run_id, create=False)
            with self._mem:
                note = self._notes.get(run_id)
            if tail is None:
                if note is None:
                    return OutputSlice(first_seq=after + 1, lines=[], end_seq=0)
                tail = _Tail(0, 1, 0, 1, [], [], [])  # nothing stored yet but the warning
            start = max(after + 1, tail.low, tail.end - self.retention_lines + 1)
            lines: list[Line] = []
            times: list[tuple[int, int]] = []
            total, done = 0, False
            if start < tail.first:
                total, done = self._read_chunks(run_id, start, tail.first, lines, times,
                                                max_lines, max_chars)
        if done:
            times = [t for t in times if t[0] < len(lines)]
            return OutputSlice(start, lines, tail.end + (note is not None),
                               start - (after + 1), times)
        return _finish(tail, note, after, start, lines, times, total, max_lines, max_chars)

    def _read_chunks(self, run_id: str, start: int, stop: int, lines: list[Line],
                     times: list[tuple[int, int]], max_lines: int, max_chars: int,
                     ) -> tuple[int, bool]:
        """Add the whole chunks' lines from seq ``start`` up to the open chunk (``stop``)
        to ``lines`` and ``times`` (under ``self._lock``); returns (characters read,
        whether a limit was reached)."""
        total = 0
        rows = self._db.execute(
            "SELECT first_seq, last_seq, times, packing, payload FROM chunks WHERE "
            "run_id = ? AND last_seq >= ? AND last_seq < ? ORDER BY last_seq",
            (run_id, start, stop))
        try:
            # Rows are stepped through lazily: only the chunks needed are read and decoded.
            for first, last_seq, times_json, packing, payload in rows:
                skip = max(start - first, 0)
                chunk, sizes = self._chunk(run_id, last_seq, packing, payload)
                base = len(lines)
                for index, ms in orjson.loads(times_json):
                    _add_time(times, base + max(index - skip, 0), ms)
                total, full = take_fitting(lines, chunk, total, max_lines, max_chars,
                                           start=skip, sizes=sizes)
                if full:
                    return total, True
        finally:
            rows.close()
        return total, False

    def _tail(self, run_id: str, *, create: bool) -> _Tail | None:
        """The run's :class:`_Tail`, read from the database unless it is in memory (under
        ``self._lock``); None if the run has no output and ``create`` is false."""
        with self._mem:
            tail = self._tails.get(run_id)
            if tail is not None:
                self._tails.move_to_end(run_id)
                return tail
            if not create:
                tail = self._finished_tails.get(run_id)
                if tail is not None:
                    self._finished_tails.move_to_end(run_id)
                    return tail
        meta = self._db.execute("SELECT end_seq, low_seq, bytes FROM outputs WHERE run_id = ?",
                                (run_id,)).fetchone()
        if meta is None and not create:
            return None
        end, low, size = (int(v) for v in meta) if meta is not None else (0, 1, 0)
        # The open rows: the newest ones with fewer than CHUNK_LINES lines (a database of
        # earlier today has at most one, grown in place; it is read the same way).
        found = []
        rows = self._db.execute("SELECT first_seq, last_seq, times, packing, payload FROM "
                                "chunks WHERE run_id = ? ORDER BY last_seq DESC", (run_id,))
        try:
            for row in rows:
                if row[1] - row[0] + 1 >= CHUNK_LINES:
                    break
                found.append(row)
        finally:
            rows.close()
        held: list[Line] = []
        times: list[tuple[int, int]] = []
        for first, _last, times_json, packing, payload in reversed(found):
            for index, ms in orjson.loads(times_json):
                _add_time(times, first + index, ms)
            held += _decode(packing, payload)[0]
        tail = _Tail(end, low, size, found[-1][0] if found else end + 1, held, times,
                     [(row[1], len(row[4])) for row in reversed(found)])
        with self._mem:
            if create or run_id not in self._finished:
                self._install(run_id, tail)
            else:  # a read of a finished run: kept apart, a few only
                self._finished_tails[run_id] = tail
                while len(self._finished_tails) > FINISHED_TAILS:
                    self._finished_tails.popitem(last=False)
        return tail

    def _install(self, run_id: str, tail: _Tail) -> None:
        """Make ``tail`` the run's (under ``self._mem``); the least recently used go past
        TAIL_CHARS (they are read from the database again when needed)."""
        old = self._tails.pop(run_id, None)
        self._finished_tails.pop(run_id, None)  # an append after the end: that one is old
        self._tail_chars += tail.chars - (old.chars if old is not None else 0)
        self._tails[run_id] = tail
        while self._tail_chars > TAIL_CHARS and len(self._tails) > 1:
            _, gone = self._tails.popitem(last=False)
            self._tail_chars -= gone.chars

    def _forget_tails(self, run_ids: Iterable[str]) -> None:
        with self._mem:
            for run_id in run_ids:
                self._finished_tails.pop(run_id, None)
                gone = self._tails.pop(run_id, None)
                if gone is not None:
                    self._tail_chars -= gone.chars

    def _chunk(self, run_id: str, last_seq: int, packing: int, payload: bytes,
               ) -> tuple[list[Line], array[int]]:
        """A whole chunk's lines and the running totals of their characters (for
        :func:`take_fitting`), decoded or from the cache (under ``self._lock``).

        ``(run_id, last_seq)`` names one content for good: whole chunks never change,
        and run ids are never reused."""
        key = (run_id, last_seq)
        found = self._cache.get(key)
        if found is None:
            found = _decode(packing, payload)
            self._remember(run_id, last_seq, *found)
        else:
            self._cache.move_to_end(key)
        return found

    def _remember(self, run_id: str, last_seq: int, lines: list[Line],
                  sizes: array[int] | None = None) -> None:
        key = (run_id, last_seq)
        if key in self._cache:
            return
        if sizes is None:
            sizes = _sizes(map(_TEXT, lines))
        self._cache[key] = (lines, sizes)
        self._cached_chars += sizes[-1]
        while self._cached_chars > CACHE_CHARS and len(self._cache) > 1:
            _, (_, gone) = self._cache.popitem(last=False)
            self._cached_chars -= gone[-1]

    @_guarded
    def output_end(self, run_id: str) -> int:
        with self._mem:
            tail = self._tails.get(run_id)
            noted = run_id in self._notes
        if tail is not None:
            return tail.end + noted
        # Not in memory (a finished run, or one not written to lately): the outputs row
        # alone, nothing brought into memory (the run list asks this of every run).
        rows = self._read("SELECT end_seq FROM outputs WHERE run_id = ?", (run_id,))
        return (int(rows[0][0]) if rows else 0) + noted

    # -- login sessions ----------------------------------------------------------------
    @_guarded
    def load_session(self, sid: str) -> dict[str, Any] | None:
        rows = self._read("SELECT data FROM sessions WHERE sid = ? AND expires > ?",
                          (sid, time.time()))
        data = json.loads(rows[0][0]) if rows else None
        return data if isinstance(data, dict) else None

    @_guarded
    def save_session(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        encoded = json.dumps(data)  # as the other stores: only JSON survives a save
        now = time.time()
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)",
                       (sid, now + max(ttl, 1), encoded))
            if now >= self._next_sweep:  # expired sessions go at most a minute late
                self._next_sweep = now + 60
                db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))

    @_guarded
    def delete_session(self, sid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE sid = ?", (sid,))

    # -- Webex tokens --------------------------------------------------------------------
    @_guarded
    def save_tokens(self, user: str, blob: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?)", (user, bytes(blob)))

    @_guarded
    def load_tokens(self, user: str) -> bytes | None:
        rows = self._read("SELECT blob FROM tokens WHERE user = ?", (user,))
        return bytes(rows[0][0]) if rows else None

    @_guarded
    def delete_tokens(self, user: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM tokens WHERE user = ?", (user,))

    @_guarded
    def replace_tokens(self, user: str, expected: bytes | None, blob: bytes | None) -> bool:
        with self._write() as db:
            row = db.execute("SELECT blob FROM tokens WHERE user = ?", (user,)).fetchone()
            if (bytes(row[0]) if row is not None else None) != expected:
                return False
            if blob is None:
                db.execute("DELETE FROM tokens WHERE user = ?", (user,))
            else:
                db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?)", (user, bytes(blob)))
            return True

    @_guarded
    def sessions_and_tokens(self, session_ids: Iterable[str],
                            users: Iterable[str]) -> tuple[set[str], dict[str, bytes]]:
        sids, wanted = json.dumps(list(session_ids)), json.dumps(list(users))
        with self._lock:
            live = {row[0] for row in self._db.execute(
                "SELECT sid FROM sessions WHERE expires > ? AND sid IN (SELECT value FROM "
                "json_each(?))", (time.time(), sids))}
            blobs = {row[0]: bytes(row[1]) for row in self._db.execute(
                "SELECT user, blob FROM tokens WHERE user IN (SELECT value FROM json_each(?))",
                (wanted,))}
        return live, blobs

    # -- share links ---------------------------------------------------------------------
    _SHARE_COLUMNS = ("id", "token_hash", "run_id", "owner", "expires_at")

    @_guarded
    def create_share(self, share: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT INTO shares VALUES (?, ?, ?, ?, ?)",
                             tuple(share[c] for c in self._SHARE_COLUMNS))

    @_guarded
    def get_share(self, token_hash: str) -> dict[str, Any] | None:
        rows = self._read("SELECT id, token_hash, run_id, owner, expires_at FROM shares "
                          "WHERE token_hash = ? AND expires_at > ?", (token_hash, time.time()))
        return dict(zip(self._SHARE_COLUMNS, rows[0], strict=True)) if rows else None

    @_guarded
    def list_shares(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._read("SELECT id, token_hash, run_id, owner, expires_at FROM shares "
                          "WHERE run_id = ? AND expires_at > ? ORDER BY expires_at",
                          (run_id, time.time()))
        return [dict(zip(self._SHARE_COLUMNS, row, strict=True)) for row in rows]

    @_guarded
    def delete_share(self, share_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM shares WHERE id = ?", (share_id,))

    # -- schedules -----------------------------------------------------------------------
    @_guarded
    def create_schedule(self, schedule: Schedule, *, per_user: int | None = None) -> bool:
        with self._write() as db:
            if per_user is not None and db.execute(
                    "SELECT count(*) FROM schedules WHERE user = ?",
                    (schedule.user,)).fetchone()[0] >= per_user:
                return False
            db.execute("INSERT INTO schedules VALUES (?, ?, ?, ?, ?)", (
                schedule.id, schedule.user, schedule.version, schedule.wake_at,
                json.dumps(schedule.to_json())))
        return True

    @_guarded
    def get_schedule(self, schedule_id: str) -> Schedule | None:
        rows = self._read("SELECT record FROM schedules WHERE id = ?", (schedule_id,))
        return Schedule.from_json(json.loads(rows[0][0])) if rows else None

    @_guarded
    def list_schedules(self, user: str) -> list[Schedule]:
        rows = self._read("SELECT record FROM schedules WHERE user = ?", (user,))
        found = [Schedule.from_json(json.loads(row[0])) for row in rows]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    @_guarded
    def replace_schedule(self, schedule: Schedule, expected_version: int) -> bool:
        with self._lock:
            done = self._db.execute(
                "UPDATE schedules SET version = ?, wake_at = ?, record = ? "
                "WHERE id = ? AND version = ?",
                (schedule.version, schedule.wake_at, json.dumps(schedule.to_json()),
                 schedule.id, expected_version))
            return done.rowcount == 1

    @_guarded
    def delete_schedule(self, schedule_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM schedules WHERE id = ?",
                                    (schedule_id,)).rowcount == 1

    @_guarded
    def due_schedules(self, now: float, limit: int = 1000) -> list[Schedule]:
        rows = self._read("SELECT record FROM schedules WHERE wake_at IS NOT NULL AND "
                          "wake_at <= ? ORDER BY wake_at LIMIT ?", (now, max(limit, 0)))
        return [Schedule.from_json(json.loads(row[0])) for row in rows]

    @_guarded
    def next_wake(self) -> float | None:
        rows = self._read("SELECT min(wake_at) FROM schedules WHERE wake_at IS NOT NULL")
        return rows[0][0] if rows and rows[0][0] is not None else None

    def claim_fire(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._claims.get(key, 0.0) > now:
                return False
            if len(self._claims) > 10_000:
                self._claims = {k: t for k, t in self._claims.items() if t > now}
            self._claims[key] = now + ttl
            return True
    # -- notification preferences (docs/notifications.md) -------------------------------
    @_guarded
    def load_preferences(self, user: str) -> dict[str, Any] | None:
        """The preferences ``user`` saved (a JSON object), or None."""
        rows = self._read("SELECT data FROM preferences WHERE user = ?", (user,))
        found: dict[str, Any] | None = json.loads(rows[0][0]) if rows else None
        return found

    @_guarded
    def save_preferences(self, user: str, data: dict[str, Any]) -> None:
        """Keep ``data`` (JSON-serialisable) as ``user``'s preferences, over what was there."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO preferences VALUES (?, ?)",
                             (user, json.dumps(data)))
    # -- the audit trail -----------------------------------------------------------------
    @_guarded
    def append_audit(self, entry: dict[str, Any], *, max_age: float | None = None,
                     max_entries: int | None = None) -> str:
        with self._write() as db:
            n = db.execute("INSERT INTO audit (at, entry) VALUES (?, ?)",
                           (float(entry.get("at", time.time())), json.dumps(entry))).lastrowid
            if max_age is not None:
                db.execute("DELETE FROM audit WHERE at < ?", (time.time() - max_age,))
            if max_entries is not None:
                db.execute("DELETE FROM audit WHERE n <= ?", (int(n or 0) - max_entries,))
        return str(n)

    @_guarded
    def read_audit(self, *, before: str | None = None, limit: int = 100
                   ) -> list[dict[str, Any]]:
        bound = audit_bound(before)
        rows = self._read("SELECT n, entry FROM audit WHERE n < ? ORDER BY n DESC LIMIT ?",
                          (bound, limit))
        return [{**json.loads(entry), "id": str(n)} for n, entry in rows]

    # -- lifecycle -----------------------------------------------------------------------
    def healthy(self) -> bool:
        """False while writes fail for lack of room, or the database cannot be read."""
        if self._no_room_since:
            return False
        try:
            self._read("SELECT 1")
        except (sqlite3.Error, StoreUnavailableError):
            return False
        return True

    def close(self) -> None:
        """Close the database (a checkpoint folds the WAL back in) and release the lock."""
        self.checkpointer.close()  # not under ``_lock``: it may be waiting for it
        with self._lock:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
            if self._instance_lock is not None:
                self._instance_lock.release()
                self._instance_lock = None


def _record(run: Run) -> str:
    return json.dumps(run.to_json(with_result=True))
