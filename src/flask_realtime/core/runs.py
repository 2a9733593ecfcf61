"""Runs: one execution of a job for one user, and the states it moves through."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any


class RunState(enum.StrEnum):
    """Where a run is in its life; :data:`TRANSITIONS` says which moves are allowed. The
    values are the API's ``state`` strings."""

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def finished(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED)


#: The only moves a run may make. A run is never ``stopped`` while its code still runs:
#: ``stopping`` lasts until the job's thread has returned.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.STOPPED, RunState.FAILED}),
    RunState.RUNNING: frozenset(
        {RunState.STOPPING, RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED}
    ),
    RunState.STOPPING: frozenset({RunState.STOPPED, RunState.FAILED}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.STOPPED: frozenset(),
}


class InvalidTransitionError(Exception):
    """A move that :data:`TRANSITIONS` forbids was asked of :meth:`Run.moved_to`."""

    pass


class Notify(enum.StrEnum):
    """When the owner is told that a run has ended (docs/notifications.md): on every
    end (``finish``: succeeded, failed or stopped), only when it failed (``failure``),
    or never (``off``). The values are the API's ``notify`` strings."""

    FINISH = "finish"
    FAILURE = "failure"
    OFF = "off"

    def wants(self, state: RunState) -> bool:
        """Whether a run that ended in ``state`` is to be told about."""
        return state.finished and (self is Notify.FINISH
                                   or (self is Notify.FAILURE and state is RunState.FAILED))


class NotifyError(ValueError):
    """A ``notify`` choice that :func:`check_notify` does not accept."""


def check_notify(value: object) -> Notify | None:
    """A start's (or a preference's) ``notify``: None or empty for "the user's
    default", else one of :class:`Notify`'s values. Raises :class:`NotifyError` with
    one sentence."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return Notify(value)
        except ValueError:
            pass
    raise NotifyError('"notify" must be "finish", "failure" or "off" (or left out for '
                      "your default).")


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds and ``Z``, the format of every
    time in a run record."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """Unguessable: a run id is not a secret, but guessing one must not be a way in."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Run:
    """A run record as stored. Output lines live in the output log, not here."""

    id: str
    job: str
    title: str
    user: str
    params: dict[str, Any] = field(default_factory=dict)
    state: RunState = RunState.QUEUED
    created_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    ended_at: str | None = None
    error: str | None = None
    result: Any = None
    has_result: bool = False
    #: While the job waits for input: ``{"prompt": text, "secret": bool}`` (the page
    #: shows an input line); None otherwise, and always once the run has ended.
    waiting_input: dict[str, Any] | None = None
    #: The schedule that made this run (core/schedules.py), and its name then; None for
    #: a run a user started.
    schedule_id: str | None = None
    schedule_name: str | None = None
    #: When the owner is told of the end (a :class:`Notify` value); None: the owner's
    #: default at the end (docs/notifications.md).
    notify: str | None = None
    #: Per channel (``webex``, ``webhook``), how telling the owner went:
    #: ``{"status": "pending" | "sent" | "failed", "reason", "attempts", "at", "key"}``.
    #: Written by the notifier after the run ended, never by a state move.
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The files the run kept (core/files.py ``Artifacts.listing``), set when it ends:
    #: ``{"name", "size", "picture"}`` each.
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    def moved_to(self, state: RunState, **changes: Any) -> Run:
        """This run in ``state``; raises InvalidTransitionError for a move TRANSITIONS forbids."""
        if state not in TRANSITIONS[self.state]:
            raise InvalidTransitionError(f"run {self.id}: {self.state} -> {state} is not allowed")
        if state is RunState.RUNNING:
            changes.setdefault("started_at", now_iso())
        if state.finished:
            changes.setdefault("ended_at", now_iso())
            changes.setdefault("waiting_input", None)
        return replace(self, state=state, **changes)

    def to_json(self, *, lines: int = 0, with_result: bool = False) -> dict[str, Any]:
        """The record as plain JSON values, with ``lines`` (the output's length) added;
        ``result`` only when ``with_result``. Its nested values are copies (as
        ``dataclasses.asdict`` makes them, which took a tenth of a scheduled run's
        own work: every save and every ``state`` event makes one)."""
        data = {name: _json_copy(getattr(self, name)) for name in _RUN_FIELDS
                if with_result or name != "result"}
        data["state"] = self.state.value
        data["lines"] = lines
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        """A run from :meth:`to_json`'s output; keys it does not know are ignored (records
        written by a newer version still load)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["state"] = RunState(known.get("state", "queued"))
        return cls(**known)


_RUN_FIELDS = tuple(f.name for f in fields(Run))


def _json_copy(value: Any) -> Any:
    """``value`` (JSON values: dicts, lists, scalars) copied as deep as it is nested."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_json_copy(item) for item in value)
    return value
