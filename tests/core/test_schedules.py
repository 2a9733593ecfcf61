"""When a schedule fires (core/schedules.py), computed from a fixed clock: cron in its
time zone with Debian cron's DST rules, intervals from their anchor, the end, the
preview, and the sentences a bad schedule is refused with."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from flask_realtime.core.schedules import (
    Schedule,
    ScheduleError,
    latest_due,
    next_fire_after,
    parse_schedule,
    preview,
)

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def local(epoch: float, zone: ZoneInfo = BERLIN) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M %Z")


def fires(schedule: Schedule, start: float, until: float) -> list[str]:
    out, t = [], start
    while (t := next_fire_after(schedule, t) or until + 1) <= until:  # type: ignore[assignment]
        out.append(local(t))
    return out


def daily(expr: str = "30 2 * * *", zone: str = "Europe/Berlin") -> Schedule:
    return Schedule(id="s", user="alice", name="n", job="j", cron=expr, timezone=zone)


def test_a_0230_daily_schedule_fires_once_on_the_spring_forward_day() -> None:
    # 2026-03-29: Berlin's clocks go from 02:00 to 03:00, so 02:30 does not exist.
    found = fires(daily(), at("2026-03-28T12:00"), at("2026-03-30T12:00"))
    assert found == ["2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"]


def test_a_0230_daily_schedule_fires_once_on_the_fall_back_day() -> None:
    # 2026-10-25: Berlin's clocks go from 03:00 back to 02:00, so 02:30 happens twice.
    found = fires(daily(), at("2026-10-24T12:00"), at("2026-10-26T12:00"))
    assert found == ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]


def test_an_hourly_schedule_fires_in_both_hours_of_the_fall_back_night() -> None:
    found = fires(daily("30 * * * *"), at("2026-10-25T00:00"), at("2026-10-25T04:00"))
    assert found == ["2026-10-25 00:30 CEST", "2026-10-25 01:30 CEST", "2026-10-25 02:30 CEST",
                     "2026-10-25 02:30 CET", "2026-10-25 03:30 CET"]


def test_cron_names_stand_for_their_fields() -> None:
    start = at("2026-06-10T10:15")
    assert local(next_fire_after(daily("@hourly"), start) or 0) == "2026-06-10 11:00 CEST"
    assert local(next_fire_after(daily("@daily"), start) or 0) == "2026-06-11 00:00 CEST"
    assert local(next_fire_after(daily("@weekly"), start) or 0) == "2026-06-14 00:00 CEST"
    assert local(next_fire_after(daily("@monthly"), start) or 0) == "2026-07-01 00:00 CEST"
    assert local(next_fire_after(daily("@yearly"), start) or 0) == "2027-01-01 00:00 CET"


def test_an_interval_counts_from_its_anchor_whatever_the_time_zone() -> None:
    every = Schedule(id="s", user="a", name="n", job="j", interval=90, anchor=1000.0,
                     timezone="Asia/Tokyo")
    assert next_fire_after(every, 1000.0) == 1090.0
    assert next_fire_after(every, 1089.9) == 1090.0
    assert next_fire_after(every, 1090.0) == 1180.0
    assert preview(every, 1000.0, 3) == [1090.0, 1180.0, 1270.0]


def test_no_fire_after_the_end() -> None:
    ending = Schedule(id="s", user="a", name="n", job="j", interval=60, anchor=0.0,
                      end_at="1970-01-01T00:03:00Z")
    assert preview(ending, 0.0) == [60.0, 120.0, 180.0]


def test_fires_missed_in_a_row_collapse_into_the_latest_one() -> None:
    every = Schedule(id="s", user="a", name="n", job="j", interval=10, anchor=0.0,
                     next_fire=10.0)
    assert latest_due(every, 55.0) == (50.0, 60.0)
    cron = daily("*/15 * * * *", "UTC")
    cron = Schedule(**{**cron.to_json(), "next_fire": at("2026-01-01T00:00", ZoneInfo("UTC"))})
    due, following = latest_due(cron, at("2026-01-01T01:05", ZoneInfo("UTC")))
    assert (local(due, ZoneInfo("UTC")), local(following or 0, ZoneInfo("UTC"))) == (
        "2026-01-01 01:00 UTC", "2026-01-01 01:15 UTC")


def test_a_new_schedule_starts_at_its_first_due_time_after_now() -> None:
    now = at("2026-06-10T10:15")
    made = parse_schedule({"name": "nightly", "job": "hello", "cron": "30  2 * * *",
                           "timezone": "Europe/Berlin"}, user="alice", now=now, min_interval=60)
    assert (made.cron, made.user, made.enabled, made.overlap, made.missed, made.notify) == (
        "30 2 * * *", "alice", True, "skip", "skip", "none")
    assert local(made.next_fire or 0) == "2026-06-11 02:30 CEST"


@pytest.mark.parametrize(("data", "sentence"), [
    ({"cron": "61 * * * *"}, "The cron expression '61 * * * *' is not valid (bad minute)"),
    ({"cron": "* * * *"}, "The cron expression '* * * *' is not valid: use five fields"),
    ({"cron": "0 0 * * * 2027"}, "is not valid: use five fields"),
    ({"cron": "@often"}, "is not valid: use five fields"),
    ({"cron": "0 0 30 2 *"}, "is not valid (bad day-of-month)"),
    ({"interval": 5}, "interval must be a whole number of seconds from 60 to"),
    ({"interval": 60, "cron": "* * * * *"}, "Give either cron"),
    ({}, "Give either cron"),
    ({"cron": "@daily", "timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not an IANA"),
    ({"cron": "@daily", "end_at": "2020-01-01T00:00:00Z"}, "end_at is in the past"),
    ({"cron": "@daily", "end_at": "2030-01-01T00:00"}, "end_at needs its UTC offset"),
    ({"cron": "@daily", "overlap": "maybe"}, "overlap must be one of skip, allow, queue."),
    ({"cron": "@daily", "notify": "loud"}, "notify must be one of none, always, failure."),
    ({"cron": "@daily", "owner": "mallory"}, "'owner' is not a schedule setting"),
    ({"cron": "@daily", "name": ""}, "name must be a text of 1 to 100"),
])
def test_a_bad_schedule_is_refused_with_one_sentence(data: dict[str, object],
                                                    sentence: str) -> None:
    body = {"name": "n", "job": "hello", **data}
    with pytest.raises(ScheduleError) as refused:
        parse_schedule(body, user="alice", now=at("2026-06-10T10:15"), min_interval=60)
    message = str(refused.value)
    assert sentence in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence


def test_an_edit_keeps_the_owner_and_restarts_the_timing_only_when_it_changes() -> None:
    now = at("2026-06-10T10:15")
    made = parse_schedule({"name": "n", "job": "hello", "interval": 600}, user="alice",
                          now=now, min_interval=60)
    renamed = parse_schedule({"name": "m"}, user="mallory", now=now + 30, min_interval=60,
                             existing=made)
    assert (renamed.user, renamed.id, renamed.next_fire) == ("alice", made.id, made.next_fire)
    retimed = parse_schedule({"cron": "@hourly"}, user="alice", now=now + 30, min_interval=60,
                             existing=made)
    assert (retimed.interval, retimed.cron) == (None, "@hourly")
    assert retimed.next_fire == at("2026-06-10T11:00")
