"""Capture: route what a run's threads print to that run, and nothing else.

``sys.stdout`` and ``sys.stderr`` are replaced once per process by proxies that look up
the writing thread's :class:`RunCapture`; threads that belong to no run write through
to the real streams. A thread belongs to a run when the runner put it there, when it
was started by a thread of the run, or while it executes a work item a thread of the
run submitted to a ``ThreadPoolExecutor``; logging records and child processes'
output follow the same rule.

The package, one concept a module (each states its contract):

- :mod:`.context`: which run the calling thread belongs to (one thread-local).
- :mod:`.streams`: the ``sys.stdout`` / ``sys.stderr`` proxies.
- :mod:`.hooks`: :func:`install` and the thread, executor, subprocess and logging
  patches, process-wide.
- :mod:`.buffer`: :class:`RunCapture`, one run's raw writes until they are drained
  into lines; the write path, the hot path, lives here.
- :mod:`.pump`: :class:`CapturePump`, the thread that drains the buffers, times the
  batches, stores them through a :class:`LineSink` and keeps what the store refused.
- :mod:`.stdin`: :class:`RunStdin`, one run's standard input, read from the store
  (what ``sys.stdin``, ``input()`` and ``getpass`` read in a run's threads).

Everything public is imported here: ``from flask_realtime.core.capture import ...``
is the way in, the modules are the layout.
"""

from .buffer import RunCapture
from .context import current_capture
from .hooks import SUBPROCESS_DRAIN_SECONDS, install, install_input_hooks
from .pump import (
    BUSY_LINES_PER_DRAIN,
    DEFAULT_GIVE_WAY_SECONDS,
    DEFAULT_MAX_UNSENT,
    FLOOD_ALONE_LINES_PER_DRAIN,
    FLOOD_LINES_PER_DRAIN,
    FLUSH_WINDOW_SECONDS,
    MIN_DRAIN_GAP_SECONDS,
    RETRY_SECONDS,
    SHARED_FLOOD_LINES_PER_DRAIN,
    CapturePump,
    LineSink,
)
from .stdin import RunStdin

__all__ = [
    "BUSY_LINES_PER_DRAIN",
    "DEFAULT_GIVE_WAY_SECONDS",
    "DEFAULT_MAX_UNSENT",
    "FLOOD_ALONE_LINES_PER_DRAIN",
    "FLOOD_LINES_PER_DRAIN",
    "FLUSH_WINDOW_SECONDS",
    "MIN_DRAIN_GAP_SECONDS",
    "RETRY_SECONDS",
    "SHARED_FLOOD_LINES_PER_DRAIN",
    "SUBPROCESS_DRAIN_SECONDS",
    "CapturePump",
    "LineSink",
    "RunCapture",
    "RunStdin",
    "current_capture",
    "install",
    "install_input_hooks",
]
