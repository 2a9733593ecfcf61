"""The process-wide hooks: what :func:`install` changes in the process, once.

Contract: after :func:`install`, a thread belongs to a run (see :mod:`.context`) when
the runner put it there, when it was started (``threading.Thread.start``) by a thread of
the run, or while it executes a work item submitted to a
``concurrent.futures.ThreadPoolExecutor`` by a thread of the run (this covers
``asyncio.to_thread`` and ``loop.run_in_executor``). In such threads, ``sys.stdout`` and
``sys.stderr`` write to the run (see :mod:`.streams`), logging records go to the run's
log stream and not to the server's handlers, and a child process started with
``subprocess`` with its stdout or stderr left to the parent writes to the run through
a pipe (see :func:`_patch_subprocess`). Threads of no run see the process as it was.

The standard library gives no hook for "a thread or a work item inherits a context"
(``contextvars`` are not copied into new threads or pool workers, and file descriptors
1 and 2 are one per process), so ``Thread.start``, ``ThreadPoolExecutor.submit``,
``Popen.__init__`` and ``Popen.wait`` are wrapped; each wrapper calls the original
and changes nothing for a thread of no run.

Input goes the same way (see :mod:`.stdin`): in a run's threads ``sys.stdin`` reads
the run's input, never the server's; ``input(prompt)`` and ``getpass.getpass(prompt)``
are wrapped so that the run record can show the prompt while it waits, and
``getpass`` reads the run's input (masked in the output) instead of the server's
terminal (``/dev/tty``). :func:`install_input_hooks` puts those two in place; the job
registry calls it before it imports job modules, so that a module's ``from getpass
import getpass`` binds the wrapper.
"""

from __future__ import annotations

import builtins
import codecs
import concurrent.futures
import getpass
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..output import LOG, STDERR, STDOUT
from .buffer import RunCapture
from .context import _local, _set_capture, current_capture
from .streams import _ProxyBase, _StdinProxy, _StdoutProxy, _StreamProxy


class _RunLogHandler(logging.Handler):
    """Sends records made in a run's threads to that run's output."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = _local.capture
        if capture is None:
            return
        try:
            capture.write(LOG, self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _NotFromRuns(logging.Filter):
    """Keeps a run's log records out of the server's own log handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _local.capture is None


_installed = False
_install_lock = threading.Lock()


def install(log_level: int = logging.INFO) -> None:
    """Put the proxies and hooks in place; called again at each run start. Idempotent.

    The proxies are put back whenever ``sys.stdout`` or ``sys.stderr`` was replaced
    since; the thread, executor, subprocess and logging hooks are installed once per
    process, with a handler at ``log_level`` for the runs' records (the root logger's
    level is lowered to it if need be).
    """
    global _installed
    with _install_lock:
        # Whoever replaced sys.stdout since (a test runner, redirect_stdout) is wrapped too.
        if not isinstance(sys.stdout, _ProxyBase):
            sys.stdout = _StdoutProxy(sys.stdout, STDOUT)
        if not isinstance(sys.stderr, _ProxyBase):
            sys.stderr = _StreamProxy(sys.stderr, STDERR)
        if not isinstance(sys.stdin, _StdinProxy):
            sys.stdin = _StdinProxy(sys.stdin)
        if _installed:
            return
        _installed = True
        install_input_hooks()
        _patch_threads()
        _patch_subprocess()
        root = logging.getLogger()
        # On the handlers, not the root logger: a logger's filter sees only records made
        # on that logger, a handler's every record that propagates to it.
        for handler in root.handlers:
            handler.addFilter(_NotFromRuns())
        if not root.handlers:
            # Adding our handler would silence logging's last-resort output: keep its effect.
            fallback = logging.StreamHandler(sys.__stderr__)
            fallback.setLevel(logging.WARNING)
            fallback.addFilter(_NotFromRuns())
            root.addHandler(fallback)
        run_handler = _RunLogHandler(log_level)
        run_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(run_handler)
        if root.level > log_level:
            root.setLevel(log_level)


_input_hooked = False
_input_lock = threading.Lock()
#: The input of a process that is one run's (a job's own process, ``core/child.py``):
#: what ``input()`` and ``getpass`` read in threads of no capture there.
_process_stdin: Any = None


def set_process_stdin(stdin: Any) -> None:
    """Make ``stdin`` (with ``prompt``, ``secret`` and ``readline`` as
    :class:`~.stdin.RunStdin` has them) what ``input()`` and ``getpass`` read in this
    process outside a run's capture: a job's own process, whose run is all it does."""
    global _process_stdin
    _process_stdin = stdin


def install_input_hooks() -> None:
    """Wrap ``builtins.input`` and ``getpass.getpass``, once per process: in a thread
    of no run they are the originals; in a run's thread ``input(prompt)`` records the
    prompt for the run's wait (the original then writes it to ``sys.stdout`` and reads
    ``sys.stdin``), and ``getpass(prompt)`` writes the prompt to the run's stdout and
    reads one line of the run's input as a secret (echoed ``***``), raising EOFError at
    end-of-file as ``input`` does. Idempotent."""
    global _input_hooked
    with _input_lock:
        if _input_hooked:
            return
        _input_hooked = True
        original_input = builtins.input
        original_getpass = getpass.getpass

        def input(prompt: object = "") -> str:
            capture = _local.capture
            stdin = capture.stdin if capture is not None else _process_stdin
            if stdin is None:
                return original_input(prompt)
            stdin.prompt = str(prompt)
            try:
                return original_input(prompt)
            finally:
                stdin.prompt = ""

        def getpass_(prompt: str = "Password: ", stream: Any = None) -> str:
            capture = _local.capture
            stdin = capture.stdin if capture is not None else _process_stdin
            if stdin is None:
                if capture is not None:  # a run without input: never the server's tty
                    raise EOFError("this run has no input")
                return original_getpass(prompt, stream)
            sys.stdout.write(prompt)
            sys.stdout.flush()  # a job's own process: the prompt is seen while it waits
            stdin.prompt, stdin.secret = str(prompt), True
            try:
                line = stdin.readline()
            finally:
                stdin.prompt, stdin.secret = "", False
            if not line:
                raise EOFError("end of the run's input")
            return str(line).removesuffix("\n")

        input.__wrapped__ = original_input  # type: ignore[attr-defined]
        getpass_.__wrapped__ = original_getpass  # type: ignore[attr-defined]
        getpass_.__name__ = getpass_.__qualname__ = "getpass"
        builtins.input = input
        getpass.getpass = getpass_


