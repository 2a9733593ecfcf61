"""The one assembly of a process's core, from its configuration, without Flask.

:func:`build` picks what core cannot name itself (tests/test_imports.py keeps core free
of stores, queues and job modules): the built-in and Webex jobs, the store the
configuration names (:func:`~.store.open_store`), the runner (threads, or RQ) and
whether a reaper watches other processes' executors; then it hands them to
:func:`.core.system.build`. Its callers: the web app (``web/app.py`` ``create_app``),
``flask-realtime exec`` and ``flask-realtime worker`` (``cli.py``), and the tests.
docs/architecture.md, "Assembly", has the whole picture.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from . import malloc
from .core.capture import LineSink
from .core.scheduler import NotifyOwner
from .core.system import RunnerFactory, System, isolating_runner
from .core.system import build as build_core
from .store import open_store
from .store.memory import MemoryStore
from .store.sqlite import SQLiteStore

if TYPE_CHECKING:  # imported when asked for: only a shared deployment needs Redis
    from .store.redis import RedisStore

#: What :func:`build` opens: every store fits the web tier's ``AppStore`` too.
Store: TypeAlias = "MemoryStore | SQLiteStore | RedisStore"


def build(config: Mapping[str, Any], *, instance_path: str | os.PathLike[str] | None = None,
          store: Store | Callable[[], Store] | None = None, sink: LineSink | None = None,
          reap: bool | None = None, schedules: bool = False,
          notify_owner: NotifyOwner | None = None,
          runs_end_here: bool | None = None) -> System[Store]:
    """A :class:`~.core.system.System` as ``config`` (a plain mapping, or Flask's
    config) describes it; call ``start()`` on it, and ``close()`` at the end.

    The store is ``store`` if given (or what it returns: it is called once the job
    modules are loaded), else the configured one (``REDIS_URL``, else ``STORE`` in
    ``instance_path``; :class:`~.store.StoreOpenError` if it cannot be opened). Job
    modules that cannot be loaded raise first (:class:`~.core.jobs.JobModuleError`).
    ``RUNNER="rq"`` puts runs on RQ workers. ``reap``: whether this process
    watches for runs whose executor died, by default whenever the store is shared
    (``REDIS_URL``); a worker passes False (the web processes watch). ``schedules``:
    this process fires schedules (the web app, with ``SCHEDULER``), telling owners of
    trouble through ``notify_owner`` (core/scheduler.py ``NotifyOwner``).
    ``runs_end_here``: whether runs end in this process (by default unless
    ``RUNNER="rq"``; a worker passes True), for the allocator's trim after a run
    (``malloc.watch``).
    """
    from .jobs import builtin  # noqa: F401  (registers the built-in jobs)
    from .webex import jobs as webex_jobs  # noqa: F401  (and the Webex jobs)

    system = build_core(
        config, store=store if store is not None else lambda: open_store(config, instance_path),
        sink=sink, runner=_runner(config),
        shared=bool(config.get("REDIS_URL")) if reap is None else reap,
        schedules=schedules, notify_owner=notify_owner)
    if runs_end_here is None:
        runs_end_here = config.get("RUNNER") != "rq"
    malloc.watch(system.service, runs_end_here=runs_end_here)  # after malloc.tune only
    return system


def _runner(config: Mapping[str, Any]) -> RunnerFactory:
    if config.get("RUNNER") == "rq":  # jobs execute on `flask-realtime worker`s
        from .adapters.rq import rq_runner

        return rq_runner
    return isolating_runner
