"""Command jobs: any executable offered as a job, from Python (:func:`command_job`) or
from a jobs file (:func:`load_commands`, the ``COMMANDS`` setting).

Contract: a command job is a :class:`~.jobs.JobSpec` like any other (its parameters are
:class:`~.jobs.Param`\\ s, validated, listed and shown the same way), whose function
executes ``argv`` with no shell. An argv element that is exactly ``"{name}"`` is
replaced by that parameter's value, as one element, whatever it holds (spaces, ``;``,
``$(...)``, quotes, newlines, a leading ``-``); any other element is passed as written,
with ``{{`` and ``}}`` for literal braces, and a placeholder inside other text
(``"--x={a}"``) is refused when the job is registered. The child gets only the
environment variables of ``env`` (an allow-list: none of the server's settings may be
in it), runs in ``cwd``, in a session (process group) of its own, with its stdin
``/dev/null`` unless ``stdin`` is on (then it is the run's input, docs/jobs.md,
"Input"). Its stdout and stderr are the run's stdout and stderr, line by line. Exit
status 0 succeeds; another fails the run with "the command exited with status N", a
signal with "the command died (SIGxxx)". At Stop the group gets SIGTERM, after the
grace period SIGKILL (:func:`~.processes.stop_group`); the run ends ``stopped`` with a
system line saying which it took.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError
from .access import AccessRuleError, normalize_rule
from .capture import SUBPROCESS_DRAIN_SECONDS, RunStdin, current_capture
from .capture.hooks import _read_child_output
from .files import Upload
from .jobs import _SPECS_ATTR, JobError, JobFailure, JobRegistry, JobSpec, Param, Range, Running
from .jobs import registry as default_registry
from .output import STDERR, STDOUT
from .processes import signal_name, stop_group

#: A parameter's name: what a placeholder can hold.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
#: A whole argv element that is a placeholder.
PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}\Z")
#: Environment variables a command job may never be given: the server's own settings
#: and secrets (its session key, the store's address, the Webex integration's secret).
FORBIDDEN_ENV = re.compile(
    r"(FLASK_REALTIME_.*|FLASK_.*|SECRET_KEY|REDIS_URL|CLIENT_ID|CLIENT_SECRET|"
    r"REDIRECT_URI|SCOPE|WEBEX_.*|TOKEN_ENCRYPTION_KEY|METRICS_TOKEN)\Z")
#: A parameter's keys in a jobs file (and in :func:`command_job`'s ``params`` mapping).
PARAM_KEYS = ("type", "default", "help", "choices", "min", "max", "secret")
#: A job's keys in a jobs file.
JOB_KEYS = ("title", "description", "argv", "params", "cwd", "env", "stdin", "allowed")
KINDS = ("str", "int", "float", "bool", "choice", "file")


class CommandError(ValueError):
    """A command job's definition is wrong: ``key`` (dotted, from the job down) says
    where, the message what to write instead."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Command:
    """What a command job executes: argv with its placeholders, where, with what."""

    argv: tuple[str, ...]
    cwd: str | None = None
    env: tuple[str, ...] = ()
    stdin: bool = False

    def argv_for(self, params: Mapping[str, Any]) -> list[str]:
        """The argv for validated ``params``: each placeholder element becomes its
        parameter's value as one element (bool as ``true``/``false``), every other
        element its text with ``{{``/``}}`` made single braces."""
        out = []
        for element in self.argv:
            match = PLACEHOLDER.match(element)
            if match:
                out.append(_as_argument(params[match.group(1)]))
            else:
                out.append(element.replace("{{", "{").replace("}}", "}"))
        return out

    def environment(self) -> dict[str, str]:
        """The child's environment: the allow-listed variables the server has, only."""
        return {name: os.environ[name] for name in self.env if name in os.environ}


def _as_argument(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Upload):  # a file parameter: the path of the run's copy
        return str(value.path)
    return str(getattr(value, "value", value))


