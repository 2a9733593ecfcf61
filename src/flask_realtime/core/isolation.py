"""The process runner: a run whose job asks for it executes in a process of its own.

Contract: :func:`run_job_in_process` executes one run as :func:`~.runner.run_job` does
(same states, same capture, same result and error rules), but the job runs in a child
process forked by the zygote (``core/zygote.py``; the child's side is
``core/child.py``). The calling thread supervises it:

* **Output.** The child's fds 1 and 2 are pipes this process reads, so everything the
  job and its children write reaches the run's ``stdout`` and ``stderr`` through the
  same :class:`~.capture.RunCapture` and pump as a thread job's; ``logging`` records
  arrive over the control connection into the ``log`` stream. fd 0 is a pipe too: its
  write end is handed to ``stdin`` (:data:`StdinFeed`), by default closed at once (the
  job reads end-of-file); per-run input plugs in there.
* **Stop.** ``running()`` in the child turns False when the run's
  :class:`~.runner.StopSignal` does (a Stop here or, through the store, anywhere);
  ``stop_grace`` seconds later the child's process group is ended with
  :func:`~.processes.stop_group` (SIGTERM, then SIGKILL) and the run ends ``stopped``
  with a line saying which signal it took.
* **Crashes.** A child that dies (a signal, ``os._exit``, the OOM killer) ends only its
  run: ``failed``, with :func:`~.processes.exit_sentence` as the error and a line, its
  output kept.
* **Limits** (:class:`~.jobs.JobLimits`): the timeout is a Stop with a reason (forced
  after ``stop_grace``), memory and CPU are ``RLIMIT_AS`` / ``RLIMIT_CPU`` in the child,
  output bytes are counted here; going over one fails the run with a sentence naming it.
* **Files.** Uploads are written to the run's folder (a temp folder of its own) before
  the fork, as for a thread job; ``context.artifacts`` in the child keeps files through
  :func:`artifact_handlers` (the bytes pass through files of the folder's exchange, the
  budget is counted here), and what the job left under ``artifacts.path`` is collected
  here once the child has ended; then the folder is deleted.
* **Services.** A service offers itself to a child with ``for_child()``, returning
  ``(factory, handlers)``: ``factory(call)`` runs in the child (pickled), ``handlers``
  (method name -> function) answer its ``call(method, *args)`` here, so secrets stay
  in this process. Services without ``for_child`` are not given to process jobs.

:class:`IsolatingRunner` is the :class:`~.runner.ThreadRunner` that picks, per run, a
thread or a process (the job's ``isolation``, else the server's ``ISOLATION``), and
applies the limits to both (a thread job's timeout is a cooperative stop).
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import json
import logging
import os
import pickle
import selectors
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .capture import CapturePump, RunCapture, RunStdin
from .capture.hooks import SUBPROCESS_DRAIN_SECONDS
from .child import ARTIFACTS_SERVICE, EXCHANGE, STDIN_SERVICE, ChildStart
from .files import ArtifactError, Artifacts, check_artifact_name
from .jobs import JobLimits, JobSpec, RunContext
from .output import LOG, STDERR, STDOUT
from .processes import exit_sentence, signal_name, stop_group
from .runner import (
    StopSignal,
    ThreadRunner,
    UploadGoneError,
    finish_run,
    output_limit_error,
    prepare_uploads,
    run_job,
)
from .runs import Run
from .service import RunService
from .zygote import Zygote, ZygoteError, zygote

log = logging.getLogger(__name__)

#: Takes ownership of the write end of the child's stdin pipe (an fd): feeds the run's
#: input into it and closes it at the end. The default closes it at once.
StdinFeed = Callable[[int], None]
#: The largest message a child may send (a result is at most 4 MiB of JSON).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: The size of the stdout pipe (Linux's default is 64 KiB): a flood is read in fewer,
#: larger pieces, and the job waits on a full pipe less often.
PIPE_BYTES = 1024 * 1024
#: What one read takes from a pipe: a flood is assembled into lines a thousand or so
#: at a time, so other runs' lines do not wait behind one huge batch.
READ_BYTES = 65_536
#: While the reader is bounded (``RunCapture.intake``), each read is sized to the rest
#: of its slice at this many bytes a line (at least ``MIN_SLICE_READ_BYTES``): one read
#: of ``READ_BYTES`` is about 1,000 lines of 60 B, four times a slice of 250, and the
#: bound is checked before each read.
SLICE_LINE_BYTES = 64
MIN_SLICE_READ_BYTES = 4096
#: The longest the reader of a flood waits for the pump's next drain (see
#: ``RunCapture.intake``): a pump that does not come reads on, one slice each time.
INTAKE_WAIT_SECONDS = 0.1
#: How often the supervisor looks at the child, the stop signal and the deadlines.
SUPERVISE_SECONDS = 0.05
#: The reader holds a read's last, unfinished line until the next read brings its rest
#: (see ``_Reader``), or until its pipe has been quiet this long: then it is written as
#: it is (a prompt waiting for input, a progress bar).
TAIL_QUIET_SECONDS = 0.02


def _no_input(fd: int) -> None:
    """The default :data:`StdinFeed`: the job reads end-of-file."""
    os.close(fd)


def _read_size(intake: int, taken: int) -> int:
    """How many bytes the reader's next read takes: ``READ_BYTES`` unbounded
    (``intake`` 0), else about the rest of the slice, ``intake`` lines of which
    ``taken`` are read (see ``SLICE_LINE_BYTES``)."""
    if not intake:
        return READ_BYTES
    return min(READ_BYTES, max(MIN_SLICE_READ_BYTES, (intake - taken) * SLICE_LINE_BYTES))


class ChildStartError(Exception):
    """What a process job needs cannot be sent to its process; the message says why."""


class _Outcome:
    """What the supervisor learnt, from the child and from itself."""

    def __init__(self) -> None:
        self.done: tuple[Any, ...] | None = None  # the child's ("done", ...) message
        self.forced: str | None = None  # the signal stop_group took
        self.why: str | None = None  # "stop", "timeout", "output", "shutdown"
        self.over_output = threading.Event()


class _Reader:
    """One thread that reads the child's stdout and stderr pipes into the run, counting
    bytes against the output limit, until both are at their end (or :meth:`close`).

    A read ends where the pipe's bytes were cut, mostly within a line. The reader writes
    into the run only up to the read's last newline and holds the rest (``_tails``)
    until the next read of that pipe, or until the pipe has been quiet for
    ``TAIL_QUIET_SECONDS``, or its end: a line the job printed whole is never stored as
    a partial line and its continuation because the reader waited between two reads
    (for a drain while bounded, or for the interpreter on a busy machine) longer than
    the pump waits for a partial line's end. A tail of ``READ_BYTES`` or more (one long
    line) is written as it comes."""

    def __init__(self, capture: RunCapture, fds: dict[int, str], limit: int | None,
                 outcome: _Outcome) -> None:
        self.capture = capture
        self.limit = limit or None
        self.outcome = outcome
        self.written = 0
        self._selector = selectors.DefaultSelector()
        self._decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace")
                          for fd in fds}
        self._streams = dict(fds)
        #: A pipe's unfinished last line, held, and since when (monotonic); the lock
        #: makes taking a tail and writing it one step (see :meth:`write_held`).
        self._tails: dict[int, tuple[bytes, float]] = {}
        self._tails_lock = threading.Lock()
        for fd, stream in fds.items():
            self._selector.register(fd, selectors.EVENT_READ, stream)
        self._closing = threading.Event()
        self._ended = threading.Event()  # the child has exited: read the rest unbounded
        self.thread = threading.Thread(target=self._loop, name="flask-realtime-child-output",
                                       daemon=True)
        self.thread.start()

    def allow(self, size: int) -> int:
        """Count ``size`` bytes written; how many of them are within the output limit
        (all of them without one). Passing the limit sets ``over_output``."""
        self.written += size
        if self.limit is None or self.written <= self.limit:
            return size
        self.outcome.over_output.set()
        return max(0, size - (self.written - self.limit))

    def close(self, wait: float) -> None:
        """Wait up to ``wait`` seconds for the ends of the pipes, then stop reading.

        Called once the child has exited: what is left in its pipes (at most their size,
        and what a grandchild still writes) is read without the bound of ``intake``, so
        that a flood's last lines are not lost to ``wait`` one slice per drain at a time."""
        self._ended.set()
        self.capture.wake()  # a drain soon: a reader waiting for one reads on
        self.thread.join(wait)
        self._closing.set()
        self.thread.join()

    def write_held(self) -> None:
        """Write the unfinished lines held now, from any thread: the job asks for
        input, and its prompt must be in the run before what is typed."""
        self._write_tails()

    def _write_tails(self, fd: int | None = None, *, held_since: float | None = None
                     ) -> None:
        """Write the held unfinished line of pipe ``fd`` (of every pipe: None; with
        ``held_since``, only those held since then or earlier)."""
        with self._tails_lock:
            for pipe in [fd] if fd is not None else list(self._tails):
                tail, since = self._tails.get(pipe, (b"", 0.0))
                if tail and (held_since is None or since <= held_since):
                    del self._tails[pipe]
                    self.capture.write(self._streams[pipe],
                                       self._decoders[pipe].decode(tail))

    def _write(self, fd: int, data: bytes, whole_only: bool) -> None:
        """Write ``data`` read from pipe ``fd`` after the tail held for it; with
        ``whole_only``, hold the new unfinished last line instead (up to ``READ_BYTES``
        of it)."""
        with self._tails_lock:
            data = self._tails.pop(fd, (b"", 0.0))[0] + data
            whole = data.rfind(b"\n") + 1
            if whole_only and whole < len(data) and len(data) - whole < READ_BYTES:
                self._tails[fd] = (data[whole:], time.monotonic())
                data = data[:whole]
            if data:
                self.capture.write(self._streams[fd], self._decoders[fd].decode(data))

    def _loop(self) -> None:
        capture, selector = self.capture, self._selector
        cycle, taken = capture.drains, 0  # lines written since the drain numbered cycle
        try:
            while selector.get_map() and not self._closing.is_set():
                ready = selector.select(TAIL_QUIET_SECONDS if self._tails else 0.1)
                if self._tails:  # from pipes quiet meanwhile: unfinished lines as they are
                    self._write_tails(held_since=time.monotonic() - TAIL_QUIET_SECONDS)
                for key, _ in ready:
                    if capture.intake and not self._ended.is_set():
                        # A flood while other runs share this process: one slice per
                        # drain cycle (see CapturePump), the job's process held back
                        # by its full pipe meanwhile, as a thread job's printing
                        # gives way.
                        if capture.drains != cycle:
                            cycle, taken = capture.drains, 0
                        elif taken >= capture.intake:
                            capture.held = True
                            capture.wait_drained(cycle, INTAKE_WAIT_SECONDS)
                            cycle, taken = capture.drains, 0
                    fd = int(key.fd)
                    data = os.read(fd, READ_BYTES if self._ended.is_set()
                                   else _read_size(capture.intake, taken))
                    decoder = self._decoders[fd]
                    if not data:
                        self._write_tails(fd)
                        if tail := decoder.decode(b"", final=True):
                            capture.write(key.data, tail)
                        selector.unregister(fd)
                        continue
                    if self.outcome.over_output.is_set():
                        continue  # read and dropped: the child must not block on a full pipe
                    allowed = self.allow(len(data))
                    if not allowed:
                        self._write_tails(fd)
                        continue
                    taken += data.count(b"\n", 0, allowed)
                    # The unfinished last line waits for its rest (the next read),
                    # unless the output limit cut this read: nothing more comes then.
                    self._write(fd, data[:allowed], whole_only=allowed == len(data))
            self._write_tails()  # closed before the pipes' ends
        finally:
            for key in list(selector.get_map().values()):
                selector.unregister(key.fd)
            for fd in self._decoders:
                os.close(fd)
            selector.close()


