"""Schedules: a job started again and again, on a cron expression or every N seconds.

A :class:`Schedule` is a record, stored through the ``ScheduleStore`` port
(``core/ports.py``) and moved only by compare-and-set on its ``version``. This module
holds what a schedule *is* and when it fires: the validation of what a user sends
(:func:`parse_schedule`, one sentence per refusal, :class:`ScheduleError`), the next due
times (:func:`next_fire_after`, :func:`preview`) and the policies (:data:`OVERLAPS`,
:data:`MISSED`, :data:`NOTIFY`). The loop that fires them is ``core/scheduler.py``.

Cron is evaluated by cronsim in the schedule's IANA time zone, with Debian cron's DST
rules: a time skipped by the spring-forward change fires at the first valid time
after it (02:30 becomes 03:00, once), and a time repeated by the fall-back change
fires once, at its first occurrence, unless the hour field is ``*`` (an hourly job
fires in both hours). docs/schedules.md has the whole contract.
"""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from .runs import now_iso

#: What a fire does while the previous run of its schedule is still going: ``skip``
#: it (the default), ``allow`` a second run, or ``queue`` one run for when it ends
#: (a second fire while one waits is skipped).
OVERLAPS = ("skip", "allow", "queue")
#: A fire missed while no server ran (it is later than ``SCHEDULE_LATE_SECONDS``):
#: ``skip`` it, or ``run`` it once at start when it is no later than the schedule's
#: ``grace_seconds``. Several missed fires of one schedule make one run at most.
MISSED = ("skip", "run")
#: When the owner is told of a scheduled run's end (the notifications' concern).
NOTIFY = ("none", "always", "failure")
#: The cron names offered besides five fields, and the fields each stands for.
CRON_NAMES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
MAX_NAME = 100
MAX_CRON = 200
#: Longest interval: a year.
MAX_INTERVAL_SECONDS = 366 * 86_400
#: Longest grace for a missed fire: a week.
MAX_GRACE_SECONDS = 7 * 86_400
DEFAULT_GRACE_SECONDS = 3_600
#: How many due times :func:`preview` shows.
PREVIEW_COUNT = 5
#: At most this many cron times are walked to find the latest one that is due; a
#: schedule further behind (a server down for weeks on a per-minute cron) starts
#: again from the present.
MAX_CATCH_UP = 10_000


class ScheduleError(ValueError):
    """What a user sent is not a schedule; the message is one sentence saying why and
    what would be accepted."""


class ScheduleNotFoundError(LookupError):
    """No such schedule *for this user*: another user's is indistinguishable from none."""

    def __init__(self, schedule_id: object) -> None:
        super().__init__(f"There is no schedule {str(schedule_id)[:64]!r}.")


class ScheduleLimitError(Exception):
    """A create refused because the user already has as many schedules as allowed."""


def new_schedule_id() -> str:
    """Unguessable, as run ids are."""
    return secrets.token_urlsafe(12)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


