"""Who may run a job (core/access.py): the ``allowed`` rule's three kinds of entry, the
groups of ``JOB_GROUPS`` in both of their written forms, and the run service refusing a
start the rule does not let through."""

from __future__ import annotations

import pytest

from flask_realtime.core.access import (
    AccessRuleError,
    JobAccess,
    allows,
    normalize_rule,
    parse_groups,
)
from flask_realtime.core.jobs import JobError, JobRegistry, UnknownJobError, job
from flask_realtime.core.service import JobForbiddenError, RunService
from flask_realtime.store.memory import MemoryStore

GROUPS = {"ops": ("carol@example.com", "@ops.example.org")}


def test_no_rule_lets_everyone_in_and_an_empty_one_nobody() -> None:
    assert allows(None, "anyone@example.com", {})
    assert not allows((), "anyone@example.com", {})


def test_an_address_lets_that_user_in_in_any_case() -> None:
    rule = normalize_rule(["Alice@Example.com"], "test")
    assert rule == ("alice@example.com",)
    assert allows(rule, "alice@example.com", {})
    assert allows(rule, "ALICE@example.com", {})
    assert not allows(rule, "bob@example.com", {})


def test_a_domain_lets_its_users_in_but_not_its_subdomains_or_look_alikes() -> None:
    rule = normalize_rule(["@example.com"], "test")
    assert allows(rule, "bob@example.com", {})
    assert not allows(rule, "bob@sub.example.com", {})
    assert not allows(rule, "bob@badexample.com", {})
    assert not allows(rule, "example.com", {})  # an id without an address


def test_a_group_lets_its_members_in_and_an_undefined_group_nobody() -> None:
    rule = normalize_rule(["ops"], "test")
    assert allows(rule, "carol@example.com", GROUPS)
    assert allows(rule, "dave@ops.example.org", GROUPS)
    assert not allows(rule, "alice@example.com", GROUPS)
    assert not allows(rule, "carol@example.com", {})


@pytest.mark.parametrize("bad", ["ops", ["not an address"], ["a@b@c"], [3]])
def test_a_rule_that_cannot_be_read_is_refused_with_a_sentence(bad: object) -> None:
    with pytest.raises(AccessRuleError, match="test"):
        normalize_rule(bad, "test")  # type: ignore[arg-type]


def test_groups_read_from_json_and_from_text() -> None:
    as_json = parse_groups('{"ops": ["Carol@example.com", "@ops.example.org"]}')
    as_text = parse_groups("ops = carol@example.com, @ops.example.org; dev=@example.com")
    assert as_json == {"ops": ("carol@example.com", "@ops.example.org")}
    assert as_text == {**as_json, "dev": ("@example.com",)}
    assert parse_groups(None) == {} == parse_groups("")


@pytest.mark.parametrize("bad", ['{"ops": ', "ops carol@example.com", {"9": []},
                                 {"ops": "carol@example.com"}, {"ops": ["nobody"]}])
def test_groups_that_cannot_be_read_are_refused(bad: object) -> None:
    with pytest.raises(AccessRuleError, match="JOB_GROUPS"):
        parse_groups(bad)


def test_job_takes_the_rule_and_refuses_a_bad_one() -> None:
    registry = JobRegistry()

    @job(registry=registry, allowed=["ops", "@Example.com"])
    def restricted(running: object) -> None:
        """Only some."""

    assert registry.get("restricted").allowed == ("ops", "@example.com")
    with pytest.raises(JobError, match="restricted2"):
        @job(registry=registry, name="restricted2", allowed="ops")
        def restricted2(running: object) -> None:
            """A string, not a list."""


def test_the_run_service_refuses_and_hides_a_job_the_user_may_not_run() -> None:
    registry = JobRegistry()

    @job(registry=registry, allowed=["carol@example.com"])
    def private(running: object) -> None:
        """Carol's."""

    @job(registry=registry)
    def public(running: object) -> None:
        """Everyone's."""

    service = RunService(MemoryStore(), registry)
    service.runner = type("NoRunner", (), {"submit": lambda *a: None, "stop": lambda *a: None})()
    service.access = JobAccess({})
    assert [s.name for s in service.jobs_for("bob@example.com")] == ["public"]
    assert [s.name for s in service.jobs_for("carol@example.com")] == ["private", "public"]
    with pytest.raises(UnknownJobError, match="There is no job named 'private'"):
        service.start("bob@example.com", "private")  # as for a name no job has
    with pytest.raises(JobForbiddenError, match="You may not run the job 'private'"):
        service.start("bob@example.com", "private", schedule=("s1", "due"))  # theirs
    assert service.store.list_runs() == []
    assert service.start("carol@example.com", "private").user == "carol@example.com"


def test_unknown_groups_are_named_per_job() -> None:
    registry = JobRegistry()

    @job(registry=registry, allowed=["ops", "nope", "x@example.com"])
    def some(running: object) -> None:
        """Some."""

    assert JobAccess(GROUPS).unknown_groups(registry) == {"some": ["nope"]}
