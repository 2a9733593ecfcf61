"""A job's signature is its form: types, defaults, choices and bounds come from it."""

from __future__ import annotations

import enum
import sys
import types
from typing import Annotated, Literal

import pytest

from flask_realtime.core.jobs import (
    JobError,
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
    assert [spec.name for spec in registry] == ["countdown", "fail", "flood", "progress"]


def test_a_module_loads_into_every_registry_that_asks() -> None:
    first, second = JobRegistry(), JobRegistry()
    first.load_modules(["flask_realtime.jobs.builtin"])
    second.load_modules(["flask_realtime.jobs.builtin"])  # already imported: nothing re-runs
    assert len(second) == len(first) == 4
    assert second.get("countdown") is first.get("countdown")


def test_a_job_module_that_cannot_be_imported_is_named() -> None:
    with pytest.raises(JobError, match="could not import job module 'no_such_module'"):
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
