"""Where runs, output, sessions and tokens live: a SQLite file, this process, or Redis.

Each store implements core's :class:`~..core.ports.RunStore` (runs, stop requests,
output, executor liveness) and fits the web tier's
:class:`~..web.ports.LoginStore` (sessions and tokens) without importing the web tier.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.ports import DEFAULT_RETENTION_LINES
from .memory import MemoryStore
from .sqlite import DATABASE_NAME, DEFAULT_RETENTION_BYTES, SQLiteStore, StoreOpenError

if TYPE_CHECKING:  # imported when asked for: only a shared deployment needs Redis
    from .redis import RedisStore

__all__ = ["MemoryStore", "SQLiteStore", "StoreOpenError", "open_store"]

STORES = ("sqlite", "memory")


def open_store(config: Mapping[str, Any], instance_path: str | os.PathLike[str] | None = None,
               ) -> MemoryStore | SQLiteStore | RedisStore:
    """The store the configuration asks for.

    Redis when ``REDIS_URL`` is set; else ``STORE``: ``"sqlite"`` (the default), a
    database in the instance folder (``instance_path``, Flask's ``app.instance_path``)
    that this process locks, runs left going by a previous process being failed
    (:meth:`.SQLiteStore.recover_interrupted`); or ``"memory"``, this process only.
    Raises :class:`StoreOpenError` with a sentence when the database cannot be used.
    """
    retention_setting = config.get("RETENTION_LINES")
    url = config.get("REDIS_URL")
    if url:
        from .redis import RedisStore

        budget = config.get("REDIS_OUTPUT_BUDGET_BYTES")
        return RedisStore(str(url), int(retention_setting or DEFAULT_RETENTION_LINES),
                          output_budget_bytes=int(budget) if budget else None)
    kind = str(config.get("STORE") or "sqlite").lower()
    if kind not in STORES:
        raise StoreOpenError(f"STORE is {kind!r}: use \"sqlite\" (kept in the instance "
                             "folder, the default) or \"memory\" (lost when the process ends).")
    if kind == "memory":
        return MemoryStore(int(retention_setting or DEFAULT_RETENTION_LINES))
    if instance_path is None:
        raise StoreOpenError("The SQLite store needs the instance folder: pass instance_path "
                             "(Flask's app.instance_path), or set STORE=memory.")
    disk_budget = config.get("DISK_BUDGET_BYTES")
    store = SQLiteStore(
        Path(instance_path) / DATABASE_NAME,
        # No line cap unless one is set: the byte budget bounds a run on disk.
        int(retention_setting) if retention_setting else 1 << 62,
        retention_bytes=int(config.get("RETENTION_BYTES") or DEFAULT_RETENTION_BYTES),
        disk_budget_bytes=int(disk_budget) if disk_budget else None)
    try:
        store.recover_interrupted()
    except BaseException:
        store.close()
        raise
    return store