@dataclass(frozen=True)
class Schedule:
    """A schedule as stored. Times the scheduler computes with are epoch seconds
    (``anchor``, ``next_fire``, ``queued_due``, ``last_due``); ``end_at`` and
    ``created_at`` are ISO 8601 as in run records.

    ``next_fire`` is the next due time (None once past ``end_at``); ``queued_due`` a
    fire waiting for the previous run to end (overlap ``queue``); ``last_run_id`` the
    newest run the schedule made; ``last_error`` the sentence of the newest fire that
    made no run (refused at a limit, skipped, paused), cleared by the next run made;
    ``paused_reason`` why the scheduler paused it (an expired login), shown as a
    banner until the owner resumes it. ``version`` grows by one at every save."""

    id: str
    user: str
    name: str
    job: str
    params: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    interval: int | None = None
    timezone: str = "UTC"
    end_at: str | None = None
    enabled: bool = True
    overlap: str = "skip"
    missed: str = "skip"
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    notify: str = "none"
    created_at: str = field(default_factory=now_iso)
    anchor: float = 0.0
    next_fire: float | None = None
    queued_due: float | None = None
    last_due: float | None = None
    last_run_id: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    paused_reason: str | None = None
    version: int = 0

    @property
    def wake_at(self) -> float | None:
        """When the scheduler must look at this schedule next: a queued fire (at once,
        until the previous run ends) or the next due time; None while paused or ended.
        Stores index schedules by it."""
        if not self.enabled:
            return None
        if self.queued_due is not None:
            return self.queued_due
        return self.next_fire

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON values (what stores keep). Shallow, unlike
        ``dataclasses.asdict`` (a third of a fire's own work at 1,000 fires a round):
        ``params`` is the one nested value, and it is copied."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data["params"] = dict(self.params)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schedule:
        """A schedule from :meth:`to_json`'s output; keys it does not know are ignored."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def public_json(self) -> dict[str, Any]:
        """The schedule as the API shows it: the record, with the epoch times also as
        ISO 8601 (``next_fire_at``, ``last_due_at``, ``queued_due_at``)."""
        data = self.to_json()
        data["next_fire_at"] = _iso(self.next_fire)
        data["last_due_at"] = _iso(self.last_due)
        data["queued_due_at"] = _iso(self.queued_due)
        return data

    def saved(self, **changes: Any) -> Schedule:
        """This schedule with ``changes`` and the next ``version``: what a
        compare-and-set over this one stores."""
        return replace(self, version=self.version + 1, **changes)


_FIELDS = tuple(f.name for f in fields(Schedule))


# -- when a schedule fires -------------------------------------------------------------

def cron_fields(expr: str) -> str:
    """The five fields of ``expr`` (a name such as ``@daily`` replaced by its fields)."""
    text = " ".join(expr.split())
    return CRON_NAMES.get(text.lower(), text)


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _end_epoch(end_at: str | None) -> float | None:
    return None if end_at is None else _parse_time(end_at, "end_at")


def next_fire_after(schedule: Schedule, after: float) -> float | None:
    """The first due time of ``schedule`` strictly after epoch ``after``, or None when
    there is none before its ``end_at`` (or ever)."""
    end = _end_epoch(schedule.end_at)
    if schedule.interval:
        step = schedule.interval
        k = math.floor((after - schedule.anchor) / step) + 1
        due = schedule.anchor + max(k, 0) * step
        while due <= after:  # floating point: never return a time not after ``after``
            due += step
    else:
        assert schedule.cron is not None, "a schedule has a cron expression or an interval"
        found = _cron_next(schedule.cron, schedule.timezone, after)
        if found is None:
            return None
        due = found
    return None if end is not None and due > end else float(due)


def _cron_next(expr: str, timezone: str, after: float) -> float | None:
    start = datetime.fromtimestamp(after, _zone(timezone))
    try:
        for due in CronSim(cron_fields(expr), start):
            if due.timestamp() > after:
                return due.timestamp()
    except (CronSimError, StopIteration):
        return None
    return None


def preview(schedule: Schedule, now: float, count: int = PREVIEW_COUNT) -> list[float]:
    """The next ``count`` due times after ``now`` (fewer when the schedule ends)."""
    times: list[float] = []
    at = now
    while len(times) < count:
        due = next_fire_after(schedule, at)
        if due is None:
            break
        times.append(due)
        at = due
    return times


def latest_due(schedule: Schedule, now: float) -> tuple[float, float | None]:
    """For a schedule whose ``next_fire`` is due (<= ``now``): the latest due time not
    after ``now`` (the fires before it are collapsed into it) and the one after that."""
    assert schedule.next_fire is not None
    due = schedule.next_fire
    if schedule.interval:
        steps = math.floor((now - due) / schedule.interval)
        due += max(steps, 0) * schedule.interval
        return due, next_fire_after(schedule, due)
    for _ in range(MAX_CATCH_UP):
        following = next_fire_after(schedule, due)
        if following is None or following > now:
            return due, following
        due = following
    return due, next_fire_after(schedule, now)


# -- what a user sends -----------------------------------------------------------------

def _parse_time(value: Any, name: str) -> float:
    if not isinstance(value, str) or len(value) > 40:
        raise ScheduleError(f"{name} must be a time in ISO 8601 with its offset, such as "
                            "\"2027-01-31T18:00:00Z\".")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"{name} is {value[:40]!r}, not a time in ISO 8601 with its "
                            "offset, such as \"2027-01-31T18:00:00Z\".") from None
    if parsed.tzinfo is None:
        raise ScheduleError(f"{name} needs its UTC offset (\"Z\" or \"+01:00\"), so that "
                            "it means one moment.")
    return parsed.timestamp()


def _choice(data: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = data.get(name, default)
    if value not in choices:
        raise ScheduleError(f"{name} must be one of {', '.join(choices)}.")
    return str(value)


def _whole(data: Mapping[str, Any], name: str, low: int, high: int, default: int | None,
           unit: str) -> int | None:
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ScheduleError(f"{name} must be a whole number of {unit} from {low} to {high}.")
    return value


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: Any) -> str:
    """``name`` if it is an IANA time zone name this machine knows; else ScheduleError."""
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        raise ScheduleError("timezone must be an IANA time zone name, such as "
                            "\"Europe/Berlin\" or \"UTC\".")
    try:
        if name not in _timezones() and name != "UTC":
            raise ZoneInfoNotFoundError(name)
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"timezone {name[:64]!r} is not an IANA time zone name: use "
                            "one such as \"Europe/Berlin\" or \"UTC\".") from None
    return name


def check_cron(expr: Any) -> str:
    """``expr`` (spaces normalised) if cronsim accepts it as five fields or a name;
    else ScheduleError with a sentence saying what is wrong."""
    names = ", ".join(n for n in CRON_NAMES if n not in ("@midnight", "@annually"))
    usage = (f"five fields (minute hour day-of-month month day-of-week, such as "
             f"\"30 2 * * *\"), or one of {names}")
    if not isinstance(expr, str) or not expr.strip() or len(expr) > MAX_CRON:
        raise ScheduleError(f"cron must be {usage}.")
    text = " ".join(expr.split())
    fields = cron_fields(text)
    if len(fields.split(" ")) != 5:
        raise ScheduleError(f"The cron expression {text[:MAX_CRON]!r} is not valid: use "
                            f"{usage}.")
    try:
        CronSim(fields, datetime.now(UTC))
    except CronSimError as exc:
        reason = str(exc).rstrip(".").lower() or "it cannot be read"
        raise ScheduleError(f"The cron expression {text!r} is not valid ({reason}): use "
                            f"{usage}.") from None
    return text


def parse_schedule(data: Any, *, user: str, now: float, min_interval: int,
                   existing: Schedule | None = None) -> Schedule:
    """The schedule ``data`` (a JSON object from the API or a socket) describes, for
    ``user``, as of epoch ``now``: a new one, or ``existing`` edited (only the keys
    given change; the owner, id and history stay). The job's parameters are *not*
    checked here (the run service's registry does that, see ``Scheduler``).

    Raises :class:`ScheduleError` with one sentence for the first problem found."""
    if not isinstance(data, Mapping):
        raise ScheduleError("Send a JSON object: {\"name\", \"job\", \"params\", \"cron\" "
                            "or \"interval\", \"timezone\", ...}.")
    known = set(EDITABLE)
    unknown = sorted(str(k)[:40] for k in data if k not in known)
    if unknown:
        raise ScheduleError(f"{unknown[0]!r} is not a schedule setting: send only "
                            f"{', '.join(EDITABLE)}.")
    base = existing.to_json() if existing is not None else {}
    merged = {**{k: base.get(k) for k in EDITABLE if k in base}, **data}
    if data.get("cron") is not None and "interval" not in data:
        merged["interval"] = None  # the one given wins over the one stored
    elif data.get("interval") is not None and "cron" not in data:
        merged["cron"] = None
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME \
            or not name.isprintable():
        raise ScheduleError(f"name must be a text of 1 to {MAX_NAME} printable characters.")
    job = merged.get("job")
    if not isinstance(job, str) or not job:
        raise ScheduleError("job must be the name of a job (GET /api/jobs lists them).")
    params = merged.get("params") or {}
    if not isinstance(params, Mapping):
        raise ScheduleError("params must be an object of name: value.")
    cron, interval = merged.get("cron"), merged.get("interval")
    if (cron is None) == (interval is None):
        raise ScheduleError("Give either cron (such as \"30 2 * * *\" or \"@daily\") or "
                            "interval (seconds), not both and not neither.")
    if cron is not None:
        cron = check_cron(cron)
    else:
        interval = _whole(merged, "interval", min_interval, MAX_INTERVAL_SECONDS, None,
                          "seconds")
    timezone = check_timezone(merged.get("timezone") or "UTC")
    end_at = merged.get("end_at")
    if end_at is not None and _parse_time(end_at, "end_at") <= now and "end_at" in data:
        raise ScheduleError("end_at is in the past: give a later time, or none.")
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ScheduleError("enabled must be true or false.")
    grace = _whole(merged, "grace_seconds", 0, MAX_GRACE_SECONDS, DEFAULT_GRACE_SECONDS,
                   "seconds")
    fields: dict[str, Any] = dict(
        name=name.strip(), job=job, params=dict(params), cron=cron, interval=interval,
        timezone=timezone, end_at=end_at, enabled=enabled,
        overlap=_choice(merged, "overlap", OVERLAPS, "skip"),
        missed=_choice(merged, "missed", MISSED, "skip"),
        grace_seconds=grace if grace is not None else DEFAULT_GRACE_SECONDS,
        notify=_choice(merged, "notify", NOTIFY, "none"))
    if existing is None:
        draft = Schedule(id=new_schedule_id(), user=user, anchor=float(math.floor(now)),
                         **fields)
    else:
        timing = ("cron", "interval", "timezone", "end_at")
        retimed = any(fields[k] != getattr(existing, k) for k in timing)
        resumed = draft_enabled = fields["enabled"] and not existing.enabled
        draft = replace(existing, **fields,
                        anchor=float(math.floor(now)) if retimed else existing.anchor)
        if draft_enabled:
            draft = replace(draft, paused_reason=None)
        if not (retimed or resumed) and draft.next_fire is not None:
            return draft
    first = next_fire_after(draft, now)
    if first is None:
        raise ScheduleError("This schedule never fires: its cron expression matches no "
                            "date before its end_at (or none at all).")
    return replace(draft, next_fire=first, queued_due=None)


#: The keys a user may send (the rest of a record is the scheduler's).
EDITABLE = ("name", "job", "params", "cron", "interval", "timezone", "end_at", "enabled",
            "overlap", "missed", "grace_seconds", "notify")
