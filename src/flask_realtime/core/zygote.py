"""A preloaded server that forks jobs' processes: fast starts, and no fork of the server.

Contract: :class:`Zygote` (the parent's side, one per process: :func:`zygote`) starts,
on first use, ``python -m flask_realtime.core.zygote`` with the job modules preloaded.
:meth:`Zygote.fork` hands it four file descriptors (the child's stdin, stdout and
stderr pipe ends and its control socket); it forks a child that runs
:func:`~.child.child_main` with them, and answers with the child's pid; when the
child ends it sends its exit status (negative: the signal that ended it), which
:meth:`Child.wait` gives. Forking a single-threaded, preloaded process costs a few
milliseconds, where starting an interpreter and importing the job modules costs a
few hundred; and the server itself (threads, sockets, locks held) is never forked.

This is what multiprocessing's ``forkserver`` does, but multiprocessing also runs the
parent's ``__main__`` again in every child (the ``flask-realtime`` command, gunicorn,
pytest), which would cost more than the fork; so it is done here directly, over a
``SOCK_SEQPACKET`` socket pair with ``socket.send_fds``.

If the server goes away, the zygote sees its socket close and exits; its children see
their control socket close and end their process groups (``core/child.py``). If the
zygote goes away, the children it started are reported lost (:meth:`Child.wait` gives
None as their status) and the next fork starts a new zygote.

Protocol (parent to zygote): ``b"fork"`` with 4 fds. Zygote to parent: ``b"pid <n>"``
once per fork, in order; ``b"exit <pid> <returncode>"`` when a child ends.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence

log = logging.getLogger(__name__)

#: The server's secrets (as environment variables, docs/configuration.md): kept out of
#: the zygote's environment, so a job's process (and what it starts) never sees them.
SECRET_SETTINGS = ("SECRET_KEY", "CLIENT_SECRET", "WEBEX_CLIENT_SECRET",
                   "TOKEN_ENCRYPTION_KEY", "METRICS_TOKEN")


def job_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``environ`` (the process's) without the server's secrets: each of
    :data:`SECRET_SETTINGS` with and without the ``FLASK_REALTIME_`` prefix."""
    names = {*SECRET_SETTINGS, *(f"FLASK_REALTIME_{n}" for n in SECRET_SETTINGS)}
    return {k: v for k, v in (os.environ if environ is None else environ).items()
            if k not in names}


#: Waits at most this long for the zygote's answer to a fork.
FORK_WAIT_SECONDS = 30.0


class ZygoteError(RuntimeError):
    """The zygote could not be started, or could not start a child; one sentence."""


