"""Flask-Realtime: run registered Python jobs and stream their output to the browser, live."""

from .core.groups import group
from .core.jobs import Range, RunContext, Running, job

__all__ = ["Range", "RunContext", "Running", "group", "job"]
__version__ = "0.1.0"