class _Control:
    """This process's end of a child's control connection: logs into the run, answers
    service calls, keeps the outcome; :meth:`send` is thread-safe."""

    def __init__(self, conn: Connection, capture: RunCapture, reader: _Reader,
                 handlers: Mapping[str, Mapping[str, Callable[..., Any]]],
                 outcome: _Outcome) -> None:
        self.conn = conn
        self.capture = capture
        self.reader = reader
        self.handlers = handlers
        self.outcome = outcome
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="flask-realtime-child-control",
                                       daemon=True)
        self.thread.start()

    def send(self, message: Any) -> None:
        """Send ``message`` (pickled) to the child; nothing if it is gone."""
        self.send_bytes(pickle.dumps(message))

    def send_bytes(self, data: bytes) -> None:
        """Send ``data`` to the child as one message; nothing if it is gone."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.conn.send_bytes(data)

    def _loop(self) -> None:
        try:
            while True:
                message = json.loads(self.conn.recv_bytes(MAX_MESSAGE_BYTES))
                kind = message[0]
                if kind == "log":
                    text = str(message[1])
                    if not self.outcome.over_output.is_set() and self.reader.allow(
                            len(text.encode("utf-8", "replace"))):
                        self.capture.write(LOG, text)
                elif kind == "call":
                    threading.Thread(target=self._answer, args=message[1:], daemon=True,
                                     name="flask-realtime-child-call").start()
                elif kind == "done":
                    self.outcome.done = tuple(message)
        except (EOFError, OSError, ValueError):
            return  # the child is gone
        except Exception:  # a message that cannot be read: the child is not trusted
            log.exception("a job's process sent a message that could not be read")

    def _answer(self, number: int, service: str, method: str, args: list[Any]) -> None:
        handler = self.handlers.get(service, {}).get(method)
        if handler is None:
            self.send(("reply", number, False, f"{service}.{method} is not offered to "
                                               "a job's process"))
            return
        try:
            value = handler(*args)
        except Exception as exc:
            self.send(("reply", number, False, str(exc) or type(exc).__name__))
        else:
            self.send(("reply", number, True, value))


def stdin_handlers(stdin: RunStdin, before_read: Callable[[], object] = lambda: None
                   ) -> Mapping[str, Callable[..., Any]]:
    """The parent's answers to the child's reads of its input (``core/child.py``
    :class:`~.child.ChildStdin`): the run's input, read as a thread job's stdin.
    ``before_read`` is called first (the reader writes the prompt it holds)."""
    def readline(prompt: Any, secret: Any, size: Any) -> str:
        before_read()
        with stdin._lock:  # one reader at a time, its prompt with it
            stdin.prompt, stdin.secret = str(prompt)[:1000], bool(secret)
            try:
                return stdin.readline(int(size))
            finally:
                stdin.prompt, stdin.secret = "", False

    def read(size: Any) -> str:
        before_read()
        return stdin.read(int(size))

    return {"readline": readline, "read": read}


def artifact_handlers(artifacts: Artifacts, exchange: int) -> Mapping[str, Callable[..., Any]]:
    """The parent's side of the child's ``context.artifacts`` (``core/child.py``
    :class:`~.child.ChildArtifacts`). ``exchange`` is an open descriptor of the run's
    exchange folder, opened before the fork: the files named by the child's numbers are
    opened in it without following a symbolic link, so whatever the child does to the
    folder, only a regular file it wrote there can be read (or written) here."""
    def open_at(number: Any, flags: int) -> int:
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ArtifactError("The job's process named no exchange file.")
        return os.open(str(number), flags | os.O_NOFOLLOW, 0o600, dir_fd=exchange)

    def save(name: Any, number: Any) -> None:
        name = check_artifact_name(name)
        fd = open_at(number, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ArtifactError(f"Artifact {name!r} was not kept: not a regular file.")
            artifacts.check_room(name, info.st_size)  # past the budget: refused unread
            data = file.read()
        artifacts.save(name, data)

    def get(name: Any, number: Any) -> bool:
        data = artifacts.get(check_artifact_name(name))
        if data is None:
            return False
        with os.fdopen(open_at(number, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as out:
            out.write(data)
        return True

    return {"save": save, "get": get, "used": lambda: artifacts.used,
            "listing": artifacts.listing}


def child_services(services: Mapping[str, Any]) -> tuple[
        dict[str, Any], dict[str, Mapping[str, Callable[..., Any]]], list[str]]:
    """(factories for the child, handlers for this process, names not offered) from a
    run's services: each service with ``for_child()`` is split in two."""
    factories: dict[str, Any] = {}
    handlers: dict[str, Mapping[str, Callable[..., Any]]] = {}
    missing: list[str] = []
    for name, service in services.items():
        offer = getattr(service, "for_child", None)
        if not callable(offer):
            missing.append(name)
            continue
        factories[name], handlers[name] = offer()
    return factories, handlers, missing