class Child:
    """A process the zygote forked: its ``pid``, and its end (:meth:`wait`)."""

    def __init__(self) -> None:
        self.pid = 0
        self.returncode: int | None = None
        #: True when the zygote was lost before telling how the child ended.
        self.lost = False
        self._started = threading.Event()
        self._ended = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the child to end; True if it has (then
        ``returncode`` is set, or ``lost`` is True)."""
        return self._ended.wait(timeout)

    def _end(self, returncode: int | None) -> None:
        self.returncode = returncode
        self.lost = returncode is None
        self._ended.set()


class Zygote:
    """The parent's side: starts the zygote on first use, forks through it, and reads
    its answers on one thread. Thread-safe."""

    def __init__(self, preload: Sequence[str] = ()) -> None:
        self.preload = list(preload)
        #: The process this zygote serves: a fork of it (an RQ work-horse, a gunicorn
        #: worker of a preloaded app) gets a zygote of its own from :func:`zygote`.
        self.owner = os.getpid()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._waiting: deque[Child] = deque()  # forks sent, their pid not yet known
        self._children: dict[int, Child] = {}
        self._early: dict[int, int] = {}  # exits heard before their pid was taken

    def start(self) -> None:
        """Start the zygote now if it is not running (the first fork would)."""
        with self._lock:
            self._ensure()

    def fork(self, fds: Sequence[int]) -> Child:
        """Fork a child with ``fds`` (stdin, stdout, stderr, control) and return it once
        its pid is known. The fds stay the caller's to close. Raises
        :class:`ZygoteError` if the zygote cannot be started or does not answer."""
        child = Child()
        with self._lock:
            sock = self._ensure()
            self._waiting.append(child)
            try:
                socket.send_fds(sock, [b"fork"], list(fds))
            except OSError as exc:
                self._waiting.remove(child)
                self._lost_locked()
                raise ZygoteError(f"Could not reach the process that starts jobs: {exc}.") \
                    from exc
        if not child._started.wait(FORK_WAIT_SECONDS) or child.lost:
            raise ZygoteError("The process that starts jobs did not start this one.")
        return child

    def close(self) -> None:
        """End the zygote (its children are not ended: they end with their runs)."""
        with self._lock:
            sock, self._sock = self._sock, None
            process, self._process = self._process, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def _ensure(self) -> socket.socket:
        if self._sock is not None and self._process is not None \
                and self._process.poll() is None:
            return self._sock
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "flask_realtime.core.zygote", str(theirs.fileno()),
                 json.dumps(sys.path), json.dumps(self.preload)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True,
                env=job_environment())
        except OSError as exc:
            ours.close()
            raise ZygoteError(f"Could not start the process that starts jobs: {exc}.") \
                from exc
        finally:
            theirs.close()
        self._sock = ours
        threading.Thread(target=self._read, args=(ours,), name="flask-realtime-zygote",
                         daemon=True).start()
        return ours

    def _read(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(256)
            except OSError:
                data = b""
            if not data:
                with self._lock:
                    if self._sock is sock:
                        self._lost_locked()
                return
            word, *numbers = data.split()
            with self._lock:
                if word == b"pid" and self._waiting:
                    child = self._waiting.popleft()
                    child.pid = int(numbers[0])
                    if child.pid > 0:
                        self._children[child.pid] = child
                        if child.pid in self._early:
                            child._end(self._early.pop(child.pid))
                    else:
                        child._end(None)
                    child._started.set()
                elif word == b"exit":
                    pid, code = int(numbers[0]), int(numbers[1])
                    ended = self._children.pop(pid, None)
                    if ended is not None:
                        ended._end(code)
                    else:
                        self._early[pid] = code

    def _lost_locked(self) -> None:
        """The zygote is gone: its children's ends will never be told."""
        for child in (*self._waiting, *self._children.values()):
            child._end(None)
            child._started.set()
        self._waiting.clear()
        self._children.clear()
        if self._sock is not None:
            self._sock.close()
        self._sock = None


_zygote: Zygote | None = None
_zygote_lock = threading.Lock()


def zygote(preload: Sequence[str] = ()) -> Zygote:
    """This process's zygote (made on first call in this process, with ``preload``;
    later calls add to what a zygote started afterwards preloads)."""
    global _zygote
    with _zygote_lock:
        if _zygote is None or _zygote.owner != os.getpid():
            _zygote = Zygote(preload)
        else:
            _zygote.preload.extend(m for m in preload if m not in _zygote.preload)
        return _zygote


# -- the zygote itself -------------------------------------------------------------------

def _serve(fd: int, preload: Sequence[str]) -> None:
    """The zygote's loop: fork a child per request, report pids and exits, and leave
    when the parent's end closes."""
    sock = socket.socket(fileno=fd)
    from .capture.hooks import install_input_hooks

    install_input_hooks()  # before the job modules bind getpass (docs/jobs.md, "Input")
    for name in ("flask_realtime.core.child", *preload):
        try:
            importlib.import_module(name)
        except Exception as exc:  # the child imports it again and reports what is wrong
            print(f"flask-realtime: could not preload {name!r}: {exc}", file=sys.stderr)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(sock)
        if sock.fileno() in ready:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, 64, 4)
            except OSError:
                data, fds = b"", []
            if not data:
                return
            if len(fds) != 4:
                for extra in fds:
                    os.close(extra)
                sock.send(b"pid 0")
                continue
            pid = os.fork()
            if pid == 0:
                _child(sock, wake_r, wake_w, fds)
            for passed in fds:
                os.close(passed)
            sock.send(b"pid %d" % pid)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(b"exit %d %d" % (pid, os.waitstatus_to_exitcode(status)))


def _child(sock: socket.socket, wake_r: int, wake_w: int, fds: list[int]) -> None:
    """In the forked child: drop the zygote's parts, then be the job's process."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for name in (signal.SIGCHLD, signal.SIGINT):
            signal.signal(name, signal.SIG_DFL)
        sock.close()
        os.close(wake_r)
        os.close(wake_w)
        from multiprocessing.connection import Connection

        from .child import child_main

        stdin, stdout, stderr, control = fds
        child_main(stdin, stdout, stderr, Connection(control))
        code = 0
    except BaseException:  # pragma: no cover - child_main exits itself
        import traceback
        traceback.print_exc()
    finally:
        os._exit(code)


if __name__ == "__main__":
    sys.path[:] = json.loads(sys.argv[2])
    _serve(int(sys.argv[1]), json.loads(sys.argv[3]))
