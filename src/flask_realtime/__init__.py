"""Flask-Realtime: run registered Python jobs and stream their output to the browser, live."""

from .core.jobs import Range, RunContext, Running, job

__all__ = ["Range", "RunContext", "Running", "job"]
__version__ = "0.1.0"
