"""The Redis store: runs, output, sessions and tokens shared by every web process and worker.

Layout (every key starts with ``fr:``):

* ``fr:run:<id>`` hash: ``json`` (the record), ``state`` and ``user``; moves are
  compare-and-set in a Lua script, so two processes can never both move a run.
* ``fr:runs`` / ``fr:runs:<user>`` sorted sets by creation time; ``fr:active`` the
  set of runs not finished yet (limits and the executor-loss check read only that).
  A create counts the active runs against the limits and stores the run in one Lua
  script, so starts on several processes at once never pass ``RUNS_PER_USER``; a
  batch (:meth:`RedisStore.create_runs`, a scheduler round's fires) is one script too,
  counting the active runs once for all its creates.
* ``fr:out:<id>`` a Redis Stream of line *chunks* (up to 1,000 lines per entry),
  each entry's id being ``0-<seq of its last line>``: resuming after seq N is
  ``XRANGE (0-N +`` (the first entry may start before N+1; those lines are skipped).
  ``fr:end:<id>`` holds the last seq. A Lua script numbers and adds a whole batch
  atomically and trims the stream (``MINID``) to the retention cap. One entry per
  chunk rather than per line makes appending and reading about ten times faster:
  the per-entry cost in Redis and in redis-py dominates with one entry per line.
  ``fr:wr:<id>`` counts the lines each writer has given, so a batch sent again after a
  lost reply is not stored twice (see :meth:`~..core.ports.OutputLog.append_output`).
  Chunks are zlib-compressed (level 1): numbered log lines shrink 10 to 30 times, and a
  100,000-line run of 60-byte lines takes 0.3 MB of Redis memory instead of 7.9 MB
  (bench/redis_memory.py). Entries stored before compression (plain JSON) still read.
* ``fr:ob`` hash: the compressed bytes each run's stream holds, and ``fr:obt`` their
  sum. Past ``REDIS_OUTPUT_BUDGET_BYTES`` the oldest finished runs' output is dropped
  first, with a warning in the log; ``fr:low:<id>`` then holds the first seq still
  there, and readers are told the dropped lines were ``skipped``.
* ``fr:output`` pub/sub channel: a wake-up for delivery loops when a run's output
  grew (at most once; the stream is the record, a missed wake-up costs one poll).
* A user's finished runs beyond their newest ``HISTORY_RUNS`` are deleted, every key
  of theirs (:meth:`forget_old_runs`).
* ``fr:in:<id>`` a list of the run's unread input items (``t`` + text, or ``e`` for
  end-of-file), taken with ``BLPOP`` by the process executing the run, wherever it is;
  ``fr:inb:<id>`` the unread text's bytes; ``fr:inx:<id>`` set once the input is over
  (see :class:`~..core.ports.RunInput`). A send is one Lua script. Each key lives 7
  days after the last send, as stop requests do.
* ``fr:blob:<id>`` hash: a run's files (uploads and artifacts), blob name -> bytes,
  so a worker on another machine reads the uploads of the runs it executes; deleted
  with the run.
* ``fr:stop:<id>`` stop requests; ``fr:hb:<id>`` the executor's heartbeat (TTL);
  ``fr:req:<key>`` start idempotency; ``fr:sess:<sid>`` sessions (TTL);
  ``fr:tok:<user>`` encrypted token blobs, replaced by compare-and-set in a Lua
  script (a renewal never undoes a logout made meanwhile by another process).
* ``fr:schedule:<id>`` hash: ``json``, ``version`` and ``user`` of a schedule, saved by
  compare-and-set on ``version`` in a Lua script that also keeps ``fr:sched-due`` (a
  sorted set of the enabled schedules by ``wake_at``) and ``fr:scheds:<user>`` (the
  user's schedule ids; a create checks ``SCHEDULES_PER_USER`` against it in the same
  script). ``fr:sched:<id>:<due-epoch>`` is a fire's claim (``SET NX`` with expiry):
  the one process whose ``SET`` made the key starts that fire's run.
* ``fr:pref:<user>`` the user's notification preferences as JSON (docs/notifications.md).
* ``fr:audit`` a stream capped at ``AUDIT_RETENTION_ENTRIES`` and
  ``AUDIT_RETENTION_DAYS``: the audit trail (web/audit.py), one JSON entry each.

Every Redis error becomes :class:`~..core.ports.StoreUnavailableError` with a sentence the
web tier can show; redis-py reconnects with backoff on its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import wraps
from typing import Any, TypeVar

from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

import redis

from ..core.output import Line, OutputSlice, take_fitting
from ..core.ports import (
    DEFAULT_MAX_QUEUED_INPUT,
    DEFAULT_RETENTION_LINES,
    ActiveLimitError,
    InputOutcome,
    OutputBatch,
    RunStore,
    ScheduleStore,
    StoreUnavailableError,
)
from ..core.runs import Run, RunState
from ..core.schedules import Schedule

log = logging.getLogger(__name__)

P = "fr:"
OUTPUT_CHANNEL = P + "output"
FINISHED = [s.value for s in RunState if s.finished]
UNAVAILABLE = "The store (Redis) cannot be reached right now: try again in a moment."

F = TypeVar("F", bound=Callable[..., Any])

#: Compare-and-sets of run records, in one script (one run's is a batch of one). KEYS:
#: the active set, then each run's hash. ARGV: per run: expected state, new state,
#: json, finished flag, id. Returns a list of 1 (saved) or 0, in order.
_REPLACE = """
local saved = {}
for n = 0, #KEYS - 2 do
  local key, a = KEYS[n + 2], 5 * n
  if redis.call('HGET', key, 'state') == ARGV[a + 1] then
    redis.call('HSET', key, 'state', ARGV[a + 2], 'json', ARGV[a + 3])
    if ARGV[a + 4] == '1' then redis.call('SREM', KEYS[1], ARGV[a + 5]) end
    saved[n + 1] = 1
  else
    saved[n + 1] = 0
  end
