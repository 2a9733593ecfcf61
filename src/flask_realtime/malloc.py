"""The C allocator's settings for a server process (issue 15 and 21: RSS after a flood).

glibc's ``malloc`` serves a request of more than its *mmap threshold* (128 KiB to start
with) with a mapping of its own, unmapped again on ``free``. But the threshold moves:
each time such a mapping is freed, glibc raises the threshold to its size (up to 32
MiB), so from then on buffers of that size come from the heaps instead, and what is
freed there stays in the process (a heap only shrinks from its top). A flood makes
exactly those buffers, one after the other: the capture's joined writes, the packed
chunks, the stores' batches, of hundreds of KiB to a few MiB each. With the
threshold moving, a server kept about 20 MB of freed heap after a 1,000,000-line
flood; fixed at 128 KiB, about 4 MB (docs/performance.md, "Where the memory goes").

:func:`tune` fixes the threshold (``mallopt(M_MMAP_THRESHOLD, 128 KiB)``, which also
stops the moving) in the process that serves: ``flask-realtime run`` and the WSGI
entry point (gunicorn's workers). It does nothing on a C library other than glibc,
and nothing when glibc's own environment settings (``MALLOC_*_`` variables,
``GLIBC_TUNABLES``) are given: an operator's choice wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

#: glibc's ``M_MMAP_THRESHOLD`` parameter of ``mallopt`` (malloc.h).
M_MMAP_THRESHOLD = -3
#: The threshold kept: glibc's own starting value.
MMAP_THRESHOLD = 128 * 1024


def operator_settings(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether glibc's malloc was configured through the environment."""
    return "GLIBC_TUNABLES" in environ or any(
        name.startswith("MALLOC_") and name.endswith("_") for name in environ)


def tune(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Fix glibc's mmap threshold (see the module's docstring); True if it was set,
    False on another C library or when the environment configures malloc already."""
    if operator_settings(environ):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (only glibc has it)
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused")
    return done
