"""What runs inside a job's own process (the process runner's child, ``core/isolation.py``).

Contract: :func:`child_main` is the child's whole life. It is forked by the zygote
(``core/zygote.py``, this module and the job modules preloaded) with three pipe ends
and one control connection, on which the parent sends the :class:`ChildStart`; it

* leaves the parent's session (``setsid``): the child and everything it starts form one
  process group, which the parent ends with :func:`~.processes.stop_group`;
* makes the pipes its file descriptors 0, 1 and 2, so that everything written to them
  (``print``, ``os.system("echo hi")``, C code, grandchildren) reaches the parent, in
  order per stream; ``sys.stdout`` and ``sys.stderr`` are line-buffered (batched in a
  flood; ``core/childstreams.py``), so a line printed before ``os.system`` arrives
  before the command's output, as on a terminal;
* sets the run's limits (``RLIMIT_AS``, ``RLIMIT_CPU``);
* sends every ``logging`` record, formatted, over the control connection (the parent
  writes it to the run's ``log`` stream);
* runs the job with a ``running()`` that turns False when the parent says "stop", and
  its services rebuilt from what the parent sent (:class:`ParentCalls`: a service's
  requests, such as a Webex token, are answered by the parent, which keeps the secrets);
* keeps files through the parent (:class:`ChildArtifacts`): ``context.artifacts.save``
  writes the bytes into the run's exchange folder and asks the parent's
  :data:`ARTIFACTS_SERVICE` to store them (the budget is counted there); files written
  under ``artifacts.path`` are collected by the parent when the child has ended, and
  returned pictures are saved the same way. Uploads arrive as files of the run's
  folder, written by the parent before the fork;
* reads its input from the run (``sys.stdin``, ``input()``, ``getpass``:
  :class:`ChildStdin`, each read a call to the parent's :data:`STDIN_SERVICE`, which
  reads the run's input as a thread job's stdin does and shows the wait with its
  prompt); fd 0 itself is at end-of-file, so C code and programs it starts read
  nothing;
* sends the outcome (error, result) and exits. If the parent goes away (its end of the
  control connection closes), the child ends its whole group at once.

Messages, child to parent: ``("log", text)``, ``("call", id, service, method, args)``,
``("done", error, stopped, result, has_result, problem)``, each as JSON (the parent
unpickles nothing a job's code could shape). Parent to child (pickled: the parent is
trusted): the :class:`ChildStart`, then ``("stop",)`` and ``("reply", id, ok, value)``.
Only the standard library and core: the zygote preloads this module, so it must import
fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import logging
import os
import pickle
import resource
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .capture.hooks import set_process_stdin
from .childstreams import FdStream, flush_before_children
from .files import ArtifactError, Artifacts, Picture, artifact_bytes, check_artifact_name
from .jobs import JobSpec, RunContext
from .runner import _supervise, checked_result, keep_pictures

#: The name under which the parent answers the child's reads of its input.
STDIN_SERVICE = "_stdin"
#: The name under which the parent keeps the child's artifacts.
ARTIFACTS_SERVICE = "_artifacts"
#: The folder of the run's folder (``ChildStart.workdir``) through which artifact bytes
#: pass between the two processes, one file per call, named by a number.
EXCHANGE = ".exchange"

#: Rebuilds a service in the child from a function that asks the parent:
#: ``factory(call)``, where ``call(method, *args)`` returns the parent's answer.
ChildFactory = Callable[[Callable[..., Any]], Any]


@dataclass
class ChildStart:
    """Everything the child needs to run one job, sent (pickled) by the parent."""

    run_id: str
    user: str
    spec: JobSpec
    params: Mapping[str, Any]
    stop_grace: float
    sys_path: list[str]
    cwd: str
    #: Service name -> factory (see :data:`ChildFactory`).
    services: dict[str, ChildFactory] = field(default_factory=dict)
    memory_mb: int | None = None
    cpu_seconds: int | None = None
    #: The run's folder (uploads, ``artifacts.path``, the exchange), made by the parent.
    workdir: str | None = None


class ServiceCallError(RuntimeError):
    """The parent could not answer a service's request; the message says why."""


