"""Where runs, output, sessions and tokens live: in this process, or in Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import DEFAULT_RETENTION_LINES, Store, StoreUnavailableError
from .memory import MemoryStore

__all__ = ["MemoryStore", "Store", "StoreUnavailableError", "open_store"]


def open_store(config: Mapping[str, Any]) -> Store:
    """The Redis store when ``REDIS_URL`` is set, else the embedded one."""
    retention = int(config.get("RETENTION_LINES") or DEFAULT_RETENTION_LINES)
    url = config.get("REDIS_URL")
    if url:
        from .redis import RedisStore

        return RedisStore(str(url), retention)
    return MemoryStore(retention)
