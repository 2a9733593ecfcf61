"""Files in and out of a run: uploads given to a job, artifacts it keeps, pictures it shows.

A parameter annotated :class:`Upload` is a file the user sends with the start
(docs/jobs.md, "Files in"). The web tier hands the run service an
:class:`IncomingFile` per file parameter; the service stores its bytes with the run
(the store's blobs, :class:`~.ports.BlobStore`, so an RQ worker on another machine
reads them too) and the run's record keeps only the file's name and size
(:class:`UploadRef`). Before the job is called, the runner writes each file to a temp
file of the run's own (named after the parameter, never after the browser's name) and
gives the job an :class:`Upload`; the temp files go when the job returns, the stored
bytes when the run is forgotten.

A job keeps files with :class:`Artifacts` (``context.artifacts``): ``save(name, data)``
stores them at once, and files written under ``artifacts.path`` are collected when the
job returns. Every run has a budget of bytes for them (``ARTIFACT_BUDGET_BYTES``).
A :class:`Picture` (PNG or JPEG bytes, or a matplotlib figure) returned by the job or
saved as an artifact is shown on the run's page; anything else is a download only.

Standard library only: core imports no plotting library (a figure is drawn by its own
``savefig``).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal

from .ports import BlobStore

#: Default size limit of one uploaded file (``MAX_UPLOAD_BYTES``): 10 MiB.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Default budget of one run's artifacts together (``ARTIFACT_BUDGET_BYTES``): 50 MiB.
DEFAULT_ARTIFACT_BUDGET_BYTES = 50 * 1024 * 1024
#: Blob names: a run's upload for parameter ``p`` is ``upload/p``, artifact ``a`` is
#: ``artifact/a``.
UPLOAD_PREFIX = "upload/"
ARTIFACT_PREFIX = "artifact/"
#: Longest artifact name, and longest original file name kept for display.
MAX_NAME_CHARS = 200
#: Artifacts a run may keep (each is a download on its page).
MAX_ARTIFACTS = 100

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

PictureKind = Literal["png", "jpeg"]


class ArtifactError(ValueError):
    """An artifact refused: a bad name, or past the run's budget. The message is one
    sentence for the job's author (it shows in the run's output)."""


def picture_kind(data: bytes) -> PictureKind | None:
    """"png" or "jpeg" when ``data`` starts with that format's magic bytes, else None.
    Only these two are ever shown inline (an SVG can hold script: it is a download)."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    return None


def is_figure(value: Any) -> bool:
    """Whether ``value`` looks like a matplotlib figure (it has ``savefig``; matplotlib is
    not imported here)."""
    return callable(getattr(value, "savefig", None)) and not isinstance(value, type)


class Picture:
    """A picture for the run's page: PNG or JPEG bytes, or a matplotlib figure (drawn as
    PNG). Return one from a job, or ``context.artifacts.save(name, picture)``.

    Raises ValueError when ``source`` is bytes in neither format.
    """

    def __init__(self, source: bytes | Any, name: str | None = None) -> None:
        if is_figure(source):
            buffer = io.BytesIO()
            figure: Any = source
            figure.savefig(buffer, format="png", bbox_inches="tight")
            data = buffer.getvalue()
        elif isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        else:
            raise ValueError("Picture takes PNG or JPEG bytes, or a matplotlib figure.")
        kind = picture_kind(data)
        if kind is None:
            raise ValueError("Picture takes PNG or JPEG bytes (these start with neither "
                             "format's signature), or a matplotlib figure; save other "
                             "files (an SVG) as artifacts, which are downloads.")
        #: The encoded picture, and its format.
        self.data: bytes = data
        self.kind: PictureKind = kind
        #: The artifact name it is kept under.
        self.name = name or ("picture.png" if kind == "png" else "picture.jpg")

    def __repr__(self) -> str:
        return f"Picture({self.name!r}, {len(self.data)} bytes of {self.kind})"


