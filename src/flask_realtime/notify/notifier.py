"""The notifier: tells a run's owner that it ended, off the run's thread, at least once.

:class:`Notifier` listens to the run service (``RunService.subscribe``). When a run
reaches a final state it puts one small task on its queue and returns: the run's
thread (or the worker's, or the reaper's) never waits for Webex or a webhook. One of
the notifier's own threads then reads the owner's preferences, decides the channels
(``webex``, ``webhook``), writes them on the run as ``pending``
(``Run.notifications``, through ``RunService.annotate``, so the page and the API show
them), and delivers each as a task of its own: a channel that fails or waits for its
retry never holds up another one, nor another run's.

Exactly one sender: the process whose compare-and-set moved the run to its final
state (``RunService.transition``) is the only one whose listeners hear that move. With
the thread runner it is the web process executing the run; with RQ, the worker that
executed it (or the web process whose stop or executor-loss check ended it). No process
is asked to watch other processes' runs, and no two can both believe they finished it.
An RQ worker executes each run in a work-horse, a fork that exits when the job returns:
there the notifier only plans (the ``pending`` record, in the run's thread, a few
store round trips), and the worker itself delivers once the horse has exited
(:meth:`Notifier.deliver_pending`, called by ``RunWorker.execute_job``).

At least once: every try carries the de-duplication key ``<run id>:<channel>``
(the webhook's ``X-Flask-Realtime-Delivery`` header and ``delivery`` field); a try
that got no answer, or an answer that says "later" (429, 5xx), is tried again after
``NOTIFY_BACKOFF_SECONDS``, doubled each time, ``NOTIFY_ATTEMPTS`` tries in all, then
recorded ``failed`` with the reason. A channel already recorded ``sent`` is never sent
again. Deliveries still ``pending`` when the process stops are taken up again when the
next notifier on that store starts (:meth:`Notifier.recover`): a notification may then
arrive twice, with the same key, never not at all once it was planned.

The interface others call (schedules, for instance):

* ``Notifier.run_finished(run)``: tell ``run``'s owner that it ended, if the run's
  ``notify`` (or their default) asks for it. Returns at once.
* ``Notifier.tell(user, subject, text, key=None)``: a notice that is not about one
  run (a schedule paused itself) through the same channels; not recorded on a run,
  its outcome is logged. Returns at once.
* ``Notifier.close()``: called by ``System.close()``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..ciphers import Cipher
from ..core.ports import RunStore, StoreUnavailableError
from ..core.runs import Notify, Run, RunState, check_notify, now_iso
from ..core.service import RunService
from ..core.system import System
from . import webex, webhook
from .preferences import Preferences, PreferenceStore, load
from .webex import Outcome

log = logging.getLogger(__name__)
THREAD_PREFIX = "flask-realtime-notify"


class _NoURLsFromNotifier(logging.Filter):
    """httpx logs each request's URL at INFO; a webhook's URL may hold a secret of its
    receiver (``?token=``), so the notifier's requests are not logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName or "").startswith(THREAD_PREFIX)


logging.getLogger("httpx").addFilter(_NoURLsFromNotifier())

CHANNELS = ("webex", "webhook")
MAX_BACKOFF_SECONDS = 300.0
#: Runs that ended this long ago or less have their ``pending`` deliveries taken up
#: again by :meth:`Notifier.recover`.
RECOVER_SECONDS = 3600.0
RECOVER_RUNS = 1000
CLOSE_WAIT_SECONDS = 5.0

#: Given a user, a valid Webex access token of their own login (``TokenVault
#: .access_token``); raises when there is none.
UserToken = Callable[[str], str]


@dataclass(order=True)
class _Task:
    due: float
    seq: int
    kind: str = field(compare=False)  # "plan", "deliver", "notice", "recover"
    run_id: str = field(compare=False, default="")
    channel: str = field(compare=False, default="")
    attempt: int = field(compare=False, default=0)
    notice: tuple[str, str, str, str] | None = field(compare=False, default=None)


