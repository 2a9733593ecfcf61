"""``with group(title):`` writes the marker lines the page folds (docs/jobs.md, "Groups")."""

from __future__ import annotations

import pytest

from flask_realtime import Running, group, job

from .conftest import Core


def test_a_group_is_two_marker_lines_around_its_output(core: Core) -> None:
    @job(registry=core.registry)
    def fetch(running: Running) -> None:
        with group("Fetching\nrooms"), group("page 1"):
            print("room a")

    run = core.service.start("u", "fetch")
    assert core.finished(run.id).state.value == "succeeded"
    assert core.texts(run.id) == [
        "::group::Fetching rooms", "::group::page 1", "room a", "::endgroup::", "::endgroup::"]


def test_a_group_whose_block_raises_ends_marked_failed(core: Core) -> None:
    @job(registry=core.registry)
    def broken(running: Running) -> None:
        with group("Deleting"):
            raise RuntimeError("no such room")

    run = core.service.start("u", "broken")
    assert core.finished(run.id).state.value == "failed"
    assert core.texts(run.id, "stdout") == ["::group::Deleting", "::endgroup::failed"]


def test_the_exception_goes_on_through_the_group() -> None:
    with pytest.raises(KeyError), group("x"):
        raise KeyError("k")
