"""The embedded store: everything in this process's memory. Nothing to install.

Runs, output and schedules are lost when the process exits (a schedule made on a
memory store is gone after a restart: docs/schedules.md); the SQLite store (the
default) keeps them, and ``REDIS_URL`` gives a store that survives restarts and is
shared by several processes.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Iterable
from typing import Any

from ..core.output import Line, OutputSlice, take_fitting
from ..core.ports import (
    DEFAULT_MAX_QUEUED_INPUT,
    DEFAULT_RETENTION_LINES,
    ActiveLimitError,
    InputOutcome,
    OutputBatch,
    RunStore,
    ScheduleStore,
    create_each,
)
from ..core.runs import Run, RunState
from ..core.schedules import Schedule


class _OutputLog:
    """One run's retained lines: ``lines[0]`` has seq ``first_seq``."""

    __slots__ = ("first_seq", "lines", "times", "writers")

    def __init__(self) -> None:
        self.first_seq = 1
        self.lines: list[Line] = []
        self.times: list[tuple[int, int]] = []  # (seq, epoch_ms) where the time changes
        self.writers: dict[str, int] = {}  # how many lines each writer has given

    @property
    def end_seq(self) -> int:
        return self.first_seq + len(self.lines) - 1


def slice_lines(
    lines: list[Line], start_index: int, max_lines: int, max_chars: int,
) -> list[Line]:
    """Up to ``max_lines`` lines from ``start_index`` whose text fits ``max_chars`` (>= 1 line)."""
    out: list[Line] = []
    take_fitting(out, lines, 0, max_lines, max_chars, start=start_index)
    return out


def times_for(times: list[tuple[int, int]], first_seq: int, count: int, *,
              stop: int | None = None) -> list[tuple[int, int]]:
    """The time change points that cover seqs ``first_seq .. first_seq + count - 1``,
    looking only at ``times[:stop]`` (all of it for None)."""
    out: list[tuple[int, int]] = []
    last = first_seq + count - 1
    hi = len(times) if stop is None else stop
    start = max(bisect.bisect_right(times, first_seq, 0, hi, key=lambda t: t[0]) - 1, 0)
    for seq, ms in times[start:hi]:
        if seq > last:
            break
        out.append((max(seq - first_seq, 0), ms))
    return out


def audit_bound(before: str | None) -> int:
    """The audit entry number ``before`` names (a page's end): everything for None, and
    nothing for a string that is not a number this store gave (0)."""
    if before is None:
        return 1 << 62
    return int(before) if before.isascii() and before.isdigit() and len(before) <= 18 else 0


