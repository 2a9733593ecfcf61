"""The cyclic garbage collector's settings for a server process (issue 21: p99 latency).

CPython's collector runs a full collection, which visits every object that can hold
references, whenever enough objects have survived the younger generations. A web
process holds about 90,000 such objects from its imports and its app alone (Flask,
Werkzeug, Jinja, Socket.IO, the stores, the job registry), none of which will ever be
garbage; each full collection walked them all, in whatever thread happened to allocate,
holding the GIL: tens of milliseconds on this project's 2-core machine, a line's
whole latency budget (docs/performance.md, "The collector's pauses").

:func:`freeze` moves everything alive once the server is assembled into the
collector's permanent generation (:func:`gc.freeze`): full collections then visit only
what was made since. Collection itself is unchanged (cycles made later are found as
before), and a frozen object that later becomes garbage is freed by reference counting
as any other; only a cycle among frozen objects would stay, and the server's start-up
objects live as long as the process. A process that forks workers (gunicorn with
``preload_app``, RQ's work horses) also keeps those objects' pages shared with its
children, as the ``gc.freeze`` documentation recommends.

Called by the serving entry points once the app is built: ``flask-realtime run``,
``flask-realtime worker`` and the WSGI module (web/wsgi.py).
"""

from __future__ import annotations

import gc


def freeze() -> int:
    """Collect once, then freeze every object alive (see the module); returns how many
    objects the permanent generation holds."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
