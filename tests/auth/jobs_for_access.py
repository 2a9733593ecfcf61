"""Jobs with ``allowed`` rules for tests/auth/test_access.py and test_admin.py: one of
each kind of entry (an address, a domain, a group), one nobody may run, and one with a
parameter marked secret (as the command-jobs file can mark one).

They are registered in a registry of their own, not the process-wide one: importing
this module offers nothing; an app whose ``JOBS`` names it loads them."""

from __future__ import annotations

import dataclasses

from flask_realtime import Running, Upload, job
from flask_realtime.core.jobs import JobRegistry, describe

_OWN = JobRegistry()


@job(registry=_OWN, allowed=["user1@example.com"])
def only_user1(running: Running) -> None:
    """An address: user1 only."""
    print("only user1")


@job(registry=_OWN, allowed=["@example.com"])
def same_domain(running: Running) -> None:
    """A domain: every simulator user."""
    print("same domain")


@job(registry=_OWN, allowed=["@other.example"])
def other_domain(running: Running) -> None:
    """A domain no simulator user has."""
    print("other domain")


@job(registry=_OWN, allowed=["ops"])
def ops_only(running: Running) -> None:
    """A group: JOB_GROUPS's ops (user2 in the tests)."""
    print("ops only")


@job(registry=_OWN, allowed=[])
def nobody(running: Running) -> None:
    """An empty rule: nobody."""


@job(registry=_OWN, allowed=[])
def nobody_with_a_file(running: Running, data: Upload) -> None:
    """Nobody's, and it takes a file (the socket's start refuses those by name)."""


def with_secret(running: Running, password: str = "", n: int = 0) -> None:
    """A job whose ``password`` is marked secret."""
    print("n is", n)


_spec = describe(with_secret)
with_secret.__flask_realtime_jobs__ = (dataclasses.replace(  # type: ignore[attr-defined]
    _spec, params=tuple(dataclasses.replace(p, secret=p.name == "password")
                        for p in _spec.params)),)
