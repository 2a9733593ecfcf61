"""A job's signature is its form: types, defaults, choices and bounds come from it."""

from __future__ import annotations

import enum
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import pytest

from flask_realtime.config import ConfigError
from flask_realtime.core.jobs import (
    JobError,
    JobModuleError,
    JobRegistry,
    ParamError,
    Range,
    RunContext,
    Running,
    UnknownJobError,
    job,
)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@pytest.fixture
def registry() -> JobRegistry:
    registry = JobRegistry()

    @job(registry=registry, title="Everything")
    def everything(
        running: Running, ctx: RunContext, count: Annotated[int, Range(1, 10), "how many"],
        ratio: float = 0.5, name: str = "x", loud: bool = False,
        mode: Literal["fast", "slow"] = "fast", colour: Colour = Colour.RED,
    ) -> None:
        """Takes one of each kind of parameter.

        Second paragraph: not part of the description.
        """

    @job(registry=registry)
    async def later(running: Running) -> None:
        """An async job."""

    return registry


def test_signature_describes_the_form(registry: JobRegistry) -> None:
    spec = registry.get("everything").to_json()
    assert spec["title"] == "Everything"
    assert spec["description"] == "Takes one of each kind of parameter."
    params = {p["name"]: p for p in spec["params"]}
    assert "ctx" not in params and "running" not in params
    assert params["count"] == {"name": "count", "type": "int", "required": True,
                               "help": "how many", "min": 1, "max": 10}
    assert params["ratio"]["type"] == "float" and params["ratio"]["default"] == 0.5
    assert params["loud"]["type"] == "bool"
    assert params["mode"]["choices"] == ["fast", "slow"]
    assert params["colour"] == {"name": "colour", "type": "choice", "required": False,
                                "default": "red", "choices": ["red", "blue"]}
    assert registry.get("later").is_async


def test_validation_converts_form_strings(registry: JobRegistry) -> None:
    values = registry.get("everything").validate(
        {"count": "3", "ratio": "0.25", "loud": "true", "mode": "slow", "colour": "blue"})
    assert values == {"count": 3, "ratio": 0.25, "name": "x", "loud": True, "mode": "slow",
                      "colour": Colour.BLUE}


def test_validation_reports_every_problem_at_once(registry: JobRegistry) -> None:
    with pytest.raises(ParamError) as caught:
        registry.get("everything").validate(
            {"count": 11, "ratio": "nan", "loud": "maybe", "mode": "medium", "extra": 1})
    assert caught.value.errors == {
        "count": "must be at most 10", "ratio": "must be a finite number",
        "loud": "must be true or false", "mode": "must be one of 'fast', 'slow'",
        "extra": "is not a parameter of this job"}


@pytest.mark.parametrize("bad", [True, 2.5, "2.5", None, [], {}])
def test_an_int_parameter_refuses_non_integers(registry: JobRegistry, bad: object) -> None:
    with pytest.raises(ParamError) as caught:
        registry.get("everything").validate({"count": bad})
    assert "count" in caught.value.errors


def test_missing_required_parameter(registry: JobRegistry) -> None:
    with pytest.raises(ParamError, match="count: is required"):
        registry.get("everything").validate({})


def test_params_must_be_an_object(registry: JobRegistry) -> None:
    with pytest.raises(ParamError):
        registry.get("everything").validate(["count", 1])  # type: ignore[arg-type]


def test_unknown_job_names_the_way_out(registry: JobRegistry) -> None:
    with pytest.raises(UnknownJobError, match="/api/jobs"):
        registry.get("nope")


def test_a_job_must_take_running_first() -> None:
    with pytest.raises(JobError, match="running"):
        job(registry=JobRegistry())(lambda n: None)


def test_untyped_parameters_without_default_are_refused() -> None:
    def bad(running: Running, thing):  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(JobError, match="type hint"):
        job(bad, registry=JobRegistry())


def test_two_jobs_cannot_share_a_name(registry: JobRegistry) -> None:
    def everything(running: Running) -> None:
        pass

    with pytest.raises(JobError, match="two jobs"):
        job(everything, registry=registry)


def test_job_modules_from_config_are_loaded_into_that_registry() -> None:
    registry = JobRegistry()
    registry.load_modules(" flask_realtime.jobs.builtin, ")
    assert [spec.name for spec in registry] == [
        "countdown", "fail", "flood", "greet", "progress"]


def test_a_module_loads_into_every_registry_that_asks() -> None:
    first, second = JobRegistry(), JobRegistry()
    first.load_modules(["flask_realtime.jobs.builtin"])
    second.load_modules(["flask_realtime.jobs.builtin"])  # already imported: nothing re-runs
    assert len(second) == len(first) == 5
    assert second.get("countdown") is first.get("countdown")


def test_a_job_module_that_cannot_be_imported_is_named() -> None:
    with pytest.raises(JobError, match="Could not import job module 'no_such_module'"):
        JobRegistry().load_modules("no_such_module")


