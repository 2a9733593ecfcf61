"""Flask-Realtime: run registered Python jobs and stream their output to the browser, live."""

from .core.files import ArtifactError, Artifacts, Picture, Upload
from .core.groups import group
from .core.jobs import Range, RunContext, Running, job

__all__ = ["ArtifactError", "Artifacts", "Picture", "Range", "RunContext", "Running", "Upload",
           "group", "job"]
__version__ = "0.1.0"