def run_job_in_process(service: RunService, pump: CapturePump, run: Run, spec: JobSpec,
                       params: Mapping[str, Any], context: RunContext, running: StopSignal,
                       stop_grace: float, *, limits: JobLimits | None = None,
                       starter: Zygote | None = None, stdin: StdinFeed = _no_input,
                       live: dict[str, int] | None = None) -> None:
    """Execute one run in a child process, supervised from the calling thread, from
    ``running`` to its final state (see the module's docstring). ``live``, if given,
    holds the run's id -> the child's pid (its process group) while the child runs."""
    limits = limits or JobLimits()
    capture = pump.open(run.id)
    running.when_stopped(lambda: capture.system(
        running.stop_line or "Stop requested."))
    factories, handlers, missing = child_services(context.services)
    readers: list[_Reader] = []  # the run's, once started: it holds the prompt's line

    def write_prompt() -> None:
        for reader in readers:
            reader.write_held()

    handlers[STDIN_SERVICE] = stdin_handlers(RunStdin(
        service.store, run.id, capture, running,
        on_wait=lambda prompt, secret: service.waiting_for_input(run.id, prompt, secret)),
        before_read=write_prompt)
    for name in missing:
        capture.system(f"The service {name!r} cannot be used by a job in its own process.")
    outcome = _Outcome()
    error: str | None = None
    stopped = False
    result: Any = None
    has_result = False
    budget = service.limits.artifact_bytes
    artifacts = Artifacts(service.store, run.id, budget=budget)
    folder: Path | None = None
    exchange = -1
    try:
        folder = Path(tempfile.mkdtemp(prefix="flask-realtime-run-"))
        artifacts = Artifacts(service.store, run.id, budget=budget, workdir=folder)
        artifacts.path  # noqa: B018  (made now: the child writes there, this process collects)
        (folder / EXCHANGE).mkdir(mode=0o700)
        exchange = os.open(folder / EXCHANGE, os.O_RDONLY | os.O_DIRECTORY)
        handlers[ARTIFACTS_SERVICE] = artifact_handlers(artifacts, exchange)
        values = prepare_uploads(service.store, run.id, spec, params, folder)
        child, reader, control = _start(capture, run, spec, values, context, stop_grace,
                                        limits, factories, handlers, outcome,
                                        starter or zygote(), stdin, folder)
        readers.append(reader)
    except UploadGoneError as exc:
        error = str(exc)
        capture.system(error)
    except (ZygoteError, ChildStartError, OSError) as exc:
        error = f"The job's process could not be started: {exc}"
        capture.system(error)
    except Exception as exc:  # the store away while the uploads were read, ...: the run
        # must end whatever went wrong
        log.exception("run %s: its process could not be started", run.id)
        error = f"The job's process could not be started: {type(exc).__name__}: {exc}"
        capture.system(error)
    else:
        if live is not None:
            live[run.id] = child.pid
        try:
            _supervise_child(child, control, running, stop_grace, limits, outcome, capture)
            reader.close(SUBPROCESS_DRAIN_SECONDS)
            control.thread.join(SUBPROCESS_DRAIN_SECONDS)
            error, stopped, result, has_result = _verdict(
                child.returncode, child.lost, outcome, running, limits, stop_grace, capture)
        except Exception as exc:  # the run must end whatever went wrong here
            log.exception("run %s: supervising its process failed", run.id)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            error = f"Supervising the job's process failed: {type(exc).__name__}: {exc}"
            capture.system(error)
        finally:
            if live is not None:
                live.pop(run.id, None)
            with contextlib.suppress(OSError):
                control.conn.close()
    try:  # the child has ended: what it left under artifacts.path is kept
        problems = artifacts.collect()
    except Exception as exc:  # the store away, a folder the job made unreadable, ...
        problems = [f"The files under artifacts.path were not kept: {exc}"]
    for line in problems:
        capture.system(line)
    if exchange >= 0:
        os.close(exchange)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    pump.close(capture)
    finish_run(service, run.id, error=error, stopped=stopped, result=result,
               has_result=has_result, artifacts=artifacts.listing())


