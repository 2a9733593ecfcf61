"""Which run the calling thread belongs to: one thread-local shared by the whole package.

Contract: :func:`current_capture` answers for the calling thread only, ``None`` for a
thread of no run. :func:`_set_capture` is the only way the answer changes (the runner,
through :meth:`~.pump.CapturePump.attach`; the thread and executor hooks, for the
threads and work items a run starts), and it also drops any ``write`` this thread had
bound to its old run on a stdout proxy (see :class:`~.streams._StdoutProxy`), so that a
thread never keeps printing into a run it has left.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .buffer import RunCapture
    from .streams import _StdoutProxy


class _Local(threading.local):
    capture: RunCapture | None = None  # a class default: no getattr fallback per write
    #: stdout proxies on which this thread's ``write`` is bound to its run (see _StdoutProxy)
    bound: tuple[_StdoutProxy, ...] = ()


_local = _Local()


def current_capture() -> RunCapture | None:
    """The calling thread's run buffer, or None when the thread belongs to no run."""
    return _local.capture


def _set_capture(capture: RunCapture | None) -> RunCapture | None:
    """Make the calling thread part of ``capture``'s run (None: of no run); returns the
    previous one, for the caller to put back."""
    previous = _local.capture
    if capture is not previous:
        _local.capture = capture
        if _local.bound:  # this thread's shortcut to its old run must not outlive it
            for proxy in _local.bound:
                if previous is not None:
                    previous.unbind(proxy.__dict__)  # also out of the run's rebinding
                else:
                    proxy.__dict__.pop("write", None)
            _local.bound = ()
    return previous