def check_artifact_name(name: Any) -> str:
    """``name`` if it can name an artifact: a relative path of at most
    :data:`MAX_NAME_CHARS` characters whose parts are not empty, ``.`` or ``..``, without
    backslashes, NUL or other control characters. Raises :class:`ArtifactError`."""
    if not isinstance(name, str) or not name:
        raise ArtifactError("An artifact needs a name, such as \"report.csv\".")
    if len(name) > MAX_NAME_CHARS:
        raise ArtifactError(f"The artifact name {name[:40]!r}… is longer than "
                            f"{MAX_NAME_CHARS} characters.")
    if not name.isprintable():
        raise ArtifactError(f"The artifact name {name!r} holds a control character (or NUL); "
                            "use letters, digits, spaces and punctuation.")
    if "\\" in name or name.startswith("/") or PurePosixPath(name).is_absolute():
        raise ArtifactError(f"The artifact name {name!r} is an absolute path or holds a "
                            "backslash: give a relative name such as \"plots/day.png\".")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ArtifactError(f"The artifact name {name!r} leaves its folder (\"..\") or has "
                            "an empty part: give a relative name such as \"plots/day.png\".")
    return name


def display_filename(name: Any) -> str:
    """The name a browser gave an uploaded file, for display only (never a path): its
    last path part, control characters dropped, at most :data:`MAX_NAME_CHARS`
    characters; "upload" when nothing is left."""
    text = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if c.isprintable())[:MAX_NAME_CHARS].strip()
    return text or "upload"


@dataclass(frozen=True)
class IncomingFile:
    """A file as a start brings it: ``data`` and the browser's ``filename``, kept for
    display only (made a name by :func:`display_filename`).

    :meth:`~.service.RunService.start` stores it with the run; the thread runner
    hands its bytes to the job without reading them back."""

    filename: str
    data: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "filename", display_filename(self.filename))

    @property
    def size(self) -> int:
        return len(self.data)

    def to_json(self) -> dict[str, Any]:
        """What the run's record keeps of it: ``{"filename", "size"}``."""
        return {"filename": self.filename, "size": self.size}


@dataclass(frozen=True)
class UploadRef:
    """A file parameter as a run's record has it (``{"filename", "size"}``): its bytes
    are the run's blob ``upload/<parameter>``."""

    filename: str
    size: int

    def to_json(self) -> dict[str, Any]:
        """The record's form: ``{"filename", "size"}``."""
        return {"filename": self.filename, "size": self.size}

    @classmethod
    def from_json(cls, data: Any) -> UploadRef:
        """The reference a record holds; ValueError for anything else."""
        if (not isinstance(data, Mapping) or not isinstance(data.get("filename"), str)
                or isinstance(data.get("size"), bool) or not isinstance(data.get("size"), int)):
            raise ValueError("must be a file, uploaded with the start (multipart/form-data)")
        return cls(display_filename(data["filename"]), data["size"])


class Upload:
    """An uploaded file, as a job's ``Upload`` parameter receives it.

    ``path`` is a temp file of the run's own, written before the job is called and
    deleted when it returns (copy it elsewhere to keep it); :meth:`open` opens it for
    reading in binary mode. ``filename`` is the name the user's browser gave the
    file: for display only, never a path to write to. ``size`` is in bytes.
    """

    def __init__(self, path: Path, filename: str, size: int) -> None:
        self.path = path
        self.filename = filename
        self.size = size

    def open(self) -> BinaryIO:
        """The file, opened for reading in binary mode (close it, or use ``with``)."""
        return open(self.path, "rb")

    def read_bytes(self) -> bytes:
        """The whole file's bytes."""
        return self.path.read_bytes()

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {self.size} bytes)"


def artifact_bytes(name: str, data: Any) -> bytes:
    """What :meth:`Artifacts.save` keeps of ``data``: bytes as they are, text as UTF-8,
    a :class:`Picture`'s bytes; raises :class:`ArtifactError` for anything else."""
    if isinstance(data, Picture):
        data = data.data
    elif isinstance(data, str):
        data = data.encode()
    elif isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise ArtifactError(f"Artifact {name!r}: save bytes, text or a Picture, not "
                            f"{type(data).__name__}.")
    return data


