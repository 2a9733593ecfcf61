"""Files in a process job: uploads in, artifacts and pictures out, as in a thread.

The job's process reads its uploads from the run's folder and keeps artifacts through
the server, which counts the budget and reads only regular files the job wrote into
the folder's exchange (docs/jobs.md, "Files in", "Artifacts", "Process isolation").
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flask_realtime.core import isolation
from flask_realtime.core.files import ARTIFACT_PREFIX, IncomingFile
from flask_realtime.core.ports import StoreUnavailableError
from flask_realtime.core.runs import RunState
from flask_realtime.core.service import Limits
from tests.core.conftest import Core

from .jobs_for_process import PNG


def test_artifacts_saved_written_and_read_back_in_the_jobs_process_are_kept(
        core: Core) -> None:
    done = core.finished(core.service.start("u", "keeps_files").id)
    assert done.state is RunState.SUCCEEDED, core.texts(done.id)
    assert done.result["pid"] != os.getpid()
    assert done.result["used"] == 7 + len(PNG)
    assert done.result["read back"] == "3 rows\n" and done.result["missing"] is None
    assert done.artifacts == [
        {"name": "chart.png", "size": len(PNG), "picture": "png"},
        {"name": "raw/data.csv", "size": 8, "picture": None},
        {"name": "summary.txt", "size": 7, "picture": None}]
    assert core.store.get_blob(done.id, ARTIFACT_PREFIX + "raw/data.csv") == b"a,b\n1,2\n"


def test_an_upload_is_a_file_the_jobs_process_reads(core: Core) -> None:
    run = core.service.start("u", "reads_upload", files={
        "data": IncomingFile("../../etc/passwd", b"uploaded\n")})
    done = core.finished(run.id)
    assert done.state is RunState.SUCCEEDED, core.texts(run.id)
    assert done.result["text"] == "uploaded\n" and done.result["pid"] != os.getpid()
    assert (done.result["filename"], done.result["name"]) == ("passwd", "data")


def test_a_returned_picture_becomes_an_artifact(core: Core) -> None:
    done = core.finished(core.service.start("u", "returns_picture").id)
    assert done.state is RunState.SUCCEEDED and not done.has_result
    assert done.artifacts == [{"name": "picture.png", "size": len(PNG), "picture": "png"}]


def test_the_budget_and_the_names_hold_as_in_a_thread(core: Core) -> None:
    core.service.limits = Limits(artifact_bytes=10)
    done = core.finished(core.service.start("u", "fills_its_budget").id)
    assert done.state is RunState.SUCCEEDED, core.texts(done.id)
    assert [a["name"] for a in done.artifacts] == ["a.bin"]
    stdout = core.texts(done.id, "stdout")
    assert any("'b.bin' (6 bytes) was not kept" in t and "ARTIFACT_BUDGET_BYTES" in t
               for t in stdout), stdout
    assert any("'../outside.txt' leaves its folder" in t for t in stdout), stdout
    assert any("'c.bin' (5 bytes) was not kept" in t for t in core.texts(done.id, "system"))


def test_links_to_the_servers_files_are_not_followed(core: Core, tmp_path: Path) -> None:
    secret = tmp_path / "secrets" / "key.txt"
    secret.parent.mkdir()
    secret.write_text("the server's secret\n")
    done = core.finished(core.service.start(
        "u", "points_at_secrets", {"secret": str(secret)}).id)
    assert done.state is RunState.SUCCEEDED, core.texts(done.id)
    said = done.result
    assert said[0] == "link: ServiceCallError"  # O_NOFOLLOW: ELOOP
    assert said[1:] == [f"{number}: The job's process named no exchange file."
                        for number in ("'../7'", -1, True)], said
    assert done.artifacts == []
    assert not any(b"secret" in (core.store.get_blob(done.id, name) or b"")
                   for name in core.store.list_blobs(done.id))
    assert ("Nothing under artifacts.path was kept: the folder was replaced by a symbolic "
            "link; write the files themselves.") in core.texts(done.id, "system")


def test_a_store_away_while_the_uploads_are_read_fails_the_run_with_a_sentence(
        core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*_args: object) -> None:
        raise StoreUnavailableError("the store is away")

    monkeypatch.setattr(isolation, "prepare_uploads", unavailable)
    done = core.finished(core.service.start("u", "returns_picture").id)
    assert done.state is RunState.FAILED
    assert done.error == ("The job's process could not be started: StoreUnavailableError: "
                          "the store is away")
