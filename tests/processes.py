"""Child processes for the tests, the benchmarks and scripts/stack.py, in one place.

Free ports; waiting with a deadline for a process to answer; ``flask-realtime``
subprocesses (:class:`Process`, :class:`WebProcess`); the /proc walks that find what
a process left behind (Linux only). Nothing here imports pytest or the test
fixtures, so bench/ and scripts/stack.py can use it as well.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


class NotReady(RuntimeError):
    """A process did not come up in time, or exited first; the message says which."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at this moment (the kernel's pick).

    Another process could take it before the caller binds it; every caller here starts
    its server on it at once, and a clash shows as a server that does not come up.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(ready: Callable[[], object], what: str, timeout: float = 30,
               proc: subprocess.Popen[Any] | None = None, log: Path | None = None,
               interval: float = 0.05) -> float:
    """Call ``ready()`` every ``interval`` s until it returns something true; the
    seconds that took.

    Raises :class:`NotReady` naming ``what`` after ``timeout`` seconds, or as soon as
    ``proc`` has exited (with the last 2,000 characters of ``log``): a process that
    died is not waited for. ``ready`` handles its own errors (a refused connection is
    "not yet").
    """
    t0 = time.monotonic()
    while not ready():
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise NotReady(f"{what}: the process exited ({proc.returncode}) first.\n{tail}")
        if time.monotonic() - t0 > timeout:
            raise NotReady(f"{what}: not within {timeout:g} s")
        time.sleep(interval)
    return time.monotonic() - t0


def answers(url: str) -> bool:
    """Whether ``url`` answers with a status below 500: a 401 or 404 means the server
    is up, a 503 from ``/healthz`` that it is up but cannot serve yet."""
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def wait_http(url: str, timeout: float = 30, proc: subprocess.Popen[Any] | None = None,
              log: Path | None = None) -> float:
    """Wait until ``url`` :func:`answers`; the seconds that took (see :func:`wait_until`)."""
    return wait_until(lambda: answers(url), url, timeout, proc, log)


class Process:
    """``python -m flask_realtime.cli ARGS`` as a child of this process, output to ``log``.

    Started from the repository root with exactly ``env`` (pass ``PYTHONPATH`` there
    for job modules under tests/). :meth:`kill` is safe to call on a process that is
    not running.
    """

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[Any] | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:  # the child holds its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flask_realtime.cli", *self.args],
                env=self.env, cwd=ROOT, stdout=out, stderr=out)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (SIGKILL unless told) and wait for the exit; SIGKILL after 15 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)

    def output(self) -> str:
        """Everything it wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def children(self) -> list[int]:
        """Its child processes: an RQ worker's work-horse outlives a SIGKILLed worker."""
        assert self.proc is not None, "start() it first"
        return children(self.proc.pid)


class WebProcess(Process):
    """``flask-realtime run`` on a free port of its own, kept across restarts.

    :meth:`start` returns once ``/healthz`` answers; a restart serves the same URL
    (clients reconnect to it). ``demo=True`` lets it start the Webex simulator when
    no integration is configured, as the README's first command does.
    """

    def __init__(self, env: dict[str, str], log: Path, demo: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["run", "--port", str(self.port), *([] if demo else ["--no-demo"])],
                         env, log)

    def start(self) -> WebProcess:
        super().start()
        assert self.proc is not None
        try:
            wait_http(f"{self.url}/healthz", proc=self.proc, log=self.log)
        except BaseException:
            self.kill()  # nothing half-started outlives a failed start
            raise
        return self

    def restart(self) -> WebProcess:
        """SIGTERM (a clean shutdown), then start again on the same port."""
        self.kill(signal.SIGTERM)
        return self.start()


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, pgrp,
    session, ...), or None once the process is gone. The name is in parentheses and
    may hold spaces and ")", hence the split at the last ")"."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _all_stats() -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(entry.name)
        if fields is not None:
            yield int(entry.name), fields


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    return [child for child, fields in _all_stats() if int(fields[1]) == pid]


def session_members(sid: int) -> list[int]:
    """The live (not zombie) processes of session ``sid``: found by session, not group,
    since RQ's work-horses put themselves in process groups of their own."""
    return [pid for pid, fields in _all_stats() if int(fields[3]) == sid and fields[0] != "Z"]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone; one that is our child is reaped)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    fields = _stat(pid)
    return not (fields is not None and fields[0] == "Z")
