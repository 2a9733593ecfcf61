"""The ``store`` fixture of the contract tests: each test runs on every store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_realtime.store.memory import MemoryStore
from flask_realtime.store.sqlite import SQLiteStore
from flask_realtime.web.ports import AppStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the SQLite tests open their database: the instance folder's file name."""
    return tmp_path / "flask-realtime.sqlite3"


@pytest.fixture
def opened() -> Iterator[list[SQLiteStore]]:
    """SQLite stores a test opened (it appends them), closed at its end."""
    stores: list[SQLiteStore] = []
    yield stores
    for store in stores:
        store.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppStore]:
    """A fresh store of each kind, keeping 100 lines a run; Redis is the tests' own."""
    if request.param == "memory":
        made: AppStore = MemoryStore(retention_lines=100)
    elif request.param == "sqlite":
        made = SQLiteStore(tmp_path / "flask-realtime.sqlite3", retention_lines=100)
    else:
        from flask_realtime.store.redis import RedisStore

        made = RedisStore(request.getfixturevalue("redis_url"), retention_lines=100)
    yield made
    made.close()