class Control:
    """The child's end of the control connection: sends under a lock (the job's
    threads log at once), and one thread reads the parent's messages."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._replies: dict[int, tuple[threading.Event, list[Any]]] = {}

    def send(self, message: tuple[Any, ...]) -> None:
        """Send one message to the parent (thread-safe), as JSON: the parent never
        unpickles what a job's process says."""
        data = json.dumps(message).encode()
        with self._lock:
            self.conn.send_bytes(data)

    def call(self, service: str, method: str, *args: Any) -> Any:
        """Ask the parent to call ``method`` of ``service`` and wait for its answer;
        raises :class:`ServiceCallError` with the parent's sentence if it failed."""
        number = next(self._ids)
        answered = threading.Event()
        slot: list[Any] = []
        self._replies[number] = (answered, slot)
        self.send(("call", number, service, method, args))
        answered.wait()
        ok, value = slot
        if not ok:
            raise ServiceCallError(str(value))
        return value

    def listen(self) -> None:
        """Read the parent's messages until its end closes; then end this process's group
        (the parent is gone: nobody would read the output or stop the job)."""
        try:
            while True:
                message = self.conn.recv()
                if message[0] == "stop":
                    self.stopped.set()
                elif message[0] == "reply":
                    _, number, ok, value = message
                    answered, slot = self._replies.pop(number)
                    slot.extend((ok, value))
                    answered.set()
        except (EOFError, OSError):
            os.killpg(0, signal.SIGKILL)


class ParentCalls:
    """``call(method, *args)`` for one service: its requests answered by the parent."""

    def __init__(self, control: Control, service: str) -> None:
        self.control = control
        self.service = service

    def __call__(self, method: str, *args: Any) -> Any:
        return self.control.call(self.service, method, *args)


class _ControlLogHandler(logging.Handler):
    """Sends each record, formatted as the thread runner's run log is, to the parent."""

    def __init__(self, control: Control, level: int) -> None:
        super().__init__(level)
        self.control = control
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.control.send(("log", self.format(record) + "\n"))
        except Exception:
            self.handleError(record)


class ChildArtifacts(Artifacts):
    """``context.artifacts`` in the job's process: the same contract as
    :class:`~.files.Artifacts` (names, budget, sentences), kept by the parent. Each
    :meth:`save` writes the bytes to a file of the exchange folder and asks the parent
    (``call``) to store that file, so no size limit of the control connection applies
    and no bytes are encoded; :attr:`path` is the run's ``artifacts`` folder, which the
    parent collects when the child has ended."""

    def __init__(self, call: Callable[..., Any], workdir: Path) -> None:
        super().__init__(None, "", workdir=workdir)
        self._call = call
        self._numbers = itertools.count()

    def _ask(self, method: str, *args: Any) -> Any:
        try:
            return self._call(method, *args)
        except ServiceCallError as exc:
            raise ArtifactError(str(exc)) from None

    def _exchange(self) -> tuple[int, Path]:
        assert self._workdir is not None
        number = next(self._numbers)
        return number, self._workdir / EXCHANGE / str(number)

    def save(self, name: str, data: bytes | bytearray | str | Picture) -> None:
        """As :meth:`Artifacts.save`: the parent keeps the file, or says why not."""
        name = check_artifact_name(name)
        data = artifact_bytes(name, data)
        number, path = self._exchange()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            self._ask("save", name, number)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def get(self, name: str) -> bytes | None:
        """The bytes of artifact ``name`` kept by this run, or None."""
        number, path = self._exchange()
        try:
            if not self._ask("get", name, number):
                return None
            return path.read_bytes()
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    @property
    def used(self) -> int:
        """Bytes of artifacts kept so far (the parent's count)."""
        return int(self._ask("used"))

    def listing(self) -> list[dict[str, Any]]:
        """The artifacts kept so far (the parent's listing)."""
        return list(self._ask("listing"))

    def collect(self) -> list[str]:
        """Nothing here: the parent collects ``artifacts.path`` once the child has ended."""
        return []