end
return saved
"""

#: Connections a store's client keeps at most (a request waits for a free one).
MAX_CONNECTIONS = 100

#: Creates of run records, in one script (one run's is a batch of one): the active runs
#: are counted once (per user and in all), then each create is checked against the
#: counts and adds to them. KEYS: runs, active set, then per run: its hash, its user's
#: runs, its request key (unused when it has none). ARGV: per-user limit, total limit
#: (-1: none), the number of finished states and the states, then per run: id, json,
#: state, user, score, finished flag, '1' when it has a request key. Returns per run
#: {'exists', id}, {'limit', 'user' or 'total'} or {'made'}, in order. The active runs'
#: hashes are read by name, not passed as KEYS: their ids are only known inside the
#: script (fine on one Redis; a cluster would need a slot tag).
_CREATE = """
local per_user, total, nfinished = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local finished = {}
for i = 4, 3 + nfinished do finished[ARGV[i]] = true end
local base, limited = 3 + nfinished, per_user >= 0 or total >= 0
local counted, mine, all = false, {}, 0
local replies = {}
for n = 0, (#KEYS - 2) / 3 - 1 do
  local k, a = 3 + 3 * n, base + 7 * n
  local id, user, reply = ARGV[a + 1], ARGV[a + 4], nil
  if ARGV[a + 7] == '1' then
    local existing = redis.call('GET', KEYS[k + 2])
    if existing and redis.call('EXISTS', 'fr:run:' .. existing) == 1 then
      reply = {'exists', existing}
    end
  end
  if not reply and limited then
    if not counted then
      for _, other in ipairs(redis.call('SMEMBERS', KEYS[2])) do
        local fields = redis.call('HMGET', 'fr:run:' .. other, 'state', 'user', 'json')
        if fields[1] and not finished[fields[1]] then
          all = all + 1
          local owner = fields[2] or cjson.decode(fields[3])['user']  -- records made before 'user'
          mine[owner] = (mine[owner] or 0) + 1
        end
      end
      counted = true
    end
    if per_user >= 0 and (mine[user] or 0) >= per_user then reply = {'limit', 'user'}
    elseif total >= 0 and all >= total then reply = {'limit', 'total'} end
  end
  if not reply then
    redis.call('HSET', KEYS[k], 'json', ARGV[a + 2], 'state', ARGV[a + 3], 'user', user)
    redis.call('ZADD', KEYS[1], ARGV[a + 5], id)
    redis.call('ZADD', KEYS[k + 1], ARGV[a + 5], id)
    if ARGV[a + 6] == '0' then
      redis.call('SADD', KEYS[2], id)
      all = all + 1
      mine[user] = (mine[user] or 0) + 1
    end
    if ARGV[a + 7] == '1' then redis.call('SET', KEYS[k + 2], id, 'EX', 86400) end
    reply = {'made'}
  end
  replies[n + 1] = reply
end
return replies
"""

#: KEYS: the user's token blob. ARGV: '1' when a blob is expected (else none may be
#: stored), the expected blob, '1' to store the new blob (else delete), the new blob.
_REPLACE_TOKENS = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('DEL', KEYS[1]) end
return 1
"""

#: KEYS: stream, end counter, writers hash, bytes per run, total bytes. ARGV:
#: retention, epoch ms, writer, offset, run id, then (count, payload) per chunk. Returns
#: {new end seq, lines given by the writer, total output bytes}, or {-1, lines given, 0}
#: when the store already holds some of these (a reply was lost). The entries the
#: retention cap trims are read first (a few per append at most) to count their bytes.
_APPEND = """
local retention = tonumber(ARGV[1])
local offset = tonumber(ARGV[4])
local given = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
if given > offset then return {-1, given, 0} end
local last = 0
local delta = 0
for i = 6, #ARGV, 2 do
  offset = offset + tonumber(ARGV[i])
  last = redis.call('INCRBY', KEYS[2], tonumber(ARGV[i]))
  local keep = last - retention + 1
  if keep < 1 then keep = 1 end
  if keep > 1 then
    for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '(0-' .. keep)) do
      local fields = entry[2]
      for f = 1, #fields, 2 do
        if fields[f] == 'p' then delta = delta - string.len(fields[f + 1]) end
      end
    end
  end
  redis.call('XADD', KEYS[1], 'MINID', '0-' .. keep, '0-' .. last,
             'n', ARGV[i], 'm', ARGV[2], 'p', ARGV[i + 1])
  delta = delta + string.len(ARGV[i + 1])
end
redis.call('HSET', KEYS[3], ARGV[3], offset)
redis.call('HINCRBY', KEYS[4], ARGV[5], delta)
return {last, offset, redis.call('INCRBY', KEYS[5], delta)}
"""

#: KEYS: stream, end counter, low mark, bytes per run, total bytes. ARGV: run id.
#: Drops a run's whole stream once (a second process finds nothing to drop); returns
#: the bytes freed.
_DROP_OUTPUT = """
local size = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], tonumber(redis.call('GET', KEYS[2]) or '0') + 1)
if size ~= 0 then redis.call('DECRBY', KEYS[5], size) end
return size
"""

#: KEYS: input list, closed flag, unread bytes. ARGV: the item ('e' for end-of-file,
#: 't' .. text), its text's bytes, the most unread bytes allowed, the keys' TTL.
_SEND_INPUT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'closed' end
if ARGV[1] == 'e' then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
else
  local queued = tonumber(redis.call('GET', KEYS[3]) or '0')
  if queued + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 'full' end
  redis.call('INCRBY', KEYS[3], ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 'sent'
"""
#: How long the input keys of a run live after its last send.
INPUT_TTL_SECONDS = 7 * 86_400
#: The longest single BLPOP: below the client's socket timeout (2 s).
INPUT_WAIT_SLICE = 1.0
#: KEYS: schedule hash, user's schedules, due set. ARGV: id, json, version, user,
#: wake_at ('' for none), per-user limit (-1: none). Returns 1, or 0 at the limit.
_CREATE_SCHEDULE = """
local limit = tonumber(ARGV[6])
if limit >= 0 and redis.call('SCARD', KEYS[2]) >= limit then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'version', ARGV[3], 'user', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1]) end
return 1
"""

#: KEYS: schedule hash, due set. ARGV: id, json, new version, expected version,
#: wake_at ('' for none). Returns 1 when saved, 0 when the version moved (or it is gone).
_REPLACE_SCHEDULE = """
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'version', ARGV[3])
if ARGV[5] == '' then redis.call('ZREM', KEYS[2], ARGV[1])
else redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1]) end
return 1
"""

#: Lines per stream entry.
CHUNK_LINES = 1000
#: The most lines one call of the append script carries (its arguments bounded).
CALL_LINES = 50 * CHUNK_LINES


def _guarded(method: F) -> F:
    @wraps(method)
    def call(self: RedisStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnavailableError(UNAVAILABLE) from exc

    return call  # type: ignore[return-value]


#: Chunks a read asks for in its first round trip (it asks for more, doubling, while the
#: slice has room): a chunk may hold a flood's thousands of lines, a quiet run's one.
FIRST_CHUNKS = 2

#: Chunks of at least this many bytes of JSON are stored compressed.
COMPRESS_FROM_BYTES = 512
COMPRESS_LEVEL = 1


def _pack(lines: list[Line], compress: bool = True) -> bytes:
    """Lines as one JSON array of ``[stream, text, end]`` (encoded in C), zlib-compressed
    unless tiny. A zlib stream starts with byte 0x78 ("x"), a JSON array with "[": the
    reader tells them apart without a field of its own."""
    raw = json.dumps(lines, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass")
    if not compress or len(raw) < COMPRESS_FROM_BYTES:
        return raw
    return zlib.compress(raw, COMPRESS_LEVEL)


def _unpack(payload: bytes) -> list[Line]:
    if payload[:1] == b"x":
        payload = zlib.decompress(payload)
    return list(map(tuple, json.loads(payload.decode("utf-8", "surrogatepass"))))


class RedisStore(RunStore, ScheduleStore):
    """The store on Redis, shared by every process of a deployment.

    ``output_budget_bytes`` (None: none) bounds all runs' stored (compressed) output:
    past it the oldest finished runs' output is dropped, with a warning; their records
    stay, and readers count the dropped lines as ``skipped``. ``compress=False`` stores
    chunks as plain JSON, as before compression (for bench/redis_memory.py).
    """

    def __init__(self, url: str, retention_lines: int = DEFAULT_RETENTION_LINES, *,
                 socket_timeout: float = 2.0, listen: bool = True,
                 output_budget_bytes: int | None = None, compress: bool = True,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.retention_lines = retention_lines
        self.output_budget_bytes = output_budget_bytes
        self.compress = compress
        self.output_changed = threading.Event()
        self.url = url
        # redis-py's own annotations cannot tell bytes replies from str ones: typed Any.
        # A blocking pool: redis-py's default pool (100 connections from a URL) raises
        # at once when every connection is in use, which 1,000 run threads starting
        # together (a scheduler round) do; here a request waits up to
        # ``socket_timeout`` for a connection instead, and at most ``max_connections``
        # sockets are opened.
        self.redis: Any = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=1.0,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            health_check_interval=15, max_connections=max_connections,
            timeout=socket_timeout))
        self.redis.auto_close_connection_pool = True  # as from_url's client: close() ends it
        # Stop checks are made on the job's own thread (``running()``): they must not keep
        # the job waiting while Redis is away. One try, no backoff: a refused connection
        # fails at once (the main client's retries took 0.3 s a check, and a job polling
        # running() ran at half speed through an outage); the next check comes soon.
        self._quick: Any = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0))
        self._append = self.redis.register_script(_APPEND)
        self._create = self.redis.register_script(_CREATE)
        self._replace = self.redis.register_script(_REPLACE)
        self._replace_tokens = self.redis.register_script(_REPLACE_TOKENS)
        self._drop_output = self.redis.register_script(_DROP_OUTPUT)
        self._send_input = self.redis.register_script(_SEND_INPUT)
        self._create_schedule = self.redis.register_script(_CREATE_SCHEDULE)
        self._replace_schedule = self.redis.register_script(_REPLACE_SCHEDULE)
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None
        if listen:
            self._listener = threading.Thread(target=self._listen, name="flask-realtime-redis",
                                              daemon=True)
            self._listener.start()

    # -- run records -------------------------------------------------------------------
    @_guarded
    def create_run(self, run: Run, request_key: str | None = None, *,
                   per_user: int | None = None, total: int | None = None) -> Run:
        made = self.create_runs([(run, request_key)], per_user=per_user, total=total)[0]
        if isinstance(made, ActiveLimitError):
            raise made
        return made

    @_guarded
    def create_runs(self, creates: list[tuple[Run, str | None]], *,
                    per_user: int | None = None, total: int | None = None,
                    ) -> list[Run | ActiveLimitError]:
        if not creates:
            return []
        keys = [P + "runs", P + "active"]
        args: list[Any] = [
            -1 if per_user is None else per_user, -1 if total is None else total,
            len(FINISHED), *FINISHED]
        now = time.time()
        for run, request_key in creates:
            keys += [P + "run:" + run.id, P + "runs:" + run.user,
                     P + "req:" + (request_key if request_key is not None else "")]
            args += [run.id, json.dumps(run.to_json(with_result=True)), run.state.value,
                     run.user, now, "1" if run.state.finished else "0",
                     "0" if request_key is None else "1"]
        made: list[Run | ActiveLimitError] = []
        for (run, request_key), reply in zip(creates, self._create(keys=keys, args=args),
                                             strict=True):
            outcome = reply[0].decode()
            if outcome == "limit":
                made.append(ActiveLimitError("user" if reply[1] == b"user" else "total"))
            elif outcome == "exists":  # a retried start: its first run (rare: one read each)
                try:
                    made.append(self.get_run(reply[1].decode()) or self.create_run(
                        run, request_key, per_user=per_user, total=total))
                except ActiveLimitError as exc:  # the first run went meanwhile
                    made.append(exc)
            else:
                made.append(run)
        return made

    @_guarded
    def run_for_request(self, request_key: str) -> Run | None:
        run_id = self.redis.get(P + "req:" + request_key)
        return self.get_run(run_id.decode()) if run_id else None

    @_guarded
    def get_run(self, run_id: str) -> Run | None:
        raw = self.redis.hget(P + "run:" + run_id, "json")
        return Run.from_json(json.loads(raw)) if raw else None

    @_guarded
    def replace_run(self, run: Run, expected_state: RunState) -> bool:
        return self.replace_runs([(run, expected_state)])[0]

    @_guarded
    def replace_runs(self, changes: list[tuple[Run, RunState]]) -> list[bool]:
        if not changes:
            return []
        keys = [P + "active"] + [P + "run:" + run.id for run, _expected in changes]
        args: list[Any] = []
        for run, expected in changes:
            args += [expected.value, run.state.value, json.dumps(run.to_json(with_result=True)),
                     "1" if run.state.finished else "0", run.id]
        return [bool(done) for done in self._replace(keys=keys, args=args)]

    @_guarded
    def list_runs(
        self, user: str | None = None, *, job: str | None = None,
        states: Iterable[RunState] | None = None, limit: int = 100,
    ) -> list[Run]:
        wanted = set(states) if states is not None else None
        if wanted is not None and not any(s.finished for s in wanted):
            ids = [i.decode() for i in self.redis.smembers(P + "active")]
            scores = dict(zip(ids, self.redis.zmscore(P + "runs", ids), strict=True)
                          ) if ids else {}
            runs = [r for r in self._runs(ids) if user is None or r.user == user]
            runs.sort(key=lambda r: scores.get(r.id) or 0.0, reverse=True)
            return [r for r in runs if (job is None or r.job == job) and r.state in wanted
                    ][:limit]
        key = P + "runs" + (":" + user if user is not None else "")
        found: list[Run] = []
        start, page = 0, max(limit, 100)
        while len(found) < limit:
            ids = [i.decode() for i in self.redis.zrevrange(key, start, start + page - 1)]
            if not ids:
                break
            found += [r for r in self._runs(ids) if (job is None or r.job == job)
                      and (wanted is None or r.state in wanted)]
            start += page
        return found[:limit]

    @_guarded
    def forget_old_runs(self, user: str, keep: int) -> list[str]:
        # Past the newest `keep`, a window at a time: a user has only a few runs going,
        # and this runs at every finish, so there are rarely more than one or two.
        ids = [i.decode() for i in self.redis.zrevrange(P + "runs:" + user, keep, keep + 999)]
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for run_id in ids:
                pipe.hget(P + "run:" + run_id, "state")
            states = pipe.execute()
        old = [run_id for run_id, state in zip(ids, states, strict=True)
               if state is None or state.decode() in FINISHED]
        for run_id in old:  # the output first: its bytes leave the budget's total
            self._drop_output(keys=[P + "out:" + run_id, P + "end:" + run_id,
                                    P + "low:" + run_id, P + "ob", P + "obt"], args=[run_id])
        if old:
            with self.redis.pipeline(transaction=False) as pipe:
                for run_id in old:
                    pipe.delete(*(P + kind + run_id for kind in (
                        "run:", "out:", "end:", "wr:", "stop:", "hb:", "low:", "in:",
                        "inb:", "inx:", "blob:")))
                pipe.zrem(P + "runs", *old)
                pipe.zrem(P + "runs:" + user, *old)
                pipe.execute()
        return old

    def _runs(self, ids: list[str]) -> list[Run]:
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hget(P + "run:" + run_id, "json")
        return [Run.from_json(json.loads(raw)) for raw in pipe.execute() if raw]

    # -- blobs (uploads and artifacts) ----------------------------------------------------
    @_guarded
    def put_blob(self, run_id: str, name: str, data: bytes) -> None:
        self.redis.hset(P + "blob:" + run_id, name, bytes(data))

    @_guarded
    def get_blob(self, run_id: str, name: str) -> bytes | None:
        data = self.redis.hget(P + "blob:" + run_id, name)
        return bytes(data) if data is not None else None

    @_guarded
    def list_blobs(self, run_id: str) -> dict[str, int]:
        key = P + "blob:" + run_id
        names = self.redis.hkeys(key)
        if not names:
            return {}
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hstrlen(key, name)
            sizes = pipe.execute()
        return {name.decode(): int(size) for name, size in zip(names, sizes, strict=True)}

    @_guarded
    def delete_blobs(self, run_id: str) -> None:
        self.redis.delete(P + "blob:" + run_id)

    # -- stop requests and heartbeats ------------------------------------------------------
    @_guarded
    def request_stop(self, run_id: str) -> None:
        self.redis.set(P + "stop:" + run_id, 1, ex=7 * 86_400)

    @_guarded
    def stop_requested(self, run_id: str) -> bool:
        return bool(self._quick.exists(P + "stop:" + run_id))

    @_guarded
    def beat(self, run_id: str, ttl: float) -> None:
        self.redis.set(P + "hb:" + run_id, 1, px=int(ttl * 1000))

    @_guarded
    def beat_many(self, run_ids: list[str], ttl: float) -> None:
        if not run_ids:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.set(P + "hb:" + run_id, 1, px=int(ttl * 1000))
            pipe.execute()

    @_guarded
    def executor_alive(self, run_id: str) -> bool:
        return bool(self.redis.exists(P + "hb:" + run_id))

    # -- input -------------------------------------------------------------------------------
    @_guarded
    def send_input(self, run_id: str, text: str | None, *,
                   max_queued: int = DEFAULT_MAX_QUEUED_INPUT) -> InputOutcome:
        item = "e" if text is None else "t" + text
        size = 0 if text is None else len(text.encode())
        reply = self._send_input(
            keys=[P + "in:" + run_id, P + "inx:" + run_id, P + "inb:" + run_id],
            args=[item, size, max_queued, INPUT_TTL_SECONDS])
        outcome: InputOutcome = reply.decode()
        return outcome

    @_guarded
    def take_input(self, run_id: str, timeout: float) -> str | None:
        key = P + "in:" + run_id
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raw = self.redis.lpop(key)
            else:  # BLPOP's timeout 0 would wait for ever: always a positive slice
                popped = self.redis.blpop([key], timeout=max(min(left, INPUT_WAIT_SLICE),
                                                             0.01))
                raw = popped[1] if popped else None
            if raw is not None:
                if raw[:1] == b"e":
                    return ""
                self.redis.decrby(P + "inb:" + run_id, len(raw) - 1)
                return bytes(raw[1:]).decode()
            if left <= INPUT_WAIT_SLICE:
                return None

    @_guarded
    def close_input(self, run_id: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(P + "inx:" + run_id, 1, ex=INPUT_TTL_SECONDS)
            pipe.delete(P + "in:" + run_id, P + "inb:" + run_id)
            pipe.execute()

    # -- output ------------------------------------------------------------------------------
    @_guarded
    def append_output(self, run_id: str, lines: list[Line], epoch_ms: int, *,
                      writer: str | None = None, offset: int = 0) -> int:
        if not lines:
            return self.output_end(run_id)
        end = self._append_lines(run_id, lines, epoch_ms, writer, offset)
        self.redis.publish(OUTPUT_CHANNEL, run_id)
        self.output_changed.set()
        return end

    @_guarded
    def append_outputs(self, batches: list[OutputBatch], epoch_ms: int) -> list[int]:
        """As :meth:`~..core.ports.OutputLog.append_outputs`: each batch is its own call
        of the append script (numbered, so one sent again after a lost reply is skipped),
        all of them in one pipeline: a pump round that found lines of 100 runs waits for
        one round trip, not 100 in a row (docs/performance.md, "The pump's appends in one
        pipeline"). A batch the pipeline did not finish (a reply that says an earlier
        attempt had stored some of its lines, an error such as a script Redis no longer
        has) is finished on its own, as :meth:`append_output` does. The other processes
        hear of the runs written in one round trip at the end.

        Only batches of one call each, of writers that have one batch each, go in the
        pipeline: the rest of a batch finished on its own then follows every line that
        writer gave before. Otherwise (a run's lines kept through an outage, more than
        one call's worth) the batches are appended one after the other, in order."""
        writers = [writer for _, lines, writer, _ in batches if lines and writer]
        if len(set(writers)) < len(writers) or any(
                len(lines) > CALL_LINES for _, lines, _, _ in batches):
            ends = [self._append_lines(run_id, lines, epoch_ms, writer, offset) if lines
                    else self.output_end(run_id) for run_id, lines, writer, offset in batches]
            self._tell_written(batches)
            return ends
        calls = []  # (index, lines, writer, offset) of each script call queued
        with self.redis.pipeline(transaction=False) as pipe:
            for index, (run_id, lines, writer, offset) in enumerate(batches):
                if not lines:
                    continue
                writer = writer or uuid.uuid4().hex  # numbered, as _append_lines says
                keys, args = self._append_call(run_id, lines, epoch_ms, writer, offset)
                pipe.evalsha(self._append.sha, len(keys), *keys, *args)
                calls.append((index, lines, writer, offset))
            replies = pipe.execute(raise_on_error=False) if calls else []
        ends = [0] * len(batches)
        budget = 0
        for (index, lines, writer, offset), reply in zip(calls, replies, strict=True):
            run_id = batches[index][0]
            if isinstance(reply, Exception):  # NOSCRIPT after a restart, say: on its own
                ends[index] = self._append_lines(run_id, lines, epoch_ms, writer, offset)
                continue
            end, given, total = map(int, reply)
            budget = max(budget, total)
            if end < 0:  # stored by an attempt whose reply was lost: the rest on its own
                rest = lines[given - offset:]
                end = self._append_lines(run_id, rest, epoch_ms, writer, given) if rest else 0
            ends[index] = end or self.output_end(run_id)
        if self.output_budget_bytes is not None and budget > self.output_budget_bytes:
            self._enforce_output_budget(budget)
        for index, (run_id, lines, _, _) in enumerate(batches):
            if not lines:
                ends[index] = self.output_end(run_id)
        self._tell_written(batches)
        return ends

    def _tell_written(self, batches: list[OutputBatch]) -> None:
        """Tell every process (``output_changed`` here, a publish for the others, in one
        round trip) which runs of ``batches`` were written."""
        written = list(dict.fromkeys(run_id for run_id, lines, _, _ in batches if lines))
        if written:
            with self.redis.pipeline(transaction=False) as pipe:
                for run_id in written:
                    pipe.publish(OUTPUT_CHANNEL, run_id)
                pipe.execute()
            self.output_changed.set()

    def _append_call(self, run_id: str, part: list[Line], epoch_ms: int, writer: str,
                     offset: int) -> tuple[list[str], list[Any]]:
        """The append script's keys and arguments for ``part`` (at most
        :data:`CALL_LINES` lines)."""
        keys = [P + "out:" + run_id, P + "end:" + run_id, P + "wr:" + run_id, P + "ob",
                P + "obt"]
        args: list[Any] = [self.retention_lines, epoch_ms, writer, offset, run_id]
        for first in range(0, len(part), CHUNK_LINES):
            chunk = part[first:first + CHUNK_LINES]
            args += [len(chunk), _pack(chunk, self.compress)]
        return keys, args

    def _append_lines(self, run_id: str, lines: list[Line], epoch_ms: int,
                      writer: str | None, offset: int) -> int:
        """Run the append script for ``lines`` (not empty); the run's new end seq."""
        # A call of its own still needs a writer: redis-py sends the script again when a
        # connection breaks, which may be after Redis ran it.
        writer = writer or uuid.uuid4().hex
        end = total = 0
        while lines:
            part = lines[:CALL_LINES]  # bounded script arguments
            keys, args = self._append_call(run_id, part, epoch_ms, writer, offset)
            reply, given, total = map(int, self._append(keys=keys, args=args))
            if reply < 0:  # stored by an attempt whose reply was lost: skip those lines
                lines, offset = lines[given - offset:], given
                continue
            end = reply
            lines, offset = lines[len(part):], given
        if self.output_budget_bytes is not None and total > self.output_budget_bytes:
            self._enforce_output_budget(total)
        return end or self.output_end(run_id)

    def _enforce_output_budget(self, total: int) -> None:
        """Past REDIS_OUTPUT_BUDGET_BYTES, drop the oldest finished runs' output (the
        records stay) until the total is within it again."""
        assert self.output_budget_bytes is not None
        dropped: list[str] = []
        start = 0
        while total > self.output_budget_bytes:
            ids = [i.decode() for i in self.redis.zrange(P + "runs", start, start + 99)]
            if not ids:
                break
            start += len(ids)
            with self.redis.pipeline(transaction=False) as pipe:
                for run_id in ids:
                    pipe.hget(P + "run:" + run_id, "state")
                    pipe.hget(P + "ob", run_id)
                replies = pipe.execute()
            for run_id, state, size in zip(ids, replies[::2], replies[1::2], strict=True):
                if total <= self.output_budget_bytes:
                    break
                if state is None or state.decode() not in FINISHED or not int(size or 0):
                    continue
                total -= int(self._drop_output(keys=[
                    P + "out:" + run_id, P + "end:" + run_id, P + "low:" + run_id, P + "ob",
                    P + "obt"], args=[run_id]))
                dropped.append(run_id)
        if dropped:
            log.warning("REDIS_OUTPUT_BUDGET_BYTES (%d) reached: dropped the output of %d "
                        "finished runs, oldest first (%s)", self.output_budget_bytes,
                        len(dropped), ", ".join(dropped[:5]) + (" …" if len(dropped) > 5
                                                                 else ""))

    @_guarded
    def read_output(
        self, run_id: str, after: int, *, max_lines: int = 1000, max_chars: int = 65_536,
    ) -> OutputSlice:
        """As :meth:`~..core.ports.OutputLog.read_output`: the run's end and its first
        chunks in one round trip (see :meth:`read_outputs`), more chunks only if the
        slice has room for them."""
        return self.read_outputs([(run_id, after)], max_lines=max_lines,
                                 max_chars=max_chars)[0]

    @_guarded
    def read_outputs(
        self, reads: Sequence[tuple[str, int]], *, max_lines: int = 1000,
        max_chars: int = 65_536,
    ) -> list[OutputSlice]:
        """As :meth:`~..core.ports.OutputLog.read_outputs`: one pipeline asks each run's
        end (MGET) and its first :data:`FIRST_CHUNKS` chunks after ``after`` (XRANGE), so
        that a turn of the delivery that has new lines of 100 runs to send makes one
        round trip, not two hundred. A slice whose chunks did not all come with it reads
        the rest as :meth:`_fill` does, in doubling steps.

        The MGET goes before the XRANGE on the one connection, so the chunks read hold
        at least the lines up to the end read (an append sets both in one script)."""
        if not reads:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for run_id, after in reads:
                pipe.mget(P + "end:" + run_id, P + "low:" + run_id)
                pipe.xrange(P + "out:" + run_id, min=f"(0-{max(after, 0)}", max="+",
                            count=FIRST_CHUNKS)
            replies = pipe.execute()
        return [self._fill(run_id, after, replies[2 * i], replies[2 * i + 1], max_lines,
                           max_chars) for i, (run_id, after) in enumerate(reads)]

    def _fill(self, run_id: str, after: int, ends: list[bytes | None],
              entries: list[tuple[bytes, dict[bytes, bytes]]], max_lines: int,
              max_chars: int) -> OutputSlice:
        """The slice of ``run_id`` after ``after``, from its end and low mark (``ends``)
        and the first chunks read after ``after`` (``entries``); reads more chunks while
        the slice has room and the end is not reached."""
        after = max(after, 0)
        end_raw, low_raw = ends
        end_seq = int(end_raw or 0)
        lowest = max(end_seq - self.retention_lines + 1, 1, int(low_raw or 0))
        start = max(after + 1, lowest)
        lines: list[Line] = []
        times: list[tuple[int, int]] = []
        total = 0
        count = FIRST_CHUNKS
        full = False
        last = after
        while True:
            for entry_id, fields in entries:
                last = int(entry_id.split(b"-")[1])
                if last < start:
                    continue  # below the retention or the budget's low mark: dropped
                chunk = _unpack(fields[b"p"])
                first = last - len(chunk) + 1
                ms = int(fields[b"m"])
                wanted = chunk[max(start - first, 0):]
                if not times or times[-1][1] != ms:
                    times.append((len(lines), ms))
                total, full = take_fitting(lines, wanted, total, max_lines, max_chars)
                if full:
                    break
            # Past the end read above, the slice is done; so it is when a read found
            # no more chunks.
            if full or not entries or last >= end_seq:
                break
            count = min(count * 2, 64)
            entries = self.redis.xrange(P + "out:" + run_id, min=f"(0-{max(last, start - 1)}",
                                        max="+", count=count)
        if not lines:
            if start > end_seq >= after + 1:  # all dropped by the output budget
                return OutputSlice(start, [], end_seq, start - (after + 1))
            return OutputSlice(first_seq=after + 1, lines=[], end_seq=end_seq)
        return OutputSlice(start, lines, end_seq, start - (after + 1), times)

    @_guarded
    def output_end(self, run_id: str) -> int:
        return int(self.redis.get(P + "end:" + run_id) or 0)

    @_guarded
    def output_ends(self, run_ids: Sequence[str]) -> list[int]:
        """As :meth:`~..core.ports.OutputLog.output_ends`: one MGET."""
        if not run_ids:
            return []
        return [int(end or 0) for end in self.redis.mget([P + "end:" + i for i in run_ids])]

    def _listen(self) -> None:
        """Wake this process's delivery loop when any process appends output."""
        while not self._closing.is_set():
            pubsub = None
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(OUTPUT_CHANNEL)
                while not self._closing.is_set():
                    if pubsub.get_message(timeout=0.25) is not None:
                        self.output_changed.set()
            except redis.RedisError:
                self._closing.wait(0.5)  # Redis is away: try again soon
            finally:
                if pubsub is not None:
                    with contextlib.suppress(redis.RedisError):
                        pubsub.close()

    # -- sessions and tokens -------------------------------------------------------------------
    @_guarded
    def load_session(self, sid: str) -> dict[str, Any] | None:
        raw = self.redis.get(P + "sess:" + sid)
        data = json.loads(raw) if raw else None
        return data if isinstance(data, dict) else None

    @_guarded
    def save_session(self, sid: str, data: dict[str, Any], ttl: int) -> None:
        self.redis.set(P + "sess:" + sid, json.dumps(data), ex=max(int(ttl), 1))

    @_guarded
    def delete_session(self, sid: str) -> None:
        self.redis.delete(P + "sess:" + sid)

    @_guarded
    def save_tokens(self, user: str, blob: bytes) -> None:
        self.redis.set(P + "tok:" + user, bytes(blob))

    @_guarded
    def load_tokens(self, user: str) -> bytes | None:
        raw = self.redis.get(P + "tok:" + user)
        return bytes(raw) if raw is not None else None

    @_guarded
    def delete_tokens(self, user: str) -> None:
        self.redis.delete(P + "tok:" + user)

    @_guarded
    def replace_tokens(self, user: str, expected: bytes | None, blob: bytes | None) -> bool:
        return bool(self._replace_tokens(keys=[P + "tok:" + user], args=[
            "0" if expected is None else "1", b"" if expected is None else bytes(expected),
            "0" if blob is None else "1", b"" if blob is None else bytes(blob)]))

    @_guarded
    def sessions_and_tokens(self, session_ids: Iterable[str],
                            users: Iterable[str]) -> tuple[set[str], dict[str, bytes]]:
        session_ids, users = list(session_ids), list(users)
        if not session_ids and not users:
            return set(), {}
        with self.redis.pipeline(transaction=False) as pipe:
            for sid in session_ids:
                pipe.exists(P + "sess:" + sid)
            for user in users:
                pipe.get(P + "tok:" + user)
            found = pipe.execute()
        live = {sid for sid, n in zip(session_ids, found[:len(session_ids)], strict=True) if n}
        blobs = {user: bytes(blob) for user, blob in zip(
            users, found[len(session_ids):], strict=True) if blob is not None}
        return live, blobs

    # -- share links: a hash per share (by its token's hash) and the id pointing at it,
    # both expiring with the share; a set of ids per run, kept while any share lives.
    @_guarded
    def create_share(self, share: dict[str, Any]) -> None:
        at = max(int(share["expires_at"]) + 1, 1)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(P + "share:" + share["token_hash"], mapping={
                k: str(v) for k, v in share.items()})
            pipe.expireat(P + "share:" + share["token_hash"], at)
            pipe.set(P + "shareid:" + share["id"], share["token_hash"], exat=at)
            pipe.sadd(P + "shares:" + share["run_id"], share["id"])
            pipe.expireat(P + "shares:" + share["run_id"], at, gt=True)
            pipe.expireat(P + "shares:" + share["run_id"], at, nx=True)
            pipe.execute()

    def _share(self, raw: dict[bytes, bytes]) -> dict[str, Any] | None:
        if not raw:
            return None
        share: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
        share["expires_at"] = float(share["expires_at"])
        return share if share["expires_at"] > time.time() else None

    @_guarded
    def get_share(self, token_hash: str) -> dict[str, Any] | None:
        return self._share(self.redis.hgetall(P + "share:" + token_hash))

    @_guarded
    def list_shares(self, run_id: str) -> list[dict[str, Any]]:
        ids = [i.decode() for i in self.redis.smembers(P + "shares:" + run_id)]
        hashes = self.redis.mget([P + "shareid:" + i for i in ids]) if ids else []
        with self.redis.pipeline(transaction=False) as pipe:
            for token_hash in hashes:
                pipe.hgetall(P + "share:" + (token_hash or b"").decode())
            found = [self._share(raw) for raw in pipe.execute()]
        gone = [i for i, hashed in zip(ids, hashes, strict=True) if hashed is None]
        if gone:  # expired: their ids leave the run's set
            self.redis.srem(P + "shares:" + run_id, *gone)
        return sorted((s for s in found if s is not None and s["run_id"] == run_id),
                      key=lambda s: s["expires_at"])

    @_guarded
    def delete_share(self, share_id: str) -> None:
        token_hash = self.redis.get(P + "shareid:" + share_id)
        if token_hash is None:
            return
        share = self.redis.hgetall(P + "share:" + token_hash.decode())
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(P + "share:" + token_hash.decode(), P + "shareid:" + share_id)
            if share.get(b"run_id"):
                pipe.srem(P + "shares:" + share[b"run_id"].decode(), share_id)
            pipe.execute()

    # -- schedules -------------------------------------------------------------------------
    @_guarded
    def create_schedule(self, schedule: Schedule, *, per_user: int | None = None) -> bool:
        wake = schedule.wake_at
        return bool(self._create_schedule(keys=[
            P + "schedule:" + schedule.id, P + "scheds:" + schedule.user, P + "sched-due"],
            args=[schedule.id, json.dumps(schedule.to_json()), schedule.version,
                  schedule.user, "" if wake is None else repr(wake),
                  -1 if per_user is None else per_user]))

    @_guarded
    def get_schedule(self, schedule_id: str) -> Schedule | None:
        raw = self.redis.hget(P + "schedule:" + schedule_id, "json")
        return Schedule.from_json(json.loads(raw)) if raw else None

    def _schedules(self, ids: list[str]) -> list[Schedule]:
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for schedule_id in ids:
                pipe.hget(P + "schedule:" + schedule_id, "json")
            return [Schedule.from_json(json.loads(raw)) for raw in pipe.execute() if raw]

    @_guarded
    def list_schedules(self, user: str) -> list[Schedule]:
        ids = [i.decode() for i in self.redis.smembers(P + "scheds:" + user)]
        return sorted((s for s in self._schedules(ids) if s.user == user),
                      key=lambda s: (s.created_at, s.id))

    @_guarded
    def replace_schedule(self, schedule: Schedule, expected_version: int) -> bool:
        wake = schedule.wake_at
        return bool(self._replace_schedule(
            keys=[P + "schedule:" + schedule.id, P + "sched-due"],
            args=[schedule.id, json.dumps(schedule.to_json()), schedule.version,
                  expected_version, "" if wake is None else repr(wake)]))

    @_guarded
    def replace_schedules(self, saves: list[tuple[Schedule, int]]) -> list[bool]:
        if not saves:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for schedule, expected in saves:
                wake = schedule.wake_at
                self._replace_schedule(
                    keys=[P + "schedule:" + schedule.id, P + "sched-due"],
                    args=[schedule.id, json.dumps(schedule.to_json()), schedule.version,
                          expected, "" if wake is None else repr(wake)], client=pipe)
            return [bool(done) for done in pipe.execute()]

    @_guarded
    def delete_schedule(self, schedule_id: str) -> bool:
        user = self.redis.hget(P + "schedule:" + schedule_id, "user")
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(P + "schedule:" + schedule_id)
            pipe.zrem(P + "sched-due", schedule_id)
            if user is not None:
                pipe.srem(P + "scheds:" + user.decode(), schedule_id)
            return bool(pipe.execute()[0])

    @_guarded
    def due_schedules(self, now: float, limit: int = 1000) -> list[Schedule]:
        ids = [i.decode() for i in self.redis.zrangebyscore(
            P + "sched-due", "-inf", now, start=0, num=max(limit, 1))]
        return self._schedules(ids)

    @_guarded
    def next_wake(self) -> float | None:
        first = self.redis.zrange(P + "sched-due", 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    @_guarded
    def claim_fire(self, key: str, ttl: float) -> bool:
        return bool(self.redis.set(P + "sched:" + key, b"1", nx=True,
                                   px=max(int(ttl * 1000), 1)))

    @_guarded
    def claim_fires(self, keys: list[str], ttl: float) -> list[bool]:
        if not keys:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(P + "sched:" + key, b"1", nx=True, px=max(int(ttl * 1000), 1))
            return [bool(done) for done in pipe.execute()]
    # -- notification preferences (docs/notifications.md) ----------------------------------
    @_guarded
    def load_preferences(self, user: str) -> dict[str, Any] | None:
        """The preferences ``user`` saved (a JSON object), or None."""
        raw = self.redis.get(P + "pref:" + user)
        found: dict[str, Any] | None = json.loads(raw) if raw is not None else None
        return found

    @_guarded
    def save_preferences(self, user: str, data: dict[str, Any]) -> None:
        """Keep ``data`` (JSON-serialisable) as ``user``'s preferences, over what was there."""
        self.redis.set(P + "pref:" + user, json.dumps(data))
    # -- the audit trail: a capped stream, one entry per record, trimmed at each append
    # to the newest ``max_entries`` (MAXLEN) and to ``max_age`` (MINID: a stream id
    # starts with a time in milliseconds, here the entry's ``at``; an entry whose ``at``
    # is older than the stream's newest id, another process's clock, takes Redis's).
    @_guarded
    def append_audit(self, entry: dict[str, Any], *, max_age: float | None = None,
                     max_entries: int | None = None) -> str:
        fields = {"json": json.dumps(entry)}
        at_ms = max(int(float(entry.get("at", time.time())) * 1000), 1)
        try:
            added = self.redis.xadd(P + "audit", fields, id=f"{at_ms}-*",
                                    maxlen=max_entries, approximate=False)
        except redis.ResponseError:  # smaller than the newest id
            added = self.redis.xadd(P + "audit", fields, maxlen=max_entries,
                                    approximate=False)
        if max_age is not None:
            self.redis.xtrim(P + "audit", minid=int((time.time() - max_age) * 1000),
                             approximate=False)
        return str(added.decode())

    @_guarded
    def read_audit(self, *, before: str | None = None, limit: int = 100
                   ) -> list[dict[str, Any]]:
        top = "+" if before is None else "(" + before
        try:
            entries = self.redis.xrevrange(P + "audit", top, "-", count=limit)
        except redis.ResponseError:  # not a stream id: nothing before it
            return []
        return [{**json.loads(fields[b"json"]), "id": entry_id.decode()}
                for entry_id, fields in entries]

    # -- lifecycle ---------------------------------------------------------------------------
    def healthy(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._closing.set()
        if self._listener is not None:
            self._listener.join(2)
        self._quick.close()
        self.redis.close()
