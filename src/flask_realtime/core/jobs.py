"""Jobs: plain functions registered with :func:`job`, their parameters read from the signature.

A job's signature is its form: every parameter after ``running`` (and an optional
:class:`RunContext`) becomes a field whose type comes from the annotation and whose
default comes from the default value. Parameters are validated here, before a run
exists, so a bad request never leaves a half-created run behind.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import inspect
import logging
import math
import os
import sys
import traceback
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import ConfigError
from .access import AccessRuleError, allows, normalize_rule
from .files import Artifacts, IncomingFile, Upload, UploadRef

__all__ = [
    "ISOLATIONS",
    "JobError",
    "JobFailure",
    "JobLimits",
    "JobModuleError",
    "JobRegistry",
    "JobSpec",
    "Param",
    "ParamError",
    "Range",
    "RunContext",
    "Running",
    "UnknownJobError",
    "job",
    "registry",
]

#: ``running()``: true until the user presses Stop.
Running = Callable[[], bool]

log = logging.getLogger(__name__)


class JobError(Exception):
    """A job could not be registered or found; the message is meant for the user."""


class JobFailure(Exception):
    """Raised by a job to fail its run with this message as the error and a line in the
    output, without a traceback (a command job's exit status, say)."""


class JobModuleError(JobError, ConfigError):
    """A job module named in config cannot be loaded (not found, raised while importing,
    or offers a job under a name another job has): configuration to fix before the
    server can start. The message is one sentence naming the module."""


class UnknownJobError(JobError):
    """No job is registered under ``name``; the message tells the user where the jobs are
    listed."""

    def __init__(self, name: str) -> None:
        super().__init__(f"There is no job named {name!r}. GET /api/jobs lists the jobs.")
        self.name = name


class ParamError(JobError):
    """One or more parameters were rejected; ``errors`` maps each parameter to why."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        super().__init__(f"Invalid parameters: {detail}")


@dataclass(frozen=True)
class Range:
    """Bounds for a numeric parameter: ``Annotated[int, Range(1, 1000)]``."""

    min: float | None = None
    max: float | None = None


@dataclass
class RunContext:
    """What a job may know about the run it is part of, injected when the job asks for it.

    A job asks by declaring a parameter annotated ``RunContext``. ``services`` carries
    what the application offers jobs (for instance ``"webex"``: an authenticated API
    access for the run's user); the core does not know what they are. ``artifacts``
    keeps the files the run makes (docs/jobs.md, "Artifacts"): the runner gives each
    run its own, stored with the run.
    """

    run_id: str
    user: str
    services: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Artifacts = field(default_factory=Artifacts)


_MISSING: Any = inspect.Parameter.empty
_KINDS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class Param:
    """One user-facing parameter of a job."""

    name: str
    kind: str  # "int" | "float" | "str" | "bool" | "choice" | "file"
    default: Any = _MISSING
    choices: tuple[Any, ...] = ()
    help: str = ""
    range: Range | None = None
    #: A value not to be repeated where it is not needed: the audit trail (web/audit.py)
    #: records "[secret]" in its place. Set by job sources that can mark one (the
    #: command-jobs file); a signature cannot yet.
    secret: bool = False

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def to_json(self) -> dict[str, Any]:
        """This parameter as the API describes it (``GET /api/jobs``): enum defaults and
        choices by value, optional keys only when set."""
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "required": self.required}
        if not self.required:
            out["default"] = self.default.value if isinstance(self.default, enum.Enum) else (
                self.default
            )
        if self.choices:
            out["choices"] = [c.value if isinstance(c, enum.Enum) else c for c in self.choices]
        if self.help:
            out["help"] = self.help
        if self.range is not None:
            out["min"], out["max"] = self.range.min, self.range.max
        return out

    def convert(self, raw: Any) -> Any:
        """Turn a JSON or command-line value into the declared type, or raise ValueError.

        A ``file`` parameter takes an :class:`~.files.IncomingFile` (a start's upload)
        or a run record's ``{"filename", "size"}`` (:class:`~.files.UploadRef`, when a
        worker validates a stored run again); the run service refuses any value for it
        that did not come as a file."""
        if self.kind == "file":
            if isinstance(raw, IncomingFile | UploadRef):
                return raw
            return UploadRef.from_json(raw)
        if self.kind == "choice":
            for choice in self.choices:
                plain = choice.value if isinstance(choice, enum.Enum) else choice
                if raw == plain or (isinstance(raw, str) and str(plain) == raw):
                    return choice
            allowed = ", ".join(repr(c.value if isinstance(c, enum.Enum) else c)
                                for c in self.choices)
            raise ValueError(f"must be one of {allowed}")
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(raw, str) and raw.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError("must be true or false")
        if self.kind == "str":
            if not isinstance(raw, str):
                raise ValueError("must be a string")
            if len(raw) > 10_000:
                raise ValueError("must be at most 10000 characters")
            return raw
        value = self._number(raw)
        if self.range is not None:
            if self.range.min is not None and value < self.range.min:
                raise ValueError(f"must be at least {self.range.min:g}")
            if self.range.max is not None and value > self.range.max:
                raise ValueError(f"must be at most {self.range.max:g}")
        return value

    def _number(self, raw: Any) -> int | float:
        if isinstance(raw, bool):
            raise ValueError(f"must be {'an integer' if self.kind == 'int' else 'a number'}")
        if self.kind == "int":
            if isinstance(raw, int):
                return raw
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
            if isinstance(raw, str):
                try:
                    return int(raw.strip())
                except ValueError:
                    pass
            raise ValueError("must be an integer")
        if isinstance(raw, int | float):
            value = float(raw)
        elif isinstance(raw, str):
            try:
                value = float(raw.strip())
            except ValueError:
                raise ValueError("must be a number") from None
        else:
            raise ValueError("must be a number")
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


#: Where a job can run (docs/jobs.md, "Isolation and limits"): a thread of the server
#: process, or a process of its own.
ISOLATIONS = ("thread", "process")


@dataclass(frozen=True)
class JobLimits:
    """A run's limits (docs/jobs.md, "Isolation and limits"); None: the server's default
    (``JOB_*`` settings), 0: none. ``timeout``: wall-clock seconds, then the run is
    stopped (forced for a process job) and fails; ``memory_mb``: the process's address
    space (``RLIMIT_AS``) and ``cpu_seconds``: its CPU time (``RLIMIT_CPU``), process
    jobs only; ``output_bytes``: what the job may write (stdout, stderr and log)."""

    timeout: float | None = None
    memory_mb: int | None = None
    cpu_seconds: int | None = None
    output_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("timeout", "memory_mb", "cpu_seconds", "output_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, int | float) or not 0 <= value < float("inf")
                    or (name != "timeout" and not float(value).is_integer())):
                raise JobError(f"the limit {name}= must be a number of at least 0 (0: none), "
                               f"{'' if name == 'timeout' else 'a whole one, '}not {value!r}")

    def over(self, defaults: JobLimits) -> JobLimits:
        """These limits, each one unset taken from ``defaults``."""
        def pick(mine: Any, theirs: Any) -> Any:
            return mine if mine is not None else theirs

        return JobLimits(pick(self.timeout, defaults.timeout),
                         pick(self.memory_mb, defaults.memory_mb),
                         pick(self.cpu_seconds, defaults.cpu_seconds),
                         pick(self.output_bytes, defaults.output_bytes))


@dataclass(frozen=True)
class JobSpec:
    """A registered job: the function and what the page needs to offer it."""

    name: str
    title: str
    description: str
    func: Callable[..., Any]
    params: tuple[Param, ...]
    is_async: bool
    context_arg: str | None = None
    #: "thread", "process", or None: the server's ``ISOLATION``.
    isolation: str | None = None
    limits: JobLimits = field(default_factory=JobLimits)
    #: Who may run (see, re-run) this job: None for every logged-in user, else e-mail
    #: addresses, ``@domains`` and group names (core/access.py, docs/access.md).
    allowed: tuple[str, ...] | None = None

    def allows(self, user: str, groups: Mapping[str, tuple[str, ...]]) -> bool:
        """Whether ``user`` passes this job's ``allowed`` rule with these ``groups``
        (core/access.py :func:`~.access.allows`)."""
        return allows(self.allowed, user, groups)

    def validate(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return converted keyword arguments, or raise ParamError listing every problem."""
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ParamError({"params": "must be an object of name: value"})
        known = {p.name: p for p in self.params}
        errors: dict[str, str] = {
            str(name)[:100]: "is not a parameter of this job" for name in raw if name not in known
        }
        values: dict[str, Any] = {}
        for p in self.params:
            if p.name in raw:
                try:
                    values[p.name] = p.convert(raw[p.name])
                except ValueError as exc:
                    errors[p.name] = str(exc)
            elif p.required:
                errors[p.name] = "is required"
            else:
                values[p.name] = p.default
        if errors:
            raise ParamError(errors)
        return values

    def bind(self, running: Running, params: Mapping[str, Any], context: RunContext) -> Callable[
        [], Any
    ]:
        """The call that runs this job with validated params: returns the result or a coroutine."""
        kwargs = dict(params)
        if self.context_arg:
            kwargs[self.context_arg] = context
        return lambda: self.func(running, **kwargs)

    def params_json(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validated params as plain JSON values (enums by value, files as
        ``{"filename", "size"}``), for run records."""
        return {k: v.value if isinstance(v, enum.Enum) else
                v.to_json() if isinstance(v, IncomingFile | UploadRef) else v
                for k, v in params.items()}

    @property
    def file_params(self) -> tuple[str, ...]:
        """The names of the parameters that take a file (annotated ``Upload``)."""
        return tuple(p.name for p in self.params if p.kind == "file")

    def to_json(self) -> dict[str, Any]:
        """The job as ``GET /api/jobs`` lists it: name, title, description, whether it is
        async, its parameters and its group (from the module)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "async": self.is_async,
            "params": [p.to_json() for p in self.params],
            "group": job_group(self.func.__module__),
        }


def job_group(module: str) -> str:
    """Where the page lists a job defined in ``module``: "webex", "builtin" (the
    package's own) or "user" (everything else)."""
    if module.startswith("flask_realtime.webex"):
        return "webex"
    return "builtin" if module.startswith("flask_realtime.") else "user"


def _param_from(parameter: inspect.Parameter, hint: Any) -> Param:
    help_text = ""
    bounds: Range | None = None
    if typing.get_origin(hint) is typing.Annotated:
        hint, *extras = typing.get_args(hint)
        for extra in extras:
            if isinstance(extra, str):
                help_text = extra
            elif isinstance(extra, Range):
                bounds = extra
    default = parameter.default
    common: dict[str, Any] = {"name": parameter.name, "default": default, "help": help_text}
    if hint is Upload or (typing.get_origin(hint) in (typing.Union, types.UnionType)
                          and set(typing.get_args(hint)) == {Upload, type(None)}):
        if default not in (_MISSING, None):
            raise JobError(f"parameter {parameter.name!r}: a file parameter's default can "
                           "only be None")
        return Param(kind="file", **common)
    if typing.get_origin(hint) is Literal:
        return Param(kind="choice", choices=typing.get_args(hint), **common)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return Param(kind="choice", choices=tuple(hint), **common)
    if hint is _MISSING and default is not _MISSING:
        hint = type(default)
    kind = _KINDS.get(hint) if isinstance(hint, type) else None
    if kind is None:
        raise JobError(
            f"parameter {parameter.name!r} needs a type hint of int, float, str, bool, "
            "Literal[...], an Enum or Upload"
        )
    return Param(kind=kind, range=bounds, **common)


def describe(
    func: Callable[..., Any], *, name: str | None = None, title: str | None = None,
    description: str | None = None, isolation: str | None = None,
    limits: JobLimits | None = None, allowed: Any = None,
) -> JobSpec:
    """Build a JobSpec from a function's signature (and ``allowed``, the rule of who may
    run it); raise JobError if it cannot be a job."""
    if isolation is not None and isolation not in ISOLATIONS:
        raise JobError(f"job {func.__name__!r}: isolation= must be \"thread\" or "
                       f"\"process\", not {isolation!r}")
    signature = inspect.signature(func)
    hints = typing.get_type_hints(func, include_extras=True)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].name != "running":
        raise JobError(f"job {func.__name__!r} must take `running` as its first parameter")
    params: list[Param] = []
    context_arg: str | None = None
    for parameter in parameters[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise JobError(f"job {func.__name__!r}: *args and **kwargs cannot become form fields")
        hint = hints.get(parameter.name, _MISSING)
        if hint is RunContext:
            context_arg = parameter.name
            continue
        params.append(_param_from(parameter, hint))
    doc = inspect.getdoc(func) or ""
    return JobSpec(
        name=name or func.__name__,
        title=title or (name or func.__name__).replace("_", " ").capitalize(),
        description=description if description is not None else doc.split("\n\n")[0],
        func=func,
        params=tuple(params),
        is_async=inspect.iscoroutinefunction(func),
        context_arg=context_arg,
        isolation=isolation,
        limits=limits or JobLimits(),
        allowed=_rule(allowed, name or func.__name__),
    )


def _rule(allowed: Any, name: str) -> tuple[str, ...] | None:
    """``allowed`` checked (core/access.py), or JobError with its sentence."""
    try:
        return normalize_rule(allowed, f"job {name!r}")
    except AccessRuleError as exc:
        raise JobError(str(exc)) from None


#: The attribute :func:`job` sets on each function it registers: the JobSpecs made from
#: it (one per ``@job`` applied), so a registry can collect a module's jobs at any time.
_SPECS_ATTR = "__flask_realtime_jobs__"


class JobRegistry:
    """The jobs a server offers, by name.

    A registry is filled two ways: :func:`job` adds to the one it is given (the
    process-wide :data:`registry` by default) when the decorated module runs, and
    :meth:`load_modules` collects the jobs of modules named in config into this one.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, JobSpec] = {}

    def add(self, spec: JobSpec) -> JobSpec:
        """Offer ``spec`` under its name, and return the job now offered under it.

        A job of the user's (defined outside this package) replaces a built-in job of
        the same name, with a warning in the log; a built-in never replaces the user's,
        so the outcome does not depend on which was imported first. Raise JobError if
        two jobs of the user's (or two built-ins) share a name.
        """
        existing = self._jobs.get(spec.name)
        if existing is not None and existing.func is not spec.func:
            same_place = _place(existing) == _place(spec)
            if same_place:  # a module imported twice re-registers itself: harmless
                pass
            elif _builtin(existing) and not _builtin(spec):
                log.warning("Job %r from %s replaces the built-in job of that name.",
                            spec.name, spec.func.__module__)
            elif _builtin(spec) and not _builtin(existing):
                return existing
            else:
                raise JobError(f"two jobs are named {spec.name!r} ({_place(existing)} and "
                               f"{_place(spec)}); give one another name")
        self._jobs[spec.name] = spec
        return spec

    def get(self, name: Any) -> JobSpec:
        """The job named ``name``; raise UnknownJobError (a sentence for the user) if none."""
        if not isinstance(name, str) or name not in self._jobs:
            raise UnknownJobError(str(name)[:100])
        return self._jobs[name]

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(sorted(self._jobs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._jobs)

    def load_modules(self, modules: str | list[str]) -> None:
        """Import the job modules named in config (``pkg.mod,./other.py``) and add to this
        registry every ``@job`` function each one holds at its top level (defined there
        or imported into it).

        An entry is a module name, importable as installed or from the working directory
        (the ``flask-realtime`` script, unlike ``python -m``, does not put it on the
        import path), or the path of a ``.py`` file (relative to the working directory),
        imported under its file name without the suffix, its folder made importable for
        the modules beside it. Both folders go at the end of the import path: they never
        hide an installed module.

        The jobs are read from the module, not from whatever registry ``@job`` filled
        while the module was imported: a module is imported once per process, but may be
        loaded into any number of registries (an app's, a worker's, a test's), each of
        which then gets the same JobSpecs. Raise :class:`JobModuleError` naming the module
        if it cannot be found or imported (with the line that raised), or if one of its
        jobs takes a name another job has.
        """
        from .capture.hooks import install_input_hooks

        install_input_hooks()  # before the modules bind getpass (docs/jobs.md, "Input")
        names = modules.split(",") if isinstance(modules, str) else modules
        for name in (n.strip() for n in names):
            if not name:
                continue
            module = _import_job_module(name)
            for value in list(vars(module).values()):
                # Static: a plain getattr runs proxies' __getattr__ (flask's current_app
                # raises outside an app context).
                for spec in inspect.getattr_static(value, _SPECS_ATTR, ()):
                    try:
                        self.add(spec)
                    except JobError as exc:
                        raise JobModuleError(f"Job module {name!r}: {exc}.") from exc


def _place(spec: JobSpec) -> str:
    return f"{spec.func.__module__}.{spec.func.__qualname__}"


def _builtin(spec: JobSpec) -> bool:
    """Whether ``spec`` is one of this package's own jobs (built-in or Webex)."""
    return job_group(spec.func.__module__) != "user"


def _importable(folder: str) -> None:
    """Put ``folder`` at the end of the import path, unless it is on it already."""
    if folder not in (os.path.abspath(p or os.curdir) for p in sys.path):
        sys.path.append(folder)


def _import_job_module(name: str) -> Any:
    """The module ``name`` (a module name or a ``.py`` path); JobModuleError if it cannot be."""
    if name.endswith(".py") or os.sep in name or "/" in name:
        return _import_file(name)
    _importable(os.getcwd())
    importlib.invalidate_caches()  # a module written since the folder was last looked at
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise JobModuleError(
                f"Could not import job module {name!r}: there is no module {exc.name!r} "
                f"installed or in the working directory ({os.getcwd()}); name an importable "
                "module, or a file such as ./myjobs.py.") from exc
        raise _failed(name, exc) from exc
    except Exception as exc:  # the module's own code raised: say where
        raise _failed(name, exc) from exc


def _import_file(name: str) -> Any:
    path = Path(name).expanduser().resolve()
    if path.suffix != ".py" or not path.is_file():
        problem = "is not a .py file" if path.suffix != ".py" else f"does not exist ({path})"
        raise JobModuleError(f"Job module {name!r} {problem}: give a file such as "
                             "./myjobs.py, or a module name.")
    module_name = path.stem
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        where = getattr(loaded, "__file__", None)
        if where and Path(where).resolve() == path:
            return loaded
        raise JobModuleError(
            f"Job module {name!r} would be imported as {module_name!r}, but a module of "
            f"that name is already imported from {where or 'Python itself'}: rename the "
            "file.")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None  # a .py path always has a loader
    module = importlib.util.module_from_spec(spec)
    _importable(str(path.parent))
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise _failed(name, exc) from exc
    return module


def _failed(name: str, exc: BaseException) -> JobModuleError:
    """The sentence for a job module whose code raised ``exc``: what, and the line."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}, line {exc.lineno})"
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if "importlib" not in f.filename and not f.filename.startswith("<frozen")]
        if frames:
            where = f" ({frames[-1].filename}, line {frames[-1].lineno})"
    detail = str(exc).rstrip(".") if isinstance(exc, JobError) else (
        f"{type(exc).__name__}: {exc}")
    return JobModuleError(f"Job module {name!r} failed to import{where}: {detail}.")


#: The process-wide registry that :func:`job` fills unless given another. Bound to a
#: second name because :func:`job`'s parameter of the same name hides this one.
registry = _process_registry = JobRegistry()


def job(
    func: Callable[..., Any] | None = None, *, name: str | None = None,
    title: str | None = None, description: str | None = None,
    registry: JobRegistry | None = None, isolation: str | None = None,
    timeout: float | None = None, memory_mb: int | None = None,
    cpu_seconds: int | None = None, output_bytes: int | None = None, allowed: Any = None,
) -> Any:
    """Register a function as a job. Usable bare (``@job``) or with options (``@job(name=…)``).

    ``isolation`` ("thread" or "process"; None: the server's ``ISOLATION``) and the
    limits ``timeout``, ``memory_mb``, ``cpu_seconds``, ``output_bytes`` (see
    :class:`JobLimits`; None: the server's ``JOB_*`` defaults) are docs/jobs.md's
    "Isolation and limits". ``allowed`` limits who may run it: e-mail addresses,
    ``@domains`` and group names of ``JOB_GROUPS`` (docs/access.md); None (the default)
    lets every user run it.

    The job is added to ``registry`` (the process-wide one if None) and its JobSpec
    recorded on the function, which :meth:`JobRegistry.load_modules` reads. The function
    is returned unchanged otherwise. Raise JobError if it cannot be a job.
    """

    def register(f: Callable[..., Any]) -> Callable[..., Any]:
        spec = describe(f, name=name, title=title, description=description,
                        isolation=isolation, limits=JobLimits(
                            timeout, memory_mb, cpu_seconds, output_bytes), allowed=allowed)
        (registry if registry is not None else _process_registry).add(spec)
        setattr(f, _SPECS_ATTR, (*getattr(f, _SPECS_ATTR, ()), spec))
        return f

    return register(func) if func is not None else register