class Notifier:
    """Tells owners how their runs ended (module docstring). ``config`` is read at each
    delivery (demo mode sets the simulator's address after the app is built):
    ``WEBEX_BASE_URL``, ``WEBEX_BOT_TOKEN``, ``PUBLIC_URL``, ``WEBEX_REDIRECT_URI``
    and the ``NOTIFY_*`` settings. ``fernet`` decrypts webhook secrets; ``user_token``
    gives a user's own Webex token (messages into a space they picked)."""

    def __init__(self, service: RunService, store: PreferenceStore, config: Mapping[str, Any],
                 *, fernet: Cipher, user_token: UserToken | None = None,
                 client: httpx.Client | None = None) -> None:
        self.service = service
        self.store = store
        self.config = config
        self.fernet = fernet
        self.user_token = user_token
        self.client = client or httpx.Client(follow_redirects=False, trust_env=False)
        self._heap: list[_Task] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._record_lock = threading.Lock()  # one read-modify-write of a run at a time
        self._busy = 0
        #: Written on the runs this notifier plans (``sender``), kept by its forks: the
        #: worker delivers only what it or its own work-horses planned.
        self.identity = secrets.token_hex(6)
        #: In a fork of the process that made this notifier (an RQ work-horse): plan
        #: only, in the calling thread; the parent delivers (:meth:`deliver_pending`).
        self._forked = False
        me = weakref.ref(self)  # the hook must not keep a closed notifier alive

        def forked() -> None:
            notifier = me()
            if notifier is not None:
                notifier._after_fork()

        os.register_at_fork(after_in_child=forked)

    def _after_fork(self) -> None:
        """A fork has none of its parent's threads: start afresh, planning only."""
        self._forked = True
        self._heap, self._threads, self._busy = [], [], 0
        self._cond = threading.Condition()
        self._record_lock = threading.Lock()

    # -- the interface ---------------------------------------------------------------------
    def attach(self, system: System[Any]) -> Notifier:
        """Listen to ``system``'s run service, be closed by its ``close()``, and take up
        the deliveries left ``pending`` by a notifier that stopped (:meth:`recover`)."""
        system.service.subscribe(self.run_changed)
        system.closers.append(self.close)
        self._put(_Task(time.monotonic(), next(self._seq), "recover"))
        return self

    def run_changed(self, run: Run) -> None:
        """The run listener: a run that has just ended (no notifications planned yet)
        is handed to :meth:`run_finished`; anything else is ignored."""
        if run.state.finished and not run.notifications:
            self.run_finished(run)

    def run_finished(self, run: Run) -> None:
        """Tell ``run``'s owner that it ended, as its ``notify`` (or their default)
        asks; returns at once (in a work-horse, once the plan is recorded)."""
        if self._closing:
            log.info("run %s ended after the notifier closed: its owner is not told", run.id)
            return
        if self._forked:
            try:
                self._plan(run.id, deliver=False)
            except Exception:
                log.exception("run %s: its notifications could not be planned", run.id)
            return
        if not self._put(_Task(time.monotonic(), next(self._seq), "plan", run.id)):
            log.warning("run %s: the notification queue is full: its owner is not told",
                        run.id)
            self._note(run.id, "queue", "failed", "Too many notifications were waiting: "
                       "this one was dropped (NOTIFY_QUEUE_SIZE).", 0)

    def tell(self, user: str, subject: str, text: str, *, key: str | None = None) -> None:
        """Send ``user`` a notice through their channels (Webex if they asked for it,
        their webhook), whatever their ``notify``; returns at once."""
        key = key or f"notice:{secrets.token_urlsafe(9)}"
        for channel in CHANNELS:
            if not self._put(_Task(time.monotonic(), next(self._seq), "notice",
                                   channel=channel, notice=(user, subject, text, key))):
                log.warning("notice %s: the notification queue is full", key)

    def deliver_pending(self, run_id: str) -> int:
        """Queue the run's deliveries still ``pending`` that this notifier's work-horse
        planned (not another process's: that one delivers them); returns how many."""
        run = self.service.store.get_run(run_id)
        count = 0
        for channel, entry in (run.notifications.items() if run is not None else ()):
            if (channel in CHANNELS and entry.get("status") == "pending"
                    and entry.get("sender") == self.identity):
                count += self._put(_Task(time.monotonic(), next(self._seq), "deliver",
                                         run_id, channel, int(entry.get("attempts") or 0)))
        return count

    def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """End the threads (a try in progress may take its timeout); what is still
        waiting stays ``pending`` on its run, for :meth:`recover` at the next start."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))
        self.client.close()

    def idle(self) -> bool:
        """Whether nothing is waiting nor being delivered (for tests and shutdown)."""
        with self._cond:
            return not self._heap and not self._busy

    def link(self, run_id: str | None = None) -> str | None:
        """The absolute link to a run (or the console): ``PUBLIC_URL``, else the origin
        of ``WEBEX_REDIRECT_URI``; None with neither."""
        base = self.config.get("PUBLIC_URL")
        if not base and self.config.get("WEBEX_REDIRECT_URI"):
            parts = urlsplit(str(self.config["WEBEX_REDIRECT_URI"]))
            base = f"{parts.scheme}://{parts.netloc}" if parts.netloc else None
        if not base:
            return None
        return f"{str(base).rstrip('/')}/" + (f"#run={run_id}" if run_id else "")

    def recover(self) -> int:
        """Take over the deliveries still ``pending`` on runs that ended in the last
        :data:`RECOVER_SECONDS` (a notifier stopped before it was done) and queue them;
        returns how many. Each is claimed first (its ``sender`` becomes this notifier's),
        so of several processes starting at once one sends it, and a notifier still
        retrying it gives it up at its next try."""
        store: RunStore = self.service.store
        cutoff = time.time() - RECOVER_SECONDS
        finished = [s for s in RunState if s.finished]
        count = 0
        for run in store.list_runs(None, states=finished, limit=RECOVER_RUNS):
            ended = webex.parse_time(run.ended_at)
            if ended is None or ended.timestamp() < cutoff:
                continue
            for channel, entry in run.notifications.items():
                if (channel in CHANNELS and entry.get("status") == "pending"
                        and self._claim(run.id, channel, entry.get("sender"))):
                    self._put(_Task(time.monotonic(), next(self._seq), "deliver", run.id,
                                    channel, int(entry.get("attempts") or 0)))
                    count += 1
        if count:
            log.info("notifications: %d deliveries left pending were queued again", count)
        return count

    def _claim(self, run_id: str, channel: str, seen: object) -> bool:
        """Make this notifier the ``sender`` of a pending delivery whose sender is still
        ``seen``; whether it is now ours."""
        def claim(current: Run) -> Run | None:
            entry = current.notifications.get(channel)
            if entry is None or entry.get("status") != "pending" or entry.get("sender") != seen:
                return None
            return replace(current, notifications={
                **current.notifications, channel: {**entry, "sender": self.identity}})

        with self._record_lock:
            return self.service.annotate(run_id, claim) is not None

    # -- the queue -------------------------------------------------------------------------
    def _put(self, task: _Task) -> bool:
        with self._cond:
            if self._closing or len(self._heap) >= int(self.config.get("NOTIFY_QUEUE_SIZE",
                                                                        1000)):
                return False
            heapq.heappush(self._heap, task)
            self._start_threads()
            self._cond.notify()
            return True

    def _start_threads(self) -> None:
        if self._threads:
            return
        for n in range(int(self.config.get("NOTIFY_WORKERS", 2))):
            thread = threading.Thread(target=self._loop, name=f"{THREAD_PREFIX}-{n}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next(self) -> _Task | None:
        with self._cond:
            while not self._closing:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._busy += 1
                    return heapq.heappop(self._heap)
                self._cond.wait(self._heap[0].due - now if self._heap else None)
            return None

    def _loop(self) -> None:
        while (task := self._next()) is not None:
            try:
                self._do(task)
            except StoreUnavailableError as exc:
                log.warning("notification %s of run %s: the store is away (%s): trying "
                            "again later", task.kind, task.run_id, exc)
                self._again(task, None)
            except Exception:
                log.exception("notification %s of run %s failed", task.kind, task.run_id)
            finally:
                with self._cond:
                    self._busy -= 1

    def _again(self, task: _Task, retry_after: float | None) -> bool:
        """Put ``task`` back for its next try (its ``attempt`` already counted)."""
        base = float(self.config.get("NOTIFY_BACKOFF_SECONDS", 2.0))
        delay = min(max(base * 2 ** max(task.attempt - 1, 0), retry_after or 0.0),
                    MAX_BACKOFF_SECONDS)
        return self._put(replace(task, due=time.monotonic() + delay, seq=next(self._seq)))

    # -- the work --------------------------------------------------------------------------
    def _do(self, task: _Task) -> None:
        if task.kind == "plan":
            self._plan(task.run_id)
        elif task.kind == "deliver":
            self._deliver(task)
        elif task.kind == "notice":
            self._notice(task)
        elif task.kind == "recover":
            self.recover()

    def _plan(self, run_id: str, *, deliver: bool = True) -> None:
        run = self.service.store.get_run(run_id)
        if run is None or not run.state.finished or run.notifications:
            return
        prefs = load(self.store, run.user)
        when = check_notify(run.notify) or Notify(prefs.notify)
        if not when.wants(run.state):
            return
        channels = [c for c, on in (("webex", prefs.webex),
                                    ("webhook", prefs.webhook_url is not None)) if on]
        if not channels:
            return

        def plan(current: Run) -> Run | None:
            if current.notifications:
                return None  # another process planned it meanwhile (recovery)
            return replace(current, notifications={c: {
                "status": "pending", "reason": None, "attempts": 0, "at": now_iso(),
                "key": f"{current.id}:{c}", "sender": self.identity} for c in channels})

        with self._record_lock:
            planned = self.service.annotate(run.id, plan)
        if planned is not None and deliver:
            for channel in channels:
                self._put(_Task(time.monotonic(), next(self._seq), "deliver", run.id, channel))

    def _deliver(self, task: _Task) -> None:
        run = self.service.store.get_run(task.run_id)
        entry = run.notifications.get(task.channel) if run is not None else None
        if run is None or entry is None or entry.get("status") != "pending":
            return  # gone, or sent already (de-duplicated)
        if entry.get("sender", self.identity) != self.identity:
            return  # taken over by a notifier that started since (recover)
        prefs = load(self.store, run.user)
        key = f"{run.id}:{task.channel}"
        outcome = (self._webex_run(run, prefs) if task.channel == "webex"
                   else self._webhook_run(run, prefs, key))
        task = replace(task, attempt=task.attempt + 1)
        if outcome.sent:
            self._note(run.id, task.channel, "sent", None, task.attempt)
            log.info("run %s: its owner was told by %s", run.id, task.channel)
            return
        attempts = int(self.config.get("NOTIFY_ATTEMPTS", 5))
        if outcome.retry and task.attempt < attempts and self._again(task, outcome.retry_after):
            self._note(run.id, task.channel, "pending", outcome.reason, task.attempt)
            return
        self._note(run.id, task.channel, "failed", outcome.reason, task.attempt)
        log.warning("run %s: telling its owner by %s failed after %d tries: %s", run.id,
                    task.channel, task.attempt, outcome.reason)

    def _note(self, run_id: str, channel: str, status: str, reason: str | None,
              attempts: int) -> None:
        """Record how ``channel`` went on the run (``Run.notifications``)."""
        def note(current: Run) -> Run | None:
            entries = dict(current.notifications)
            sender = entries.get(channel, {}).get("sender", self.identity)
            entries[channel] = {"status": status, "reason": reason, "attempts": attempts,
                                "at": now_iso(), "key": f"{current.id}:{channel}",
                                "sender": sender}
            return replace(current, notifications=entries)

        with self._record_lock:
            self.service.annotate(run_id, note)

    def _notice(self, task: _Task) -> None:
        assert task.notice is not None
        user, subject, text, key = task.notice
        prefs = load(self.store, user)
        if task.channel == "webex":
            if not prefs.webex:
                return
            outcome = self._webex(user, prefs, webex.notice_markdown(subject, text,
                                                                     self.link()))
        else:
            if prefs.webhook_url is None:
                return
            body = {"event": "notice", "delivery": key, "user": user, "subject": subject,
                    "text": text, "link": self.link()}
            outcome = self._webhook(prefs, body, key)
        task = replace(task, attempt=task.attempt + 1)
        if outcome.sent:
            log.info("notice %s: %s was told by %s", key, user, task.channel)
        elif (outcome.retry and task.attempt < int(self.config.get("NOTIFY_ATTEMPTS", 5))
              and self._again(task, outcome.retry_after)):
            pass
        else:
            log.warning("notice %s: telling %s by %s failed: %s", key, user, task.channel,
                        outcome.reason)

    # -- the channels ----------------------------------------------------------------------
    def _webex_run(self, run: Run, prefs: Preferences) -> Outcome:
        return self._webex(run.user, prefs, webex.run_markdown(run, self.link(run.id)))

    def _webex(self, user: str, prefs: Preferences, markdown: str) -> Outcome:
        base = str(self.config["WEBEX_BASE_URL"])
        timeout = float(self.config.get("NOTIFY_TIMEOUT_SECONDS", 10.0))
        bot = self.config.get("WEBEX_BOT_TOKEN")
        if bot:
            return webex.send(self.client, base, str(bot),
                              {**webex.recipient(user), "markdown": markdown},
                              timeout=timeout, where="you")
        if not prefs.webex_room:
            return Outcome(False, "This server has no Webex bot, and you picked no space "
                                  "for your messages: pick one in your notification "
                                  "settings.")
        if self.user_token is None:
            return Outcome(False, "This server cannot send Webex messages with your login "
                                  "(login is off).")
        try:
            token = self.user_token(user)
        except StoreUnavailableError:
            raise
        except Exception as exc:  # TokenError: logged out, expired, Webex away
            return Outcome(False, f"Your Webex login cannot be used: {exc}")
        return webex.send(self.client, base, token,
                          {"roomId": prefs.webex_room, "markdown": markdown},
                          timeout=timeout, where="the space you picked")

    def _webhook_run(self, run: Run, prefs: Preferences, key: str) -> Outcome:
        record = run.to_json(lines=self.service.store.output_end(run.id))
        record.pop("notifications", None)
        return self._webhook(prefs, {"event": "run.finished", "delivery": key,
                                     "run": record, "link": self.link(run.id)}, key)

    def _webhook(self, prefs: Preferences, body: dict[str, Any], key: str) -> Outcome:
        if prefs.webhook_url is None:
            return Outcome(False, "The webhook was removed from your settings.")
        secret = prefs.secret(self.fernet)
        if secret is None:
            return Outcome(False, "The webhook's secret cannot be read (the server's key "
                                  "changed): set it again in your notification settings.")
        allowed = webhook.networks(self.config.get("NOTIFY_WEBHOOK_ALLOWED_NETWORKS") or [])
        try:
            target = webhook.check_url(prefs.webhook_url, allowed)
        except webhook.WebhookURLError as exc:
            return Outcome(False, str(exc))
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            status, wait = webhook.post(self.client, target, data, secret=secret, key=key,
                                        timeout=float(self.config.get(
                                            "NOTIFY_TIMEOUT_SECONDS", 10.0)))
        except httpx.HTTPError as exc:
            return Outcome(False, f"The webhook could not be reached ({type(exc).__name__}).",
                           retry=True)
        if 200 <= status < 300:
            return Outcome(True)
        if 300 <= status < 400:
            return Outcome(False, f"The webhook answered {status}, a redirect, which is not "
                                  "followed: give the address it redirects to.")
        if status in (408, 425, 429) or status >= 500:
            return Outcome(False, f"The webhook answered {status}.", retry=True,
                           retry_after=wait)
        return Outcome(False, f"The webhook answered {status}.")