def _start(capture: RunCapture, run: Run, spec: JobSpec, params: Mapping[str, Any],
           context: RunContext, stop_grace: float, limits: JobLimits,
           factories: dict[str, Any], handlers: Mapping[str, Mapping[str, Callable[..., Any]]],
           outcome: _Outcome, starter: Zygote, stdin: StdinFeed,
           folder: Path) -> tuple[Any, _Reader, _Control]:
    """Fork the child, send it its :class:`~.child.ChildStart`, start reading it."""
    try:  # before anything starts: a job that cannot be sent fails with a sentence
        start = pickle.dumps(ChildStart(
            run_id=run.id, user=context.user, spec=spec, params=dict(params),
            stop_grace=stop_grace, sys_path=list(sys.path), cwd=os.getcwd(),
            services=factories, memory_mb=limits.memory_mb or None,
            cpu_seconds=limits.cpu_seconds or None, workdir=str(folder)))
    except Exception as exc:
        raise ChildStartError(
            f"its function (or a parameter, or a service) cannot be sent to a process: "
            f"{exc}. A process job must be defined at the top level of its module.") from exc
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    with contextlib.suppress(OSError, AttributeError):  # Linux: fewer, larger reads
        fcntl.fcntl(out_w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        child = starter.fork([in_r, out_w, err_w, theirs.fileno()])
    except BaseException:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        ours.close()
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        theirs.close()
    conn = Connection(ours.detach())
    reader = _Reader(capture, {out_r: STDOUT, err_r: STDERR}, limits.output_bytes, outcome)
    control = _Control(conn, capture, reader, handlers, outcome)
    control.send_bytes(start)
    stdin(in_w)  # the hook for per-run input: it owns the write end from here
    return child, reader, control


def _supervise_child(child: Any, control: _Control, running: StopSignal, stop_grace: float,
                     limits: JobLimits, outcome: _Outcome, capture: RunCapture) -> None:
    """Wait for the child to end, passing on Stop and forcing it when a grace, the
    timeout or the output limit says so."""
    deadline = time.monotonic() + limits.timeout if limits.timeout else None
    force_at: float | None = None
    told = False
    while not child.wait(SUPERVISE_SECONDS):
        now = time.monotonic()
        if outcome.over_output.is_set() and outcome.forced is None:
            outcome.why = "output"
            outcome.forced = stop_group(child.pid, child.wait) or "none"
            continue
        if deadline is not None and now >= deadline and running.event.is_set() is False:
            outcome.why = "timeout"
            running.expire(*timeout_message(limits.timeout or 0))
        if not told and not running():
            told = True
            if outcome.why is None:
                outcome.why = "shutdown" if running.reason is not None else "stop"
            control.send(("stop",))
            force_at = now + stop_grace
        if force_at is not None and now >= force_at and outcome.forced is None:
            outcome.forced = stop_group(child.pid, child.wait) or "none"
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)  # what the job left behind ends with it


