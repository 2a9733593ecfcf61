"""Server processes set their startup heap aside from the garbage collector
(flask_realtime/collector.py): objects made later are collected as before."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_realtime import collector


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # this test process's heap back to the collector


class Node:
    """An object that can be in a cycle."""

    other: Node | None = None


def test_settle_freezes_what_is_there_and_later_cycles_are_still_collected(
        unfrozen: None) -> None:
    frozen = collector.settle()
    assert frozen > 1000 and gc.get_freeze_count() > 0  # (other threads may free some)
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle made after: garbage once dropped
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


def test_the_gunicorn_entry_point_settles_its_heap(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASK_REALTIME_") and k not in (
               "SECRET_KEY", "REDIS_URL", "CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI")}
    env.update(FLASK_REALTIME_INSTANCE_PATH=str(tmp_path), FLASK_REALTIME_WEBEX_ENV_FILE='""',
               FLASK_REALTIME_LOGIN_REQUIRED="false", FLASK_REALTIME_SCHEDULER="false")
    done = subprocess.run(
        [sys.executable, "-c", "import gc, flask_realtime.web.wsgi; print(gc.get_freeze_count())"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 10_000  # the app, its modules and servers