def _own_fds(stdin: int, stdout: int, stderr: int) -> None:
    """Make the pipes fds 0, 1, 2 and Python's streams on them."""
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    sys.stdin = io.TextIOWrapper(
        io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    stdout_stream = FdStream(1)
    stderr_stream = FdStream(2, before=stdout_stream.flush)
    sys.stdout, sys.stderr = stdout_stream, stderr_stream
    flush_before_children(stdout_stream, stderr_stream)


def _set_limits(memory_mb: int | None, cpu_seconds: int | None) -> None:
    if memory_mb:
        size = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if cpu_seconds:  # SIGXCPU at the soft limit, SIGKILL a second later
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


class ChildStdin(io.TextIOBase):
    """The job's ``sys.stdin`` in its process: each read asks the parent (``call``),
    which reads the run's input (docs/jobs.md, "Input"). ``prompt`` and ``secret`` are
    set by the ``input()`` and ``getpass`` hooks (``core/capture/hooks.py``) for the
    read they make, as on a thread job's stdin."""

    def __init__(self, call: Callable[..., Any]) -> None:
        super().__init__()
        self._call = call
        self.prompt = ""
        self.secret = False

    def readable(self) -> bool:
        """True: a stream that is read."""
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        """The run's next line (at most ``size`` characters), ``""`` at end-of-file."""
        return str(self._call("readline", self.prompt, self.secret,
                              -1 if size is None else int(size)))

    def read(self, size: int | None = -1) -> str:
        """Up to ``size`` characters of the run's input (all, until end-of-file, when
        negative or None)."""
        return str(self._call("read", -1 if size is None else int(size)))


def child_main(stdin: int, stdout: int, stderr: int, conn: Any) -> None:
    """The job's process: see the module's docstring. ``stdin``, ``stdout``, ``stderr``
    are the pipe ends, ``conn`` the control connection, whose first message is the
    :class:`ChildStart`. Never returns: the process exits once the outcome is sent."""
    os.setsid()
    _own_fds(stdin, stdout, stderr)
    start: ChildStart = pickle.loads(conn.recv_bytes())
    control = Control(conn)
    threading.Thread(target=control.listen, name="flask-realtime-control", daemon=True).start()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ControlLogHandler(control, logging.INFO))
    root.setLevel(logging.INFO)
    sys.path[:] = start.sys_path
    os.chdir(start.cwd)
    services = {name: factory(ParentCalls(control, name))
                for name, factory in start.services.items()}
    sys.stdin = ChildStdin(ParentCalls(control, STDIN_SERVICE))
    set_process_stdin(sys.stdin)
    error: str | None = None
    stopped = False
    value: Any = None

    def running() -> bool:
        return not control.stopped.is_set()

    _set_limits(start.memory_mb, start.cpu_seconds)
    artifacts = (ChildArtifacts(ParentCalls(control, ARTIFACTS_SERVICE), Path(start.workdir))
                 if start.workdir else Artifacts())
    try:
        call = start.spec.bind(running, start.params,
                               RunContext(start.run_id, start.user, services, artifacts))
        if start.spec.is_async:
            value = asyncio.run(_supervise(call(), running, start.stop_grace))
        else:
            value = call()
    except asyncio.CancelledError:
        stopped = True
    except BaseException as exc:  # the outcome is the parent's to tell
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"[:2000]
    value, problems = keep_pictures(value, artifacts)  # saved through the parent
    result, has_result, problem = checked_result(value)
    problem = "\n".join([*problems, *([problem] if problem else [])]) or None
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a job that closed it: nothing to flush
            stream.flush()
    try:
        control.send(("done", error, stopped, result, has_result, problem))
    finally:
        os._exit(0)
