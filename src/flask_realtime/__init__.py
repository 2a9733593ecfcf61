"""Flask-Realtime: run registered Python jobs and stream their output to the browser, live."""

from .core.commands import command_job
from .core.files import ArtifactError, Artifacts, Picture, Upload
from .core.groups import group
from .core.jobs import JobFailure, Param, Range, RunContext, Running, job

__all__ = ["ArtifactError", "Artifacts", "JobFailure", "Param", "Picture", "Range", "RunContext",
           "Running", "Upload", "command_job", "group", "job"]
__version__ = "0.1.0"