#: How long ``Popen.wait`` waits, once the child has exited, for the rest of its output
#: to be read (a grandchild that keeps the pipe open is not waited for longer).
SUBPROCESS_DRAIN_SECONDS = 2.0


def _read_child_output(capture: RunCapture, stream: str, fd: int) -> None:
    """Read a child's stdout or stderr pipe into the run until the child closes it."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # its own: no mixed bytes
    try:
        while data := os.read(fd, 65_536):
            capture.write(stream, decoder.decode(data))
        if tail := decoder.decode(b"", final=True):
            capture.write(stream, tail)
    finally:
        os.close(fd)


def _patch_subprocess() -> None:
    """A child process started in a run, with stdout or stderr left to the parent's,
    writes to the run instead of the server's terminal; with its stdin left to the
    parent's, it reads end-of-file (``/dev/null``), never the server's stdin.

    File descriptors 1 and 2 belong to the whole process, so they cannot be told apart
    by run: in a run's threads, ``Popen`` gives such a child a pipe of its own for
    each, and a thread reads it into the run. ``Popen.wait`` (which ``run``, ``call``,
    ``communicate`` and ``with Popen(...)`` use) returns once the child's output has
    been read too, so it comes before what the job prints next.
    """
    original_init = subprocess.Popen.__init__
    original_wait = subprocess.Popen.wait

    def __init__(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        capture = current_capture()
        pipes: list[tuple[str, int, int]] = []
        if capture is not None and len(rest) < 3 and kwargs.get("stdin") is None:
            # fd 0 is the server's (its terminal): a run's child reads end-of-file instead
            kwargs["stdin"] = subprocess.DEVNULL
        if capture is not None and len(rest) < 4:  # stdout and stderr not given by position
            for name, stream in (("stdout", STDOUT), ("stderr", STDERR)):
                if kwargs.get(name) is None:
                    read_end, write_end = os.pipe()
                    kwargs[name] = write_end
                    pipes.append((stream, read_end, write_end))
        try:
            original_init(self, args, *rest, **kwargs)
        except BaseException:
            for _stream, read_end, _write_end in pipes:
                os.close(read_end)
            raise
        finally:
            for _stream, _read_end, write_end in pipes:
                os.close(write_end)  # the child has its copy: EOF when it is done
        forwarders = []
        for stream, read_end, _write_end in pipes:
            assert capture is not None
            forwarder = threading.Thread(
                target=_read_child_output, args=(capture, stream, read_end),
                name="flask-realtime-subprocess", daemon=True)
            forwarder.start()
            forwarders.append(forwarder)
        # On the instance, under a name of ours: ``wait`` needs them, and Popen has no
        # place for caller data.
        self._flask_realtime_forwarders = forwarders  # type: ignore[attr-defined]

    def wait(self: subprocess.Popen[Any], timeout: float | None = None) -> int:
        code = original_wait(self, timeout)
        for forwarder in getattr(self, "_flask_realtime_forwarders", ()):
            forwarder.join(SUBPROCESS_DRAIN_SECONDS)
        return code

    # Patched on the class, once, for every caller: ``subprocess.run``, ``call``,
    # ``check_output`` and libraries that start children all go through these two.
    subprocess.Popen.__init__ = __init__  # type: ignore[method-assign]
    subprocess.Popen.wait = wait  # type: ignore[method-assign]


def _patch_threads() -> None:
    """A thread started by a run's thread, and a pool work item submitted by one, run in
    that run; a work item submitted by a thread of no run runs in no run.

    ``Thread.start`` rather than ``Thread.__init__`` or ``run``: the thread that starts
    it decides, and a subclass that overrides ``run`` is still covered (the instance's
    ``run`` is wrapped, after any override). ``submit`` rather than the pool's worker:
    the workers are shared and long-lived, so the run is set per work item, and put
    back after it, which ``map`` and ``asyncio``'s executor calls go through too.
    """
    original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        capture = current_capture()
        if capture is not None:
            run = self.run

            def run_in_capture() -> None:
                _set_capture(capture)
                try:
                    run()
                finally:
                    _set_capture(None)

            self.run = run_in_capture  # type: ignore[method-assign]
        original_start(self)

    original_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit(
        self: concurrent.futures.ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any,
        **kwargs: Any,
    ) -> concurrent.futures.Future[Any]:
        capture = current_capture()

        def call_in_capture() -> Any:
            previous = _set_capture(capture)  # None too: a shared pool must not leak a run
            try:
                return fn(*args, **kwargs)
            finally:
                _set_capture(previous)

        return original_submit(self, call_in_capture)

    threading.Thread.start = start  # type: ignore[method-assign]
    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]