def check_argv(argv: Any, params: Iterable[Param]) -> tuple[str, ...]:
    """``argv`` as a tuple, or CommandError: a non-empty list of strings whose
    placeholders are whole elements naming declared parameters (argv[0] cannot be one),
    each parameter used."""
    if (not isinstance(argv, list | tuple) or not argv
            or not all(isinstance(a, str) for a in argv)):
        raise CommandError("argv", 'argv must be a non-empty list of strings, the program '
                                   'first: ["rsync", "-a", "--", "{source}", "/backups/"]')
    names = {p.name for p in params}
    used: set[str] = set()
    for index, element in enumerate(argv):
        match = PLACEHOLDER.match(element)
        if match:
            name = match.group(1)
            if name not in names:
                raise CommandError("argv", f"argv element {element!r} names no parameter "
                                           f"(declare params.{name}, or write {{{{ and }}}} "
                                           "for literal braces)")
            if index == 0:
                raise CommandError("argv", "argv[0], the program, cannot be a parameter")
            used.add(name)
            continue
        bare = element.replace("{{", "").replace("}}", "")
        if "{" in bare or "}" in bare:
            raise CommandError("argv", (
                f"argv element {element!r} puts a placeholder or a brace inside other "
                "text; a placeholder must be a whole element (\"--x\", \"{a}\" rather "
                "than \"--x={a}\"), and {{ and }} are literal braces"))
    unused = sorted(names - used)
    if unused:
        raise CommandError("params", f"parameter {unused[0]!r} is not used in argv: add "
                                     f'"{{{unused[0]}}}" to argv, or remove it')
    return tuple(argv)


def param_from_table(name: Any, table: Any) -> Param:
    """A :class:`~.jobs.Param` from a jobs file's table (``type``, ``default``, ``help``,
    ``choices``, ``min``, ``max``), checked as a Python job's would be; CommandError
    (its key below the parameter) otherwise."""
    key = f"params.{name}"
    if not isinstance(name, str) or not NAME.match(name) or name == "running":
        raise CommandError(key, f"parameter name {name!r} must be letters, digits and _, "
                                "starting with a letter, and not running")
    if not isinstance(table, Mapping):
        raise CommandError(key, f'params.{name} must be a table: {{ type = "str" }}')
    for unknown in table.keys() - set(PARAM_KEYS):
        raise CommandError(f"{key}.{unknown}", (
            f"params.{name} has no key {unknown!r}; a parameter has "
            f"{', '.join(PARAM_KEYS)}"))
    kind = table.get("type", "str")
    if kind not in KINDS:
        raise CommandError(f"{key}.type", f"params.{name}.type is {kind!r}; it must be one "
                                          f"of {', '.join(KINDS)}")
    choices: tuple[Any, ...] = ()
    if kind == "choice":
        raw = table.get("choices")
        if (not isinstance(raw, list) or not raw or len(set(map(repr, raw))) != len(raw)
                or not all(isinstance(c, str | int | float) and not isinstance(c, bool)
                           for c in raw)):
            raise CommandError(f"{key}.choices", (
                f"params.{name} is a choice: give choices, a list of distinct strings or "
                'numbers (choices = ["fast", "safe"])'))
        choices = tuple(raw)
    elif "choices" in table:
        raise CommandError(f"{key}.choices", f'params.{name}.choices needs type = "choice"')
    bounds = None
    if "min" in table or "max" in table:
        if kind not in ("int", "float"):
            raise CommandError(f"{key}.min", f"params.{name}: min and max are for int and "
                                             "float parameters")
        low, high = table.get("min"), table.get("max")
        for which, value in (("min", low), ("max", high)):
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise CommandError(f"{key}.{which}", f"params.{name}.{which} must be a number")
        bounds = Range(low, high)
    help_text = table.get("help", "")
    if not isinstance(help_text, str):
        raise CommandError(f"{key}.help", f"params.{name}.help must be a string")
    secret = table.get("secret", False)
    if not isinstance(secret, bool):
        raise CommandError(f"{key}.secret", f"params.{name}.secret must be true or false")
    if kind == "file" and "default" in table:
        raise CommandError(f"{key}.default", f"params.{name} is a file: it has no default "
                                             "(the user uploads it with each start)")
    param = Param(name=name, kind=kind, choices=choices, help=help_text, range=bounds,
                  secret=secret)
    if "default" in table:
        try:
            default = param.convert(table["default"])
        except ValueError as exc:
            raise CommandError(f"{key}.default",
                               f"params.{name}.default {table['default']!r} {exc}") from None
        param = Param(name=name, kind=kind, default=default, choices=choices, help=help_text,
                      range=bounds, secret=secret)
    return param


