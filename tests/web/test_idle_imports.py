"""What an idle server has not imported (issue 21, item 3: idle RSS <= 60 MB;
docs/performance.md, "Memory per store").

Each test runs in an interpreter of its own: this one has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: Imported only when something needs them: a Webex call (aiohttp), a login (Authlib,
#: requests, cryptography), REDIS_URL (redis, rq), METRICS (prometheus_client), a chart
#: (matplotlib), python-socketio's clients (requests, websocket-client, aiohttp).
NOT_AT_START = ("aiohttp", "httpx_aiohttp", "requests", "websocket", "redis", "rq",
                "authlib", "joserfc", "cryptography", "prometheus_client", "matplotlib")


def run_fresh(code: str, tmp_path: Path, **settings: str) -> object:
    """Run ``code`` in a new interpreter (no REDIS_URL, no settings of this process but
    ``settings``) and return the JSON it prints last."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASK_REALTIME_") and k != "REDIS_URL"}
    env["FLASK_REALTIME_INSTANCE_PATH"] = str(tmp_path / "instance")
    env.update({f"FLASK_REALTIME_{k}": v for k, v in settings.items()})
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_an_app_built_as_the_server_builds_it_imports_none_of_them(tmp_path: Path) -> None:
    # As `flask-realtime run` does with a Webex integration configured: the embedded
    # (SQLite) store, login on, no REDIS_URL. (Demo mode starts the Webex simulator
    # beside it, which is an aiohttp server.)
    loaded = run_fresh(f"""
import json, sys
import flask_realtime.cli  # the command's module, as `flask-realtime run` imports it
from flask_realtime.web.app import create_app, shutdown
app = create_app()
assert type(app.extensions["flask_realtime"].store).__name__ == "SQLiteStore"
assert app.config["LOGIN_REQUIRED"]
loaded = sorted(m for m in {NOT_AT_START!r} if m in sys.modules)
shutdown(app)
print(json.dumps(loaded))
""", tmp_path, LOGIN_REQUIRED="true", WEBEX_CLIENT_ID="id", WEBEX_CLIENT_SECRET="secret",
       WEBEX_REDIRECT_URI="http://127.0.0.1:5000/redirect")
    assert loaded == []


def test_python_socketio_gets_the_real_libraries_when_it_uses_them(tmp_path: Path) -> None:
    result = run_fresh("""
import json, sys
import flask_realtime.web
from engineio import async_client, client
from socketio import async_redis_manager, redis_manager
from flask_realtime.web.socketio_imports import restore_redis
before = sorted(m for m in ("requests", "websocket", "aiohttp", "redis") if m in sys.modules)
unbound = redis_manager.redis is None and async_redis_manager.aioredis is None
import aiohttp, requests, websocket
same = (client.requests.Session is requests.Session
        and client.websocket.create_connection is websocket.create_connection
        and async_client.aiohttp.ClientSession is aiohttp.ClientSession)
restore_redis()
import redis, redis.asyncio
restored = (redis_manager.redis is redis
            and redis_manager.RedisError is redis.exceptions.RedisError
            and async_redis_manager.aioredis is redis.asyncio
            and async_redis_manager.RedisError is redis.exceptions.RedisError)
print(json.dumps([before, unbound, same, restored]))
""", tmp_path)
    assert result == [[], True, True, True]