def test_loading_a_module_leaves_its_other_objects_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Proxy:  # like flask's current_app outside an app context
        def __getattr__(self, name: str) -> object:
            raise RuntimeError("working outside of application context")

    def numbers(running: Running) -> None:
        pass

    module = types.ModuleType("jobs_with_a_proxy")
    module.current_app = Proxy()  # type: ignore[attr-defined]
    module.numbers = job(numbers, registry=JobRegistry())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    registry = JobRegistry()
    registry.load_modules(module.__name__)
    assert [spec.name for spec in registry] == ["numbers"]


# Loading job modules named in config (docs/jobs.md, "Loading job modules"). The modules
# written here register into throwaway registries, so the process-wide one (which the
# other tests' built-in jobs live in) is left as it is.

def write_module(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text("from flask_realtime.core.jobs import JobRegistry, Running, job\n"
                    "throwaway = JobRegistry()\n" + textwrap.dedent(body))
    return path


@pytest.fixture
def import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """sys.path as it was after the test, and the modules written here forgotten."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_a_module_is_found_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, import_path: None) -> None:
    write_module(tmp_path, "jobs_in_cwd", """
        @job(registry=throwaway)
        def hello(running: Running) -> None: ...
    """)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    registry = JobRegistry()
    registry.load_modules("jobs_in_cwd")
    assert [spec.name for spec in registry] == ["hello"]
    assert sys.path[-1] == str(tmp_path)  # last: it never hides an installed module


def test_a_module_may_be_a_file_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     import_path: None) -> None:
    (tmp_path / "sub").mkdir()
    write_module(tmp_path / "sub", "jobs_by_path", """
        @job(registry=throwaway)
        def hello(running: Running) -> None: ...
    """)
    monkeypatch.chdir(tmp_path)
    registry = JobRegistry()
    registry.load_modules("./sub/jobs_by_path.py")
    assert registry.get("hello").func.__module__ == "jobs_by_path"
    registry.load_modules(str(tmp_path / "sub" / "jobs_by_path.py"))  # the same module
    assert len(registry) == 1


def test_a_file_named_like_an_imported_module_is_refused(tmp_path: Path,
                                                         import_path: None) -> None:
    path = write_module(tmp_path, "json", "")
    with pytest.raises(JobModuleError, match=r"already imported .*rename the file"):
        JobRegistry().load_modules(str(path))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(JobModuleError, match=r"'\./nope\.py' does not exist"):
        JobRegistry().load_modules("./nope.py")


def test_a_module_that_raises_is_named_with_its_line(tmp_path: Path,
                                                     import_path: None) -> None:
    path = write_module(tmp_path, "jobs_that_raise", "x = 1\nundefined_name\n")
    with pytest.raises(JobModuleError) as refused:
        JobRegistry().load_modules(str(path))
    assert str(refused.value) == (f"Job module '{path}' failed to import ({path}, line 4): "
                                  "NameError: name 'undefined_name' is not defined.")


def test_a_module_with_a_syntax_error_is_named_with_its_line(tmp_path: Path,
                                                             import_path: None) -> None:
    path = write_module(tmp_path, "jobs_with_a_typo", "def broken(:\n")
    with pytest.raises(JobModuleError, match=rf"\({path}, line 3\): SyntaxError"):
        JobRegistry().load_modules(str(path))


def test_a_module_load_error_is_configuration_to_fix() -> None:
    with pytest.raises(ConfigError, match="no module 'no_such_module' installed or in the "
                                          "working directory"):
        JobRegistry().load_modules("no_such_module")


def test_two_jobs_of_a_module_sharing_a_name_are_named(tmp_path: Path,
                                                       import_path: None) -> None:
    path = write_module(tmp_path, "jobs_twice", """
        @job(registry=throwaway, name="same")
        def one(running: Running) -> None: ...

        @job(registry=throwaway, name="same")
        def two(running: Running) -> None: ...
    """)
    with pytest.raises(JobModuleError, match="two jobs are named 'same' "
                                             r"\(jobs_twice.one and jobs_twice.two\)"):
        JobRegistry().load_modules(str(path))


def user_countdown(tmp_path: Path) -> Path:
    return write_module(tmp_path, "my_countdown", """
        @job(registry=throwaway)
        def countdown(running: Running) -> str:
            return "mine"
    """)


def test_a_user_job_replaces_the_built_in_of_its_name(
        tmp_path: Path, import_path: None, caplog: pytest.LogCaptureFixture) -> None:
    registry = JobRegistry()
    registry.load_modules("flask_realtime.jobs.builtin")
    registry.load_modules(str(user_countdown(tmp_path)))
    assert registry.get("countdown").func.__module__ == "my_countdown"
    assert "Job 'countdown' from my_countdown replaces the built-in job" in caplog.text
    assert len(registry) == 5


def test_a_built_in_never_replaces_a_user_job(tmp_path: Path, import_path: None) -> None:
    registry = JobRegistry()
    registry.load_modules(str(user_countdown(tmp_path)))
    registry.load_modules("flask_realtime.jobs.builtin")
    assert registry.get("countdown").func.__module__ == "my_countdown"
