"""Files in and out of a run (issue 20, items 5 to 7): a job's ``Upload`` parameter, the
artifacts it keeps, the pictures it returns; refusals are sentences and lose nothing."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from flask_realtime import ArtifactError, Picture, RunContext, Upload
from flask_realtime.core.files import (
    ARTIFACT_PREFIX,
    UPLOAD_PREFIX,
    Artifacts,
    IncomingFile,
    check_artifact_name,
    display_filename,
    picture_kind,
)
from flask_realtime.core.jobs import JobError, ParamError, Running, describe, job
from flask_realtime.core.runs import RunState
from flask_realtime.core.service import LimitReachedError, Limits

from .conftest import Core

#: The smallest valid PNG: one transparent pixel.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def test_an_upload_parameter_is_a_file_field_and_required_unless_none() -> None:
    def reads(running: Running, data: Upload, extra: Upload | None = None) -> None: ...

    spec = describe(reads)
    assert [p.to_json() for p in spec.params] == [
        {"name": "data", "type": "file", "required": True},
        {"name": "extra", "type": "file", "required": False, "default": None}]
    assert spec.file_params == ("data", "extra")
    with pytest.raises(ParamError) as missing:
        spec.validate({})
    assert missing.value.errors == {"data": "is required"}

    def bad(running: Running, data: Upload = "x.csv") -> None: ...  # type: ignore[assignment]

    with pytest.raises(JobError, match="default can only be None"):
        describe(bad)


def test_the_job_reads_its_upload_from_a_temp_file_named_after_the_parameter(
        core: Core) -> None:
    seen: dict[str, Any] = {}

    @job(registry=core.registry)
    def count_lines(running: Running, data: Upload) -> int:
        seen.update(path=data.path, filename=data.filename, size=data.size,
                    exists=data.path.exists())
        with data.open() as f:
            return len(f.read().splitlines())

    run = core.service.start("u", "count_lines", files={
        "data": IncomingFile("../../etc/passwd", b"a\nb\nc\n")})
    done = core.finished(run.id)
    assert done.state is RunState.SUCCEEDED and done.result == 3
    assert done.params == {"data": {"filename": "passwd", "size": 6}}
    # The browser's name is shown, never used: the file is the parameter's, in a temp folder.
    assert seen["path"].name == "data" and seen["exists"] and seen["size"] == 6
    assert seen["filename"] == "passwd"
    assert not seen["path"].exists(), "the temp file goes when the job returns"
    assert core.store.get_blob(run.id, UPLOAD_PREFIX + "data") == b"a\nb\nc\n"


def test_a_worker_reads_the_upload_from_the_store(core: Core) -> None:
    """What an RQ worker does: validate the stored record's params, then run it."""
    @job(registry=core.registry)
    def echo(running: Running, data: Upload) -> str:
        return data.read_bytes().decode()

    spec = core.registry.get("echo")
    values = spec.validate({"data": {"filename": "x.txt", "size": 2}})
    from flask_realtime.core.files import UploadRef
    from flask_realtime.core.runner import prepare_uploads

    assert values["data"] == UploadRef("x.txt", 2)
    core.store.put_blob("r1", UPLOAD_PREFIX + "data", b"hi")
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"fr-test-{os.getpid()}"
    try:
        prepared = prepare_uploads(core.store, "r1", spec, values, folder)
        assert prepared["data"].read_bytes() == b"hi"
        assert prepared["data"].path.parent == folder / "uploads"
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def test_bad_uploads_are_refused_with_sentences_and_leave_nothing(core: Core) -> None:
    @job(registry=core.registry)
    def takes_file(running: Running, data: Upload) -> None: ...

    @job(registry=core.registry)
    def takes_none(running: Running, n: int = 1) -> None: ...

    core.service.limits = Limits(upload_bytes=10)
    with pytest.raises(ParamError) as big:
        core.service.start("u", "takes_file", files={"data": IncomingFile("a", b"x" * 11)})
    assert big.value.errors == {
        "data": "is 11 bytes, larger than the 10 bytes a file may have (MAX_UPLOAD_BYTES)"}
    with pytest.raises(ParamError) as none:
        core.service.start("u", "takes_none", files={"n": IncomingFile("a", b"1")})
    assert none.value.errors == {"n": "is a file, but this job takes no files"}
    with pytest.raises(ParamError) as as_value:  # a JSON (or Socket.IO) start
        core.service.start("u", "takes_file", {"data": {"filename": "x", "size": 1}})
    assert "multipart/form-data" in as_value.value.errors["data"]
    assert core.store.list_runs() == [] and core.store._blobs == {}