def _check_env(env: Any) -> tuple[str, ...]:
    if not isinstance(env, list | tuple) or not all(isinstance(e, str) for e in env):
        raise CommandError("env", 'env must be a list of variable names: ["HOME", "LANG"]')
    for name in env:
        if FORBIDDEN_ENV.match(name):
            raise CommandError("env", (
                f"env may not pass {name}: it is the server's own setting or secret, and "
                "a command job never gets those"))
    return tuple(env)


def _check_cwd(cwd: Any, base: Path | None) -> str | None:
    if cwd is None:
        return None
    if not isinstance(cwd, str) or not cwd:
        raise CommandError("cwd", "cwd must be the path of a folder")
    path = Path(cwd).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_dir():
        raise CommandError("cwd", f"cwd {cwd!r} is not a folder ({path})")
    return str(path.resolve())


def _check_program(argv: tuple[str, ...], cwd: str | None, env: tuple[str, ...]) -> None:
    program = argv[0]
    if "/" in program:
        path = Path(program).expanduser()
        if not path.is_absolute():
            path = Path(cwd or os.getcwd()) / path
        found = path.is_file() and os.access(path, os.X_OK)
    else:  # looked up as the child will: on its PATH (passed, or the system's default)
        path_var = os.environ.get("PATH") if "PATH" in env else os.defpath
        found = shutil.which(program, path=path_var) is not None
    if not found:
        raise CommandError("argv", f"the program {program!r} is not an executable file "
                                   "(with a /: relative to cwd; without: on the PATH the "
                                   "command gets)")


def make_command_job(name: Any, argv: Any, *, title: Any = None, description: Any = "",
                     params: Any = (), cwd: Any = None, env: Any = (), stdin: Any = False,
                     source: str = "commands", base: Path | None = None, allowed: Any = None,
                     ) -> tuple[JobSpec, Callable[..., Any]]:
    """The JobSpec of a command job and its function; CommandError for anything wrong.
    ``params`` is a sequence of :class:`~.jobs.Param` or a mapping of name to table (a
    jobs file's form); ``base`` is the folder a relative ``cwd`` is taken from."""
    if not isinstance(name, str) or not NAME.match(name):
        raise CommandError("name", f"the job name {name!r} must be letters, digits and _, "
                                   "starting with a letter")
    if isinstance(params, Mapping):
        declared = [param_from_table(n, t) for n, t in params.items()]
    elif isinstance(params, list | tuple) and all(isinstance(p, Param) for p in params):
        declared = list(params)
        for param in declared:
            if not NAME.match(param.name) or param.name == "running":
                raise CommandError(f"params.{param.name}", (
                    f"parameter name {param.name!r} must be letters, digits and _, "
                    "starting with a letter, and not running"))
    else:
        raise CommandError("params", "params must be a table of parameters (or, in Python, "
                                     "a list of Param)")
    for text, key in ((title, "title"), (description, "description")):
        if text is not None and not isinstance(text, str):
            raise CommandError(key, f"{key} must be a string")
    if not isinstance(stdin, bool):
        raise CommandError("stdin", "stdin must be true or false")
    try:
        rule = normalize_rule(allowed, f"job {name!r}")
    except AccessRuleError as exc:
        raise CommandError("allowed", str(exc)) from None
    command = Command(check_argv(argv, declared), _check_cwd(cwd, base), _check_env(env),
                      stdin)
    _check_program(command.argv, command.cwd, command.env)

    def call(running: Running, **values: Any) -> None:
        run_command(command, running, values)

    # Where the registry says the job comes from: the jobs file (or the caller's
    # module), so a command job counts as the user's, never as a built-in.
    call.__module__ = source
    call.__qualname__ = call.__name__ = name
    spec = JobSpec(name=name, title=title or name.replace("_", " ").capitalize(),
                   description=description or "", func=call, params=tuple(declared),
                   is_async=False, allowed=rule)
    setattr(call, _SPECS_ATTR, (spec,))
    return spec, call


