"""``stop_group``: SIGTERM to the whole group, then SIGKILL, and which one it took."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from flask_realtime.core.processes import exit_sentence, stop_group

#: A leader that leaves once SIGTERM comes, with a grandchild in its group.
POLITE = ("import time, subprocess; subprocess.Popen(['sleep', '60']); "
          "print('up', flush=True); time.sleep(60)")
#: A leader that ignores SIGTERM.
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(60)")


def started(code: str) -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             start_new_session=True)
    assert child.stdout is not None
    assert child.stdout.readline() == b"up\n"  # its handlers are in place
    return child


def waiter(child: subprocess.Popen[bytes]) -> Callable[[float], bool]:
    def wait(seconds: float) -> bool:
        try:
            child.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True
    return wait


def test_a_leader_that_leaves_on_sigterm_takes_sigterm_and_its_group_goes_too() -> None:
    child = started(POLITE)
    assert stop_group(child.pid, waiter(child), term_seconds=10) == "SIGTERM"
    assert child.returncode == -15
    # the grandchild (sleep 60) was in the group: killed, so the pipe is at its end
    assert child.stdout is not None and child.stdout.read() == b""


def test_a_leader_that_ignores_sigterm_takes_sigkill() -> None:
    child = started(STUBBORN)
    assert stop_group(child.pid, waiter(child), term_seconds=0.2) == "SIGKILL"
    assert child.returncode == -9


def test_a_group_that_is_gone_takes_nothing() -> None:
    child = started(STUBBORN)
    child.kill()
    child.wait()
    assert stop_group(child.pid, term_seconds=0.2) is None


def test_exit_sentences_name_the_signal_or_the_status() -> None:
    assert exit_sentence(-11) == "the job's process died (SIGSEGV)"
    assert exit_sentence(3) == "the job's process exited with status 3"