def test_an_upload_of_a_start_refused_at_the_limit_is_deleted(core: Core) -> None:
    @job(registry=core.registry)
    def takes_file(running: Running, data: Upload) -> None: ...

    core.service.limits = Limits(per_user=0)
    with pytest.raises(LimitReachedError):
        core.service.start("u", "takes_file", files={"data": IncomingFile("a", b"1")})
    assert core.store._blobs == {}


def test_artifacts_saved_and_written_are_kept_listed_and_readable(core: Core) -> None:
    @job(registry=core.registry)
    def report(running: Running, context: RunContext) -> None:
        context.artifacts.save("summary.txt", "3 rows\n")
        context.artifacts.save("chart.png", Picture(PNG))
        (context.artifacts.path / "raw").mkdir()
        (context.artifacts.path / "raw" / "data.csv").write_text("a,b\n1,2\n")
        (context.artifacts.path / "drawing.svg").write_bytes(SVG)

    done = core.finished(core.service.start("u", "report").id)
    assert done.state is RunState.SUCCEEDED
    assert done.artifacts == [
        {"name": "chart.png", "size": len(PNG), "picture": "png"},
        {"name": "drawing.svg", "size": len(SVG), "picture": None},
        {"name": "raw/data.csv", "size": 8, "picture": None},
        {"name": "summary.txt", "size": 7, "picture": None}]
    assert core.store.get_blob(done.id, ARTIFACT_PREFIX + "raw/data.csv") == b"a,b\n1,2\n"


@pytest.mark.parametrize("name", [
    "../secret", "a/../../b", "/etc/passwd", "a\x00b", "bell\x07", "new\nline", "c:\\x",
    "", "a//b", "./a"])
def test_an_artifact_name_that_leaves_its_folder_or_hides_characters_is_refused(
        name: str) -> None:
    with pytest.raises(ArtifactError) as refused:
        check_artifact_name(name)
    sentence = str(refused.value)
    assert sentence.endswith(".") and sentence.count(". ") == 0


def test_a_refused_artifact_name_is_a_sentence_in_the_job(core: Core) -> None:
    @job(registry=core.registry)
    def sneaky(running: Running, context: RunContext) -> None:
        try:
            context.artifacts.save("../../outside.txt", b"x")
        except ArtifactError as exc:
            print(f"refused: {exc}")

    done = core.finished(core.service.start("u", "sneaky").id)
    assert done.state is RunState.SUCCEEDED and done.artifacts == []
    assert any("refused: The artifact name '../../outside.txt' leaves its folder" in t
               for t in core.texts(done.id))


def test_artifacts_past_the_budget_are_refused_and_said(core: Core) -> None:
    core.service.limits = Limits(artifact_bytes=10)

    @job(registry=core.registry)
    def big(running: Running, context: RunContext) -> None:
        context.artifacts.save("a.bin", b"x" * 6)
        try:
            context.artifacts.save("b.bin", b"x" * 6)
        except ArtifactError as exc:
            print(exc)
        context.artifacts.save("a.bin", b"x" * 10)  # a replacement counts once
        (context.artifacts.path / "c.bin").write_bytes(b"x")

    done = core.finished(core.service.start("u", "big").id)
    assert [a["name"] for a in done.artifacts] == ["a.bin"]
    texts = core.texts(done.id)
    assert any("'b.bin' (6 bytes) was not kept" in t and "ARTIFACT_BUDGET_BYTES" in t
               for t in texts)
    assert any("'c.bin' (1 bytes) was not kept" in t for t in core.texts(done.id, "system"))


def test_a_returned_picture_or_figure_becomes_an_artifact(core: Core) -> None:
    class Figure:  # what matplotlib's Figure offers the runner: savefig
        def savefig(self, out: Any, format: str, **_: Any) -> None:
            assert format == "png"
            out.write(PNG)

    @job(registry=core.registry)
    def one(running: Running) -> Picture:
        return Picture(PNG)

    @job(registry=core.registry)
    def two(running: Running) -> list[Any]:
        return [Figure(), Picture(JPEG)]

    first = core.finished(core.service.start("u", "one").id)
    assert first.artifacts == [{"name": "picture.png", "size": len(PNG), "picture": "png"}]
    assert not first.has_result
    second = core.finished(core.service.start("u", "two").id)
    assert [(a["name"], a["picture"]) for a in second.artifacts] == [
        ("picture-2.jpg", "jpeg"), ("picture.png", "png")]