def _verdict(returncode: int | None, lost: bool, outcome: _Outcome, running: StopSignal,
             limits: JobLimits, stop_grace: float,
             capture: RunCapture) -> tuple[str | None, bool, Any, bool]:
    """(error, stopped, result, has_result) of a run whose child has ended; writes the
    system line that says how, when it did not end by itself."""
    forced = outcome.forced if outcome.forced not in (None, "none") else None
    how = f": its process group was ended with {forced}" if forced else ""
    if outcome.over_output.is_set():  # perhaps seen only as the last output was read
        error = output_limit_error(limits.output_bytes or 0)
        capture.system(f"{error[:-1]}{how or ': it was ended'}; the output above is what "
                       "it printed within the limit.")
        return error, False, None, False
    if forced and outcome.why == "timeout":
        capture.system(f"The job did not return within {stop_grace:g} s of its timeout{how}.")
        return running.reason, False, None, False
    if forced and outcome.why == "stop":
        capture.system(f"The job did not return within {stop_grace:g} s of Stop{how}.")
        return None, True, None, False
    if forced:  # a shutdown
        capture.system(f"The job did not return within {stop_grace:g} s of the "
                       f"shutdown{how}.")
        return running.reason, False, None, False
    if outcome.done is not None:
        _, error, stopped, result, has_result, problem = outcome.done
        for line in str(problem or "").splitlines():  # a result or picture not kept
            capture.system(line)
        if error and error.startswith("MemoryError") and limits.memory_mb:
            error = (f"The job went over its memory limit of {limits.memory_mb} MiB "
                     f"({error}).")
            capture.system(error)
        if running.reason is not None and not error:
            return running.reason, False, None, False
        return error, bool(stopped), result, bool(has_result)
    if lost or returncode is None:
        error = "the job's process was lost (the process that starts jobs ended)"
    elif limits.cpu_seconds and returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        error = (f"The job used more than its CPU limit of {limits.cpu_seconds} s "
                 f"({signal_name(-returncode)}).")
    else:
        error = exit_sentence(returncode)
        if returncode == -signal.SIGKILL:
            error += " (killed: the out-of-memory killer, or another process)"
        elif returncode == 0:
            error += " before the job returned"
    capture.system(f"{error[0].upper()}{error[1:].rstrip('.')}: the run failed; the output "
                   "above is what it printed.")
    return running.reason or error, False, None, False


