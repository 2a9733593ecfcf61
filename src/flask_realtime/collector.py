"""The garbage collector in a server process: what is made at startup is set aside.

CPython's cyclic collector looks at every tracked object of a generation at each of
its collections, and a collection of the oldest generation (gen 2) stops every thread
for as long as it takes. A web process holds the whole app by the time it serves:
modules, classes, functions, the Flask and Socket.IO servers, the store; then each
socket adds its own. With 100 runs watched by 3 sockets each (bench/sockets.py), gen 2
collections took 70-160 ms of one process, every line of every run waiting meanwhile,
and the p99 of their latency was 130-260 ms; with the startup heap set aside they took
27-47 ms, and the p99 was 70-81 ms (docs/performance.md, "Sockets per process").

:func:`settle` collects once and then freezes what is left (``gc.freeze``): those
objects move to a permanent generation that collections skip. They are the process's
own for its lifetime; a cycle among them that becomes garbage later is not freed,
which is why this is done once, after startup, never later (sockets, runs and their
output, made afterwards, are collected as before). The server entry points call it
(``flask-realtime run``, ``web/wsgi.py``), after the app is made.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect, then freeze every object left (see the module's docstring); returns how
    many are frozen now."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