def command_job(name: str, argv: list[str], *, title: str | None = None,
                description: str = "", params: Any = (), cwd: str | None = None,
                env: Iterable[str] = (), stdin: bool = False,
                registry: JobRegistry | None = None, allowed: Any = None) -> Callable[..., Any]:
    """Register the executable ``argv`` as the job ``name`` (see the module's contract)
    in ``registry`` (the process-wide one if None), and return its function: kept at a
    module's top level, ``FLASK_REALTIME_JOBS`` finds it there as it finds ``@job``
    functions. ``params``: a list of :class:`~.jobs.Param`, or a mapping of name to
    ``{"type": ..., "default": ..., ...}`` as in a jobs file; ``allowed`` who may run
    it, as ``@job(allowed=...)`` (docs/access.md). Raise JobError with a sentence if
    the job cannot be."""
    caller = sys._getframe(1).f_globals.get("__name__", "commands")
    try:
        spec, call = make_command_job(name, argv, title=title, description=description,
                                      params=params, cwd=cwd, env=list(env), stdin=stdin,
                                      source=str(caller), allowed=allowed)
    except CommandError as exc:
        raise JobError(f"command job {name!r}: {exc}") from None
    (registry if registry is not None else default_registry).add(spec)
    return call


# -- executing ------------------------------------------------------------------------

#: How often a command's wait looks at ``running()``.
POLL_SECONDS = 0.05
#: SIGKILL comes this long before the grace period ends: an RQ worker kills the
#: work-horse's process group when it ends (adapters/rq.py), and the command, in a
#: session of its own, would outlive a horse killed first.
KILL_MARGIN_SECONDS = 0.5


