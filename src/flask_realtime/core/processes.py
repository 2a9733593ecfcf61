"""Ending a job's process group, and saying in words how a process ended.

Contract: :func:`stop_group` is the one way a job's processes are ended by force, for
the process runner (``core/isolation.py``) and for anything else that starts a job in a
process group of its own (a command job): SIGTERM to the whole group, a wait, then
SIGKILL to the whole group; it returns which signal ended the leader (or None when it
was gone already), so the caller can write the run's system line. :func:`exit_sentence`
turns an exit status into the sentence a failed run's output and error carry.

Only the standard library: this module is core and must stay importable everywhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

#: How long the group has, after SIGTERM, before it gets SIGKILL.
TERM_SECONDS = 2.0
#: How often :func:`group_gone` looks again while it waits.
POLL_SECONDS = 0.02

#: ``wait(seconds)``: wait up to ``seconds`` for the group's leader to end; True if it has.
Waiter = Callable[[float], bool]


def group_gone(pgid: int) -> Waiter:
    """A :data:`Waiter` that asks the kernel: True once no process of group ``pgid`` is
    left. (A leader that has exited but is not reaped yet still counts: pass a waiter
    of the process's owner instead, e.g. ``lambda t: process.join(t) or
    process.exitcode is not None``, when you own the process.)"""

    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:  # the group id was taken by another user's processes
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)

    return wait


def stop_group(pgid: int, wait: Waiter | None = None, *,
               term_seconds: float = TERM_SECONDS) -> str | None:
    """End process group ``pgid``: SIGTERM to the group, up to ``term_seconds`` for
    ``wait`` (by default :func:`group_gone`) to see the leader end, then SIGKILL.

    Returns ``"SIGTERM"`` when the leader ended after SIGTERM, ``"SIGKILL"`` when it
    had to be killed, None when nothing of the group was left to signal. Whatever the
    answer, the rest of the group (grandchildren that ignore SIGTERM and would keep
    the output pipes open) gets SIGKILL before this returns. Blocks at most
    ``term_seconds`` plus one more wait of ``term_seconds`` after SIGKILL. Never
    raises for a group that is gone."""
    waiter = wait or group_gone(pgid)
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return None
    took = "SIGTERM" if waiter(term_seconds) else "SIGKILL"
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    if took == "SIGKILL":
        waiter(term_seconds)
    return took


def signal_name(signum: int) -> str:
    """``SIGSEGV`` for 11: the name a user can look up, or ``signal 99``."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_sentence(returncode: int) -> str:
    """How a job's process ended, as a run's error says it: "the job's process died
    (SIGSEGV)" for a signal (multiprocessing's and subprocess's negative codes),
    "the job's process exited with status 3" otherwise."""
    if returncode < 0:
        return f"the job's process died ({signal_name(-returncode)})"
    return f"the job's process exited with status {returncode}"
