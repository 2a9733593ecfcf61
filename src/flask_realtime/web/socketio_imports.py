"""python-socketio without the libraries of its clients and message queues, until used.

python-socketio's package imports every client and message-queue manager it has, and
each of those imports its library when it is installed: requests and websocket-client
(python-engineio's client), aiohttp (its asyncio client), redis (the Redis managers).
A server in threading mode with no ``REDIS_URL`` uses none of them, and they were 21
of the 87 MB an idle server had (docs/performance.md, "Memory per store", issue 21 item 3).

:func:`import_socketio` imports python-socketio (and python-engineio) once, with those
names, when installed and not imported yet, stood in for while it runs (web/__init__.py
calls it, so it runs before any module of the web tier imports Flask-SocketIO):

* ``requests``, ``websocket``, ``aiohttp`` (each bound by a plain ``import name``) by a
  :class:`Deferred` module: the real library is imported at the first attribute read
  (``requests.Session``), under the import system's lock, and every read goes to it. A
  python-socketio client in this process works as before.
* ``redis`` (bound with ``from redis.exceptions import RedisError`` beside it, which no
  stand-in can satisfy) by nothing: the managers see no Redis library until
  :func:`restore_redis` binds the real one, which the app does before it uses a message
  queue (``REDIS_URL``; web/app.py, web/states.py).

It is python-socketio's internals, as web/socketio_internals.py is: written against
python-socketio 5.18.1 and python-engineio 4.15.1. If a later version imports these
libraries otherwise, nothing breaks: they are loaded at start again, as before (the
test tests/web/test_idle_imports.py then fails and says so).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

#: Bound with a plain ``import name`` in python-engineio's clients.
DEFERRED = ("requests", "websocket", "aiohttp")
#: Bound with ``from redis.exceptions import RedisError`` too: left unbound instead.
UNBOUND = ("redis",)

_lock = threading.Lock()
_unbound: set[str] = set()


class Deferred(types.ModuleType):
    """Stands for the module ``name``: its first attribute read imports the real one
    (a stand-in answers no attribute while python-socketio is being imported)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_importing"] = True
        self.__dict__["_module"] = None

    def __getattr__(self, attr: str) -> Any:
        if self.__dict__["_importing"]:  # `from name import x` in the window: ImportError
            raise AttributeError(attr)
        module = self.__dict__["_module"]
        if module is None:
            module = self.__dict__["_module"] = importlib.import_module(self.__name__)
        return getattr(module, attr)


def import_socketio() -> None:
    """Import python-socketio with the libraries above stood in for (see the module's
    docstring); nothing when it is imported already."""
    with _lock:
        if "socketio" in sys.modules:
            return
        standins: dict[str, Deferred | None] = {}
        for name in (*DEFERRED, *UNBOUND):
            if name not in sys.modules and importlib.util.find_spec(name) is not None:
                standins[name] = Deferred(name) if name in DEFERRED else None
        sys.modules.update(standins)  # type: ignore[arg-type]  # None: `import` fails
        try:
            import socketio  # noqa: F401
        finally:
            for name, standin in standins.items():
                if name in sys.modules and sys.modules[name] is standin:
                    del sys.modules[name]  # the next `import name` imports the library
                if standin is not None:
                    standin.__dict__["_importing"] = False
        _unbound.update(name for name, standin in standins.items() if standin is None)


def restore_redis() -> None:
    """Bind the real redis in python-socketio's Redis managers, when
    :func:`import_socketio` left it unbound; before a message queue is used."""
    with _lock:
        if "redis" not in _unbound:
            return
        import redis.asyncio  # binds redis too
        from redis.exceptions import RedisError
        from socketio import async_redis_manager, redis_manager

        redis_manager.redis, redis_manager.RedisError = redis, RedisError
        async_redis_manager.aioredis = redis.asyncio
        async_redis_manager.RedisError = RedisError
        _unbound.discard("redis")
