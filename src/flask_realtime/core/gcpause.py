"""Pausing Python's cyclic garbage collector while a burst of runs starts.

A scheduler round of 1,000 fires allocates enough (1,000 threads, their locks, records,
events) for about 250 collections of the cyclic collector, two of them full ones, each
holding the interpreter's lock: 0.15-0.9 s of a round's start on the benchmark's
machine (docs/performance.md, "Schedules"). Reference counting frees what it can as
usual meanwhile; only garbage in cycles waits, and is collected once the pause ends.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_holders = 0
_was_enabled = False


class CollectorPause:
    """One holder's pause of the cyclic collector: :meth:`begin` disables it (unless it
    was disabled already, by someone else), :meth:`end` enables it again once no
    holder is left, if it was enabled when the first one began. Both idempotent;
    thread-safe, holders may overlap. A job that disables or enables the collector
    itself during a pause may see its change undone at the pause's end."""

    def __init__(self) -> None:
        self._held = False

    def begin(self) -> None:
        """Pause the collector for this holder (nothing if it holds a pause already)."""
        global _holders, _was_enabled
        with _lock:
            if self._held:
                return
            self._held = True
            if _holders == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _holders += 1

    def end(self) -> None:
        """End this holder's pause (nothing if it holds none): the collector runs again
        once every holder has ended, as it did before the first began."""
        global _holders
        with _lock:
            if not self._held:
                return
            self._held = False
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