def test_only_png_and_jpeg_are_pictures() -> None:
    assert picture_kind(PNG) == "png" and picture_kind(JPEG) == "jpeg"
    assert picture_kind(SVG) is None and picture_kind(b"GIF89a") is None
    with pytest.raises(ValueError, match="PNG or JPEG"):
        Picture(SVG)


def test_artifacts_are_deleted_with_the_run(core: Core) -> None:
    core.service.limits = Limits(history=1)

    @job(registry=core.registry)
    def keeps(running: Running, context: RunContext, data: Upload) -> None:
        context.artifacts.save("out.txt", "x")

    first = core.finished(core.service.start(
        "u", "keeps", files={"data": IncomingFile("a", b"1")}).id)
    assert set(core.store.list_blobs(first.id)) == {"upload/data", "artifact/out.txt"}
    second = core.finished(core.service.start(
        "u", "keeps", files={"data": IncomingFile("a", b"2")}).id)
    assert core.store.get_run(first.id) is None and core.store.list_blobs(first.id) == {}
    assert core.store.list_blobs(second.id)


def test_display_filenames_are_names_not_paths() -> None:
    assert display_filename("C:\\Users\\me\\report.csv") == "report.csv"
    assert display_filename("../../etc/passwd") == "passwd"
    assert display_filename("a\x00b\x1b[31m.txt") == "ab[31m.txt"
    assert display_filename("") == "upload"


def test_artifacts_outside_a_run_are_kept_in_memory() -> None:
    artifacts = Artifacts(budget=5)
    artifacts.save("a.txt", "abc")
    assert artifacts.get("a.txt") == b"abc" and artifacts.used == 3


def test_a_real_matplotlib_figure_is_drawn_as_png(core: Core) -> None:
    figure_module = pytest.importorskip("matplotlib.figure")  # the charts extra

    @job(registry=core.registry)
    def plot(running: Running) -> Any:
        figure = figure_module.Figure(figsize=(2, 1))
        figure.subplots().plot([1, 3, 2])
        return figure

    done = core.finished(core.service.start("u", "plot").id)
    assert done.state is RunState.SUCCEEDED, core.texts(done.id)
    (kept,) = done.artifacts
    assert kept["name"] == "picture.png" and kept["picture"] == "png"
    data = core.store.get_blob(done.id, ARTIFACT_PREFIX + "picture.png")
    assert data is not None and picture_kind(data) == "png"


def test_a_file_past_the_budget_under_path_is_refused_without_being_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    artifacts = Artifacts(budget=100, workdir=tmp_path)
    big = artifacts.path / "huge.bin"
    with open(big, "wb") as f:
        f.truncate(10**9)  # sparse: a gigabyte on paper only
    (artifacts.path / "small.txt").write_text("ok")
    read: list[str] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or real(self))
    problems = artifacts.collect()
    assert read == ["small.txt"]
    assert problems == ["Artifact 'huge.bin' (1,000,000,000 bytes) was not kept: the run's "
                        "artifacts would pass their budget of 100 bytes "
                        "(ARTIFACT_BUDGET_BYTES)."]
    assert [a["name"] for a in artifacts.listing()] == ["small.txt"]


def test_no_room_for_the_runs_temp_folder_fails_the_run_with_its_reason(
        core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    @job(registry=core.registry)
    def takes_file(running: Running, data: Upload) -> None: ...

    def full(**_: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkdtemp", full)
    done = core.finished(core.service.start(
        "u", "takes_file", files={"data": IncomingFile("a", b"1")}).id)
    assert done.state is RunState.FAILED and "No space left on device" in (done.error or "")


def test_a_figure_that_cannot_draw_itself_is_a_line_and_the_run_ends(core: Core) -> None:
    class Broken:
        def savefig(self, out: Any, **_: Any) -> None:
            raise RuntimeError("no renderer")

    @job(registry=core.registry)
    def draws(running: Running) -> Any:
        return Broken()

    done = core.finished(core.service.start("u", "draws").id)
    assert done.state is RunState.SUCCEEDED and done.artifacts == []
    assert ("A picture the job returned was not kept: RuntimeError: no renderer"
            in core.texts(done.id, "system"))