class MemoryStore(RunStore, ScheduleStore):
    """Everything in this process's memory, gone when it ends: for one process, the CLI and
    the tests.

    One lock guards every method, so it is safe from any thread and every compare-and-set is
    atomic; ``output_changed`` is set after every append. It never raises
    :class:`StoreUnavailableError`."""

    def __init__(self, retention_lines: int = DEFAULT_RETENTION_LINES) -> None:
        self.retention_lines = retention_lines
        self.output_changed = threading.Event()
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}
        self._active: set[str] = set()  # ids of the runs not finished, for the limits
        self._requests: dict[str, str] = {}
        self._stops: set[str] = set()
        self._logs: dict[str, _OutputLog] = {}
        self._sessions: dict[str, tuple[float, str]] = {}  # sid -> (expiry, JSON data)
        self._next_sweep = 0.0
        self._tokens: dict[str, bytes] = {}
        self._shares: dict[str, dict[str, Any]] = {}  # share id -> share
        # Per run, its unread input items (None: end-of-file) and whether it is closed.
        self._inputs: dict[str, list[str | None]] = {}
        self._inputs_closed: set[str] = set()
        self._input_sent = threading.Condition(self._lock)
        self._schedules: dict[str, Schedule] = {}  # in creation order
        self._claims: dict[str, float] = {}  # claim key -> monotonic expiry
        self._preferences: dict[str, str] = {}  # user -> JSON (docs/notifications.md)
        self._audit: list[tuple[int, str]] = []  # (number, JSON entry), oldest first
        self._audit_count = 0
        self._blobs: dict[str, dict[str, bytes]] = {}  # run id -> blob name -> bytes

    def create_run(self, run: Run, request_key: str | None = None, *,
                   per_user: int | None = None, total: int | None = None) -> Run:
        with self._lock:
            return self._create_run(run, request_key, per_user, total)

    def create_runs(self, creates: list[tuple[Run, str | None]], *,
                    per_user: int | None = None, total: int | None = None,
                    ) -> list[Run | ActiveLimitError]:
        with self._lock:  # the whole batch at once, as one create is
            return create_each(lambda run, request_key: self._create_run(
                run, request_key, per_user, total), creates)

    def _create_run(self, run: Run, request_key: str | None, per_user: int | None,
                    total: int | None) -> Run:
        """:meth:`create_run`, the lock held."""
        if request_key is not None:
            existing = self._requests.get(request_key)
            if existing is not None and existing in self._runs:
                return self._runs[existing]
        if per_user is not None and sum(
                1 for i in self._active if self._runs[i].user == run.user) >= per_user:
            raise ActiveLimitError("user")
        if total is not None and len(self._active) >= total:
            raise ActiveLimitError("total")
        if request_key is not None:
            self._requests[request_key] = run.id
        self._runs[run.id] = run
        if not run.state.finished:
            self._active.add(run.id)
        self._logs[run.id] = _OutputLog()
        return run

    def run_for_request(self, request_key: str) -> Run | None:
        run_id = self._requests.get(request_key)
        return self._runs.get(run_id) if run_id is not None else None

    def get_run(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def replace_run(self, run: Run, expected_state: RunState) -> bool:
        with self._lock:
            return self._replace_run(run, expected_state)

    def replace_runs(self, changes: list[tuple[Run, RunState]]) -> list[bool]:
        with self._lock:  # the whole batch at once, as one replace is
            return [self._replace_run(run, expected) for run, expected in changes]

    def _replace_run(self, run: Run, expected_state: RunState) -> bool:
        """:meth:`replace_run`, the lock held."""
        current = self._runs.get(run.id)
        if current is None or current.state is not expected_state:
            return False
        self._runs[run.id] = run
        if run.state.finished:
            self._active.discard(run.id)
        return True

    def list_runs(
        self, user: str | None = None, *, job: str | None = None,
        states: Iterable[RunState] | None = None, limit: int = 100,
    ) -> list[Run]:
        wanted = set(states) if states is not None else None
        with self._lock:
            runs = list(self._runs.values())
        found = [
            r for r in reversed(runs)
            if (user is None or r.user == user) and (job is None or r.job == job)
            and (wanted is None or r.state in wanted)
        ]
        return found[:limit]

    def forget_old_runs(self, user: str, keep: int) -> list[str]:
        with self._lock:
            mine = [run for run in self._runs.values() if run.user == user]  # oldest first
            old = [run.id for run in mine[:max(len(mine) - keep, 0)] if run.state.finished]
            for run_id in old:
                del self._runs[run_id]
                self._logs.pop(run_id, None)
                self._stops.discard(run_id)
                self._inputs.pop(run_id, None)
                self._inputs_closed.discard(run_id)
                self._blobs.pop(run_id, None)
            if old:
                gone = set(old)
                self._requests = {k: v for k, v in self._requests.items() if v not in gone}
        return old

    def put_blob(self, run_id: str, name: str, data: bytes) -> None:
        with self._lock:
            self._blobs.setdefault(run_id, {})[name] = bytes(data)

    def get_blob(self, run_id: str, name: str) -> bytes | None:
        with self._lock:
            return self._blobs.get(run_id, {}).get(name)

    def list_blobs(self, run_id: str) -> dict[str, int]:
        with self._lock:
            return {name: len(data) for name, data in self._blobs.get(run_id, {}).items()}

    def delete_blobs(self, run_id: str) -> None:
        with self._lock:
            self._blobs.pop(run_id, None)

    def request_stop(self, run_id: str) -> None:
        self._stops.add(run_id)

    def stop_requested(self, run_id: str) -> bool:
        return run_id in self._stops

    def send_input(self, run_id: str, text: str | None, *,
                   max_queued: int = DEFAULT_MAX_QUEUED_INPUT) -> InputOutcome:
        with self._lock:
            if run_id in self._inputs_closed:
                return "closed"
            queue = self._inputs.setdefault(run_id, [])
            if text is None:
                self._inputs_closed.add(run_id)
            elif sum(len(t.encode()) for t in queue if t) + len(text.encode()) > max_queued:
                return "full"
            queue.append(text)
            self._input_sent.notify_all()
            return "sent"

    def take_input(self, run_id: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._inputs.get(run_id):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._input_sent.wait(left)
            item = self._inputs[run_id].pop(0)
            return "" if item is None else item

    def close_input(self, run_id: str) -> None:
        with self._lock:
            self._inputs_closed.add(run_id)
            self._inputs.pop(run_id, None)

    def append_output(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                      writer: str | None = None, offset: int = 0) -> int:
        with self._lock:
            end = self._append(run_id, lines, epoch_ms, writer, offset)
        self.output_changed.set()
        return end

    def append_outputs(self, batches: list[OutputBatch], epoch_ms: int) -> list[int]:
        """As :meth:`~..core.ports.OutputLog.append_outputs`: under the lock once, and
        ``output_changed`` set once."""
        with self._lock:
            ends = [self._append(run_id, lines, epoch_ms, writer, offset)
                    for run_id, lines, writer, offset in batches]
        self.output_changed.set()
        return ends

    def _append(self, run_id: str, lines: list[Line], epoch_ms: int, writer: str | None,
                offset: int) -> int:
        """One batch (under the lock); the run's new end seq."""
        log = self._logs.setdefault(run_id, _OutputLog())
        if writer is not None:  # no reply is lost in-process; kept for the contract
            given = log.writers.get(writer, 0)
            if given > offset:
                lines, offset = lines[given - offset:], given
            if not lines:
                return log.end_seq
            log.writers[writer] = offset + len(lines)
        seq = log.end_seq + 1
        if not log.times or log.times[-1][1] != epoch_ms:
            log.times.append((seq, epoch_ms))
        log.lines.extend(lines)
        excess = len(log.lines) - self.retention_lines
        if excess > 0:
            del log.lines[:excess]
            log.first_seq += excess
            keep = 0
            while keep + 1 < len(log.times) and log.times[keep + 1][0] <= log.first_seq:
                keep += 1
            del log.times[:keep]
        return log.end_seq

    def read_output(
        self, run_id: str, after: int, *, max_lines: int = 1000, max_chars: int = 65_536,
    ) -> OutputSlice:
        with self._lock:
            log = self._logs.get(run_id)
            if log is None:
                return OutputSlice(first_seq=after + 1, lines=[], end_seq=0)
            start = max(after + 1, log.first_seq)
            skipped = start - (after + 1)
            lines = slice_lines(log.lines, start - log.first_seq, max_lines, max_chars)
            times = times_for(log.times, start, len(lines))
            return OutputSlice(start, lines, log.end_seq, skipped, times)

    def output_end(self, run_id: str) -> int:
        log = self._logs.get(run_id)
        return log.end_seq if log is not None else 0

    def load_session(self, sid: str) -> dict[str, Any] | None:
        entry = self._sessions.get(sid)
        if entry is None or entry[0] <= time.monotonic():
            return None
        data: dict[str, Any] = json.loads(entry[1])
        return data

    def save_session(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        encoded = json.dumps(data)  # as the Redis store does: only JSON survives a save
        now = time.monotonic()
        with self._lock:
            self._sessions[sid] = (now + ttl, encoded)
            if now >= self._next_sweep:  # expired sessions go at most a minute late
                self._next_sweep = now + 60
                for key in [k for k, (expiry, _) in self._sessions.items() if expiry <= now]:
                    del self._sessions[key]

    def delete_session(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def save_tokens(self, user: str, blob: bytes) -> None:
        with self._lock:
            self._tokens[user] = bytes(blob)

    def load_tokens(self, user: str) -> bytes | None:
        return self._tokens.get(user)

    def delete_tokens(self, user: str) -> None:
        with self._lock:
            self._tokens.pop(user, None)

    def replace_tokens(self, user: str, expected: bytes | None, blob: bytes | None) -> bool:
        with self._lock:
            if self._tokens.get(user) != expected:
                return False
            if blob is None:
                self._tokens.pop(user, None)
            else:
                self._tokens[user] = bytes(blob)
            return True

    def sessions_and_tokens(self, session_ids: Iterable[str],
                            users: Iterable[str]) -> tuple[set[str], dict[str, bytes]]:
        now = time.monotonic()
        live = {sid for sid in session_ids
                if (entry := self._sessions.get(sid)) is not None and entry[0] > now}
        return live, {user: blob for user in users
                      if (blob := self._tokens.get(user)) is not None}

    def create_share(self, share: dict[str, Any]) -> None:
        with self._lock:
            self._shares[share["id"]] = dict(share)

    def get_share(self, token_hash: str) -> dict[str, Any] | None:
        now = time.time()
        with self._lock:
            return next((dict(s) for s in self._shares.values()
                         if s["token_hash"] == token_hash and s["expires_at"] > now), None)

    def list_shares(self, run_id: str) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            found = [dict(s) for s in self._shares.values()
                     if s["run_id"] == run_id and s["expires_at"] > now]
        return sorted(found, key=lambda s: s["expires_at"])

    def delete_share(self, share_id: str) -> None:
        with self._lock:
            self._shares.pop(share_id, None)

    # -- schedules (lost at exit, as everything here) --------------------------------------
    def create_schedule(self, schedule: Schedule, *, per_user: int | None = None) -> bool:
        with self._lock:
            mine = sum(1 for s in self._schedules.values() if s.user == schedule.user)
            if per_user is not None and mine >= per_user:
                return False
            self._schedules[schedule.id] = schedule
            return True

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        return self._schedules.get(schedule_id)

    def list_schedules(self, user: str) -> list[Schedule]:
        with self._lock:
            mine = [s for s in self._schedules.values() if s.user == user]
        return sorted(mine, key=lambda s: (s.created_at, s.id))

    def replace_schedule(self, schedule: Schedule, expected_version: int) -> bool:
        with self._lock:
            current = self._schedules.get(schedule.id)
            if current is None or current.version != expected_version:
                return False
            self._schedules[schedule.id] = schedule
            return True

    def delete_schedule(self, schedule_id: str) -> bool:
        with self._lock:
            return self._schedules.pop(schedule_id, None) is not None

    def due_schedules(self, now: float, limit: int = 1000) -> list[Schedule]:
        with self._lock:
            due = [s for s in self._schedules.values()
                   if s.wake_at is not None and s.wake_at <= now]
        return sorted(due, key=lambda s: s.wake_at or 0.0)[:limit]

    def next_wake(self) -> float | None:
        with self._lock:
            wakes = [s.wake_at for s in self._schedules.values() if s.wake_at is not None]
        return min(wakes, default=None)

    def claim_fire(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._claims.get(key, 0.0) > now:
                return False
            if len(self._claims) > 10_000:  # expired claims go once there are many
                self._claims = {k: t for k, t in self._claims.items() if t > now}
            self._claims[key] = now + ttl
            return True
    # -- a user's notification preferences (docs/notifications.md) -------------------------
    def load_preferences(self, user: str) -> dict[str, Any] | None:
        """The preferences ``user`` saved (a JSON object), or None."""
        raw = self._preferences.get(user)
        return json.loads(raw) if raw is not None else None

    def save_preferences(self, user: str, data: dict[str, Any]) -> None:
        """Keep ``data`` (JSON-serialisable) as ``user``'s preferences, over what was there."""
        self._preferences[user] = json.dumps(data)
    def append_audit(self, entry: dict[str, Any], *, max_age: float | None = None,
                     max_entries: int | None = None) -> str:
        encoded = json.dumps(entry)  # as the other stores: only JSON survives
        with self._lock:
            self._audit_count += 1
            self._audit.append((self._audit_count, encoded))
            drop = 0
            if max_age is not None:
                cutoff = time.time() - max_age
                while drop < len(self._audit) and json.loads(
                        self._audit[drop][1]).get("at", 0) < cutoff:
                    drop += 1
            if max_entries is not None:
                drop = max(drop, len(self._audit) - max_entries)
            del self._audit[:drop]
            return str(self._audit_count)

    def read_audit(self, *, before: str | None = None, limit: int = 100
                   ) -> list[dict[str, Any]]:
        bound = audit_bound(before)
        with self._lock:
            found = [(n, raw) for n, raw in reversed(self._audit) if n < bound]
        return [{**json.loads(raw), "id": str(n)} for n, raw in found[:limit]]
