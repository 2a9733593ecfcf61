"""The C allocator's settings for a server process (issue 15 and 21: RSS after a flood,
and a flood's speed).

glibc's ``malloc`` serves a request of more than its *mmap threshold* (128 KiB to start
with) with a mapping of its own, unmapped again on ``free``. Both that threshold and
the *trim threshold* (how much free space a heap keeps at its top, 128 KiB to start
with) move: each time such a mapping is freed, glibc raises the mmap threshold to its
size (up to 32 MiB) and the trim threshold to twice that. A flood makes exactly those
buffers, one after the other (the capture's joined writes, the packed chunks, the
stores' batches, of hundreds of KiB to a few MiB each), so from the first one on they
come from the heaps, and what is freed there stays in the process: below something
still in use, and at the top of each thread's heap, up to the raised trim threshold.
A server kept about 20 MB more after a 1,000,000-line flood (docs/performance.md,
"RSS after a flood on SQLite: where it went, and the fix").

Fixing the mmap threshold at 128 KiB, what this module did first, kept that low, but
then a flood paid for a fresh mapping (``mmap``, its pages faulted in zeroed,
``munmap``) for each such buffer: about 125,000 page faults in the server a
1,000,000-line flood, and more CPU a line. :func:`tune` fixes the mmap threshold at 4
MiB instead (:data:`RUN_MMAP_THRESHOLD`: a flood's buffers come from the heaps and are
reused; 70,000-100,000 faults) and the trim threshold at 128 KiB
(:data:`TRIM_THRESHOLD`, glibc's own, kept from moving: a heap's top shrinks as before;
4 or 32 MiB saved more faults but kept more after a flood, up to 26 MB); and what is
freed in the middle of the heaps goes
back to the system once a run has ended: ``malloc_trim(0)``, which gives back every
whole free page of every heap, called by a :class:`Trimmer` on a thread of its own
after each run that ends in this process, at most once a second. Nothing is done per
line. docs/performance.md, "The allocator: a higher mmap threshold, and a trim after
each run", has the figures.

:func:`watch` is the seam: the assembly (``assembly.py`` ``build``) hands it every core
it builds. A process whose runs end elsewhere (a web process with ``RUNNER=rq``: its
workers run them) has no such moment, and gets the 128 KiB threshold
(:data:`MMAP_THRESHOLD`) as before.

:func:`tune` is called in the processes that serve: ``flask-realtime run``, the WSGI
entry point (gunicorn's workers) and ``flask-realtime worker``. It does nothing on a C
library other than glibc, and nothing when glibc's own environment settings
(``MALLOC_*_`` variables, ``GLIBC_TUNABLES``) are given: an operator's choice wins, and
no trim is made then either.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` parameters of ``mallopt``.
M_MMAP_THRESHOLD = -3
M_TRIM_THRESHOLD = -1
#: The mmap threshold fixed where runs end: a flood's buffers come from the heaps.
RUN_MMAP_THRESHOLD = 4 << 20
#: The free space a heap keeps at its top: glibc's starting value, kept from moving.
TRIM_THRESHOLD = 128 * 1024
#: The mmap threshold fixed in a process whose runs end elsewhere: glibc's starting value.
MMAP_THRESHOLD = 128 * 1024
#: The shortest time between two trims, in seconds.
TRIM_GAP = 1.0


class _Service(Protocol):  # core/service.py RunService, as far as it is used here
    def subscribe(self, listener: Callable[[Any], None]) -> None: ...


class _Glibc(Protocol):
    def mallopt(self, param: int, value: int) -> int: ...
    def malloc_trim(self, pad: int) -> int: ...


#: glibc, once :func:`tune` has found it and the environment leaves malloc to us.
_libc: _Glibc | None = None


def operator_settings(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether glibc's malloc was configured through the environment."""
    return "GLIBC_TUNABLES" in environ or any(
        name.startswith("MALLOC_") and name.endswith("_") for name in environ)


def glibc() -> _Glibc | None:
    """The C library's ``mallopt`` and ``malloc_trim``, if it is glibc; else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.gnu_get_libc_version  # noqa: B018  (only glibc has it)
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return libc


def tune(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Take charge of glibc's allocator in this process (see the module's docstring):
    fix its mmap threshold at :data:`RUN_MMAP_THRESHOLD` and its trim threshold at
    :data:`TRIM_THRESHOLD`. True if so, False on another C library or when the
    environment configures malloc already. :func:`watch` does the rest, for each core
    built afterwards."""
    global _libc
    if operator_settings(environ):
        return False
    libc = glibc()
    if libc is None:
        return False
    if not (libc.mallopt(M_MMAP_THRESHOLD, RUN_MMAP_THRESHOLD)
            and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        log.debug("mallopt refused")
    _libc = libc
    return True


def watch(service: _Service, *, runs_end_here: bool = True) -> Trimmer | None:
    """After :func:`tune`: trim after every run that ends in ``service`` (the
    :class:`Trimmer` returned); or, when ``runs_end_here`` is False (they end in other
    processes), fix the mmap threshold at :data:`MMAP_THRESHOLD` instead. Without
    :func:`tune` (tests, ``flask-realtime exec``), or when it declined, nothing."""
    libc = _libc
    if libc is None:
        return None
    if not runs_end_here:
        if not libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
            log.debug("mallopt(M_MMAP_THRESHOLD) refused")
        return None
    trimmer = Trimmer(lambda: libc.malloc_trim(0))
    service.subscribe(trimmer.run_changed)
    return trimmer


class Trimmer:
    """Calls ``trim`` on a thread of its own once a run has ended, at most once every
    ``gap`` seconds: runs that end while a trim waits or runs make one more trim
    (``gap`` after the last), not one each. Its lock is held only to read and set its
    two flags, never while trimming."""

    def __init__(self, trim: Callable[[], object], gap: float = TRIM_GAP) -> None:
        self._trim = trim
        self._gap = gap
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._last = -gap  # when the last trim began (time.monotonic)

    def run_changed(self, run: Any) -> None:
        """A RunService listener (``subscribe``): trim when ``run`` has ended."""
        if run.state.finished:
            self.request()

    def request(self) -> None:
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        threading.Thread(target=self._loop, name="flask-realtime-malloc-trim", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(max(0.0, self._last + self._gap - time.monotonic()))  # not too often
            self._last = time.monotonic()
            try:
                self._trim()
            except Exception:
                log.exception("malloc_trim failed")
            log.debug("malloc_trim: %.1f ms", (time.monotonic() - self._last) * 1000)
            with self._lock:
                if not self._again:
                    self._running = False
                    return
                self._again = False