class Artifacts:
    """The files a run keeps, within ``budget`` bytes together; ``context.artifacts``.

    :meth:`save` stores a file at once; files written under :attr:`path` (a folder of
    the run's own, made when first asked for) are stored by :meth:`collect` when the
    job returns. Both refuse a bad name or a file past the budget with
    :class:`ArtifactError` (its sentence). Thread-safe. Without a store (a RunContext
    made outside a run), files are kept in memory only.
    """

    def __init__(self, store: BlobStore | None = None, run_id: str = "", *,
                 budget: int = DEFAULT_ARTIFACT_BUDGET_BYTES,
                 workdir: Path | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.budget = budget
        self._workdir = workdir
        self._path: Path | None = None
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._kinds: dict[str, PictureKind | None] = {}
        self._memory: dict[str, bytes] = {}

    @property
    def path(self) -> Path:
        """A folder for files the run keeps: what is in it when the job returns is
        saved as artifacts, named by their path inside it."""
        with self._lock:
            if self._path is None:
                if self._workdir is None:
                    import tempfile

                    self._workdir = Path(tempfile.mkdtemp(prefix="flask-realtime-run-"))
                self._path = self._workdir / "artifacts"
                self._path.mkdir(parents=True, exist_ok=True)
            return self._path

    @property
    def used(self) -> int:
        """Bytes of artifacts kept so far."""
        with self._lock:
            return sum(self._sizes.values())

    def save(self, name: str, data: bytes | bytearray | str | Picture) -> None:
        """Keep ``data`` (bytes; text as UTF-8; a :class:`Picture`'s bytes) as artifact
        ``name``, replacing one of that name. Raises :class:`ArtifactError` for a bad
        name, or when the run's artifacts would pass the budget (nothing is kept then)."""
        name = check_artifact_name(name)
        data = artifact_bytes(name, data)
        with self._lock:
            self._check_room(name, len(data))
            if self.store is None:
                self._memory[name] = data
            else:
                self.store.put_blob(self.run_id, ARTIFACT_PREFIX + name, data)
            self._sizes[name] = len(data)
            self._kinds[name] = picture_kind(data)

    def check_room(self, name: str, size: int) -> None:
        """Raise :class:`ArtifactError` (its sentence) unless ``size`` more bytes as
        artifact ``name`` would fit the budget and the count: a file can be refused
        before it is read."""
        with self._lock:
            self._check_room(name, size)

    def _check_room(self, name: str, size: int) -> None:
        """Raise :class:`ArtifactError` unless ``size`` more bytes as artifact ``name``
        (replacing one of that name) fit the budget and the count (under the lock)."""
        others = sum(n for key, n in self._sizes.items() if key != name)
        if others + size > self.budget:
            raise ArtifactError(
                f"Artifact {name!r} ({size:,} bytes) was not kept: the run's artifacts "
                f"would pass their budget of {self.budget:,} bytes (ARTIFACT_BUDGET_BYTES).")
        if name not in self._sizes and len(self._sizes) >= MAX_ARTIFACTS:
            raise ArtifactError(f"Artifact {name!r} was not kept: a run keeps at most "
                                f"{MAX_ARTIFACTS} artifacts.")

    def get(self, name: str) -> bytes | None:
        """The bytes of artifact ``name`` kept by this run, or None."""
        with self._lock:
            if name not in self._sizes:
                return None
        if self.store is None:
            return self._memory.get(name)
        return self.store.get_blob(self.run_id, ARTIFACT_PREFIX + name)

    def collect(self) -> list[str]:
        """Save every file under :attr:`path` (when it was made) as an artifact named
        by its path inside it, in name order; returns a sentence for each file not
        kept (its name, or the budget), for the run's output."""
        folder = self._path
        if folder is not None and folder.is_symlink():  # its contents are elsewhere
            return ["Nothing under artifacts.path was kept: the folder was replaced by a "
                    "symbolic link; write the files themselves."]
        if folder is None or not folder.is_dir():
            return []
        problems: list[str] = []
        for file in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
            relative = file.relative_to(folder).as_posix()
            if file.is_symlink():
                problems.append(f"Artifact {relative!r} was not kept: it is a symbolic "
                                "link; write the file itself.")
                continue
            try:
                self.check_room(check_artifact_name(relative), file.stat().st_size)
                self.save(relative, file.read_bytes())
            except (ArtifactError, OSError) as exc:
                problems.append(str(exc))
        return problems

    def listing(self) -> list[dict[str, Any]]:
        """The artifacts kept, by name: ``{"name", "size", "picture"}`` with
        ``picture`` "png", "jpeg" or None (a download only)."""
        with self._lock:
            return [{"name": name, "size": self._sizes[name], "picture": self._kinds[name]}
                    for name in sorted(self._sizes)]


def write_upload(folder: Path, param: str, data: bytes, filename: str) -> Upload:
    """Write an upload's bytes to ``folder/uploads/<param>`` (the parameter's name, never
    the browser's) and return the job's :class:`Upload` of it."""
    uploads = folder / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / param
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Upload(path, filename, len(data))