def run_command(command: Command, running: Running, params: Mapping[str, Any]) -> None:
    """Execute ``command`` for the run whose thread this is, until it exits or is
    stopped; raise :class:`~.runner.JobFailure` for a failure (no traceback)."""
    capture = current_capture()
    if capture is None:
        raise RuntimeError("a command job runs inside a run (its output has nowhere to go)")
    grace = float(getattr(running, "grace", 2.0))
    pipes = [os.pipe(), os.pipe()]
    try:
        process = subprocess.Popen(
            command.argv_for(params), stdin=subprocess.PIPE if command.stdin
            else subprocess.DEVNULL, stdout=pipes[0][1], stderr=pipes[1][1],
            cwd=command.cwd, env=command.environment(), start_new_session=True)
    except OSError as exc:
        for read_end, write_end in pipes:
            os.close(read_end)
            os.close(write_end)
        raise JobFailure(f"the command could not be started: {exc.strerror or exc} "
                         f"({command.argv[0]})") from None
    for _read_end, write_end in pipes:
        os.close(write_end)  # the child holds its copies: end-of-file when it is done
    readers = [threading.Thread(target=_read_child_output, args=(capture, stream, read_end),
                                name="flask-realtime-command", daemon=True)
               for stream, (read_end, _w) in zip((STDOUT, STDERR), pipes, strict=True)]
    for reader in readers:
        reader.start()
    if command.stdin:
        threading.Thread(target=_feed_stdin, args=(process, capture.stdin, running),
                         name="flask-realtime-command-stdin", daemon=True).start()
    took: str | None = None
    term = grace
    stopped = False
    while True:
        try:
            process.wait(POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        if not running():
            stopped = True
            term = max(grace - KILL_MARGIN_SECONDS, grace / 2)
            took = stop_group(process.pid, lambda t: _exited(process, t), term_seconds=term)
            process.wait()
            break
    for reader in readers:
        reader.join(SUBPROCESS_DRAIN_SECONDS)
    code = process.returncode
    if stopped:
        capture.system(
            f"The command's process group got SIGTERM at Stop and ended (exit {code})."
            if took == "SIGTERM" else
            f"The command's process group did not end within {term:g} s of SIGTERM and "
            "got SIGKILL." if took == "SIGKILL" else
            "The command had already ended when Stop came.")
        return
    if code < 0:
        raise JobFailure(f"the command died ({signal_name(-code)})")
    if code > 0:
        raise JobFailure(f"the command exited with status {code}")


def _exited(process: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _feed_stdin(process: subprocess.Popen[bytes], stdin: RunStdin | None,
                running: Running) -> None:
    """Write the run's input to the command's stdin as it comes, and close it at
    end-of-file; ends when the command does."""
    pipe = process.stdin
    assert pipe is not None
    if stdin is None:
        pipe.close()
        return
    reader = RunStdin(stdin.source, stdin.run_id, stdin.capture,
                      lambda: running() and process.poll() is None, on_wait=stdin.on_wait)
    with contextlib.suppress(OSError):  # the command closed its stdin, or exited
        while text := reader.read_item():
            pipe.write(text.encode())
            pipe.flush()
    with contextlib.suppress(OSError):
        pipe.close()


# -- jobs files -----------------------------------------------------------------------

def load_commands(path: str | os.PathLike[str], registry: JobRegistry) -> list[JobSpec]:
    """Add the command jobs of the TOML file at ``path`` to ``registry``; raise
    :class:`~flask_realtime.config.ConfigError` with one sentence naming the file, the
    line and the key of the first problem. docs/jobs.md, "Command jobs", has the form:
    a table ``[jobs.NAME]`` per job with ``argv`` and optionally ``title``,
    ``description``, ``cwd`` (relative to the file's folder), ``env``, ``stdin`` and
    ``[jobs.NAME.params.PARAM]`` tables."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ConfigError(f"COMMANDS names {str(path)!r}, which cannot be read ({reason}): "
                          "give the path of a TOML jobs file.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}).") from None
    where = _Locator(file, text)
    for key in data.keys() - {"jobs"}:
        raise ConfigError(where.sentence((key,), f"a jobs file holds [jobs.NAME] tables "
                                                 f"only, not {key!r}"))
    jobs = data.get("jobs", {})
    if not isinstance(jobs, dict) or not jobs:
        raise ConfigError(where.sentence(("jobs",), "there are no jobs: add a [jobs.NAME] "
                                                    "table with argv"))
    specs = []
    for name, table in jobs.items():
        if not isinstance(table, dict):
            raise ConfigError(where.sentence(("jobs", name), f"jobs.{name} must be a table"))
        for unknown in table.keys() - set(JOB_KEYS):
            raise ConfigError(where.sentence(("jobs", name, unknown), (
                f"jobs.{name} has no key {unknown!r}; a job has {', '.join(JOB_KEYS)}")))
        if "argv" not in table:
            raise ConfigError(where.sentence(("jobs", name), f"jobs.{name} needs argv"))
        try:
            spec, _call = make_command_job(
                name, table["argv"], title=table.get("title"),
                description=table.get("description", ""), params=table.get("params", {}),
                cwd=table.get("cwd"), env=table.get("env", []), stdin=table.get("stdin", False),
                source=str(file), base=file.parent, allowed=table.get("allowed"))
            registry.add(spec)
        except CommandError as exc:
            raise ConfigError(where.sentence(("jobs", name, *exc.key.split(".")),
                                             str(exc))) from None
        except JobError as exc:
            raise ConfigError(where.sentence(("jobs", name), str(exc))) from None
        specs.append(spec)
    return specs


_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
#: A key at the start of a line (``argv =``, ``params.n.type =``).
_KEY = re.compile(rf"({_PART}(?:\s*\.\s*{_PART})*)\s*=")


class _Locator:
    """Finds the line of a key in a TOML text, for error sentences: the line of the key
    (under its table header, or as a dotted key), else of its table's header; best
    effort, the sentence leaves the line out when it is not found."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.entries: list[tuple[tuple[str, ...], int]] = []
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            header = re.match(r"\[\[?([^\]]+)\]\]?", stripped)
            if header:
                table = _dotted(header.group(1))
                self.entries.append((table, number))
                continue
            key = _KEY.match(stripped)
            if key:
                self.entries.append((table + _dotted(key.group(1)), number))

    def line_of(self, path: tuple[str, ...]) -> int | None:
        """The first line of ``path`` or, failing that, of the nearest table above it."""
        for length in range(len(path), 0, -1):
            for entry, number in self.entries:
                if entry == path[:length]:
                    return number
        return None

    def sentence(self, path: tuple[str, ...], problem: str) -> str:
        """One sentence: file, line, key, then the problem."""
        number = self.line_of(path)
        at = f", line {number}" if number is not None else ""
        return f"{self.file}{at}, key {'.'.join(path)}: {problem.rstrip('.')}."


def _dotted(key: str) -> tuple[str, ...]:
    parts = re.findall(r"""\s*("[^"]*"|'[^']*'|[^.]+)\s*(?:\.|$)""", key)
    return tuple(p.strip().strip("\"'") for p in parts)