def timeout_message(seconds: float) -> tuple[str, str]:
    """(the run's error, the line its output gets) when ``seconds`` of timeout are up."""
    return (f"The job ran longer than its timeout of {seconds:g} s.",
            f"The job ran longer than its timeout of {seconds:g} s: it was asked to stop "
            "(running() is now False).")


@contextlib.contextmanager
def timeout_timer(running: StopSignal, limits: JobLimits) -> Iterator[None]:
    """A thread job's timeout: while the block runs, ``running()`` turns False at the
    deadline and the run is to fail (:meth:`~.runner.StopSignal.expire`)."""
    if not limits.timeout:
        yield
        return
    timer = threading.Timer(limits.timeout, running.expire,
                            args=timeout_message(limits.timeout))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class IsolatingRunner(ThreadRunner):
    """The :class:`~.runner.ThreadRunner`, which runs each process job with
    :func:`run_job_in_process` (a job's ``isolation``, else ``default``) and applies
    each run's limits (the job's, else ``defaults``): a thread job's timeout turns
    ``running()`` False at the deadline and fails the run.
    :meth:`close` also ends the process groups of process runs still going."""

    def __init__(self, service: RunService, pump: CapturePump, *, stop_grace: float = 2.0,
                 default: str = "thread", defaults: JobLimits | None = None,
                 starter: Zygote | None = None) -> None:
        super().__init__(service, pump, stop_grace=stop_grace)
        self.default = default
        self.defaults = defaults or JobLimits()
        self._starter = starter
        self._live: dict[str, int] = {}  # process runs going: run id -> process group
        if default == "process" or any(s.isolation == "process" for s in service.registry):
            threading.Thread(target=self._warm, name="flask-realtime-zygote-start",
                             daemon=True).start()

    @property
    def starter(self) -> Zygote:
        """The zygote this runner forks through (the process's, unless given)."""
        if self._starter is None or self._starter.owner != os.getpid():
            self._starter = zygote(_job_modules(self.service))
        return self._starter

    def _warm(self) -> None:
        try:
            self.starter.start()
        except ZygoteError:
            log.exception("the process that starts jobs could not be started")

    def isolation_of(self, spec: JobSpec) -> str:
        """Where ``spec``'s runs execute: its own choice, else the server's."""
        return spec.isolation or self.default

    def _run(self, run: Run, spec: JobSpec, params: Mapping[str, Any], context: RunContext,
             signal_: StopSignal) -> None:
        limits = spec.limits.over(self.defaults)
        if self.isolation_of(spec) == "process":
            run_job_in_process(self.service, self.pump, run, spec, params, context, signal_,
                               self.stop_grace, limits=limits, starter=self.starter,
                               live=self._live)
            return
        with timeout_timer(signal_, limits):
            run_job(self.service, self.pump, run, spec, params, context, signal_,
                    self.stop_grace, output_bytes=limits.output_bytes or None)


    def close(self) -> None:
        """End the heartbeat, and the process groups of the process runs still going
        (SIGKILL: the process is going away; their runs are seen as lost, or were failed
        by :meth:`shutdown`)."""
        for pgid in list(self._live.values()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        super().close()


def _job_modules(service: RunService) -> list[str]:
    """The modules of the registered jobs: what the zygote preloads."""
    return sorted({s.func.__module__ for s in service.registry
                   if s.func.__module__ != "__main__"})
