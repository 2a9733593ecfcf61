"""The collector setting of server processes (flask_realtime/collector.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _python(program: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})}, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_freezing_keeps_start_up_out_of_full_collections_and_still_collects_new_cycles() -> None:
    program = """
import gc, weakref
from flask_realtime import collector
frozen = collector.freeze()
assert frozen > 1000, frozen                      # the interpreter's own objects at least
assert gc.get_freeze_count() == frozen
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a                           # a cycle made after the freeze
gone = weakref.ref(a)
del a, b
gc.collect()
print(gone() is None)
"""
    assert _python(program) == "True"


def test_the_wsgi_entry_point_freezes_what_the_app_made(tmp_path: Path) -> None:
    """gunicorn imports web/wsgi.py: the app it builds (about 90,000 objects) is frozen."""
    program = "import gc, flask_realtime.web.wsgi; print(gc.get_freeze_count())"
    count = int(_python(program, {"FLASK_REALTIME_INSTANCE_PATH": str(tmp_path),
                                  "FLASK_REALTIME_LOGIN_REQUIRED": "false",
                                  "SECRET_KEY": "test-secret", "REDIS_URL": ""}))
    assert count > 20_000, count
