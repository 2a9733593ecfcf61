"""The simulator does what real Webex does on a bad day, and what its data holds.

Each test starts a real simulator (``SimulatorConfig`` as the fault's switch) and shows
the behaviour with plain HTTP requests. Time-dependent ones (outages, refresh tokens)
run on a clock the test moves, not on sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from flask_realtime.webex import cli
from flask_realtime.webex.simulator import (
    Dataset,
    SimulatorConfig,
    SimulatorHandle,
    api,
    oauth,
    start_simulator,
)
from flask_realtime.webex.simulator.dataset import KMS_FAILURE, parse_time
from tests.conftest import wait_for

USER = "user1@example.com"
REDIRECT = "http://127.0.0.1:5000/redirect"


@pytest.fixture
def started() -> Iterator[Any]:
    """``started(**config)``: a simulator with that config, stopped after the test."""
    handles: list[SimulatorHandle] = []

    def start(**config: Any) -> SimulatorHandle:
        handles.append(start_simulator(SimulatorConfig(**{"spaces": 12, "messages": 600,
                                                           **config})))
        return handles[-1]

    yield start
    for handle in handles:
        handle.stop()


class Clock:
    """A clock the test moves: stands in for ``time`` in the simulator's modules."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(api, "time", fake)
    monkeypatch.setattr(oauth, "time", fake)
    return fake


def client(sim: SimulatorHandle, email: str = USER) -> httpx.Client:
    return httpx.Client(base_url=sim.base_url, headers={
        "Authorization": f"Bearer {sim.token_for(email)}"})


def messages_of(sim: SimulatorHandle, room_id: str, **params: Any) -> httpx.Response:
    with client(sim) as http:
        return http.get("/messages", params={"roomId": room_id, **params})


def room_with(sim: SimulatorHandle, fault: str) -> str:
    return next(room for room, kind in sim.dataset.faulty.items() if kind == fault)


def assert_webex_error(answer: httpx.Response, status: int, message: str) -> None:
    body = answer.json()
    assert answer.status_code == status
    assert body["message"] == message and body["errors"] == [{"description": message}]
    assert body["trackingId"] == answer.headers["TrackingID"]


# -- spaces that cannot be read --------------------------------------------------------------
def test_a_forbidden_space_is_listed_but_its_messages_are_403_failed_to_get_activity(
        started: Any) -> None:
    sim = started(forbidden_spaces=2)
    room = room_with(sim, "forbidden")
    with client(sim) as http:
        listed = [r["id"] for r in http.get("/rooms", params={"max": 1000}).json()["items"]]
    assert room in listed
    assert_webex_error(messages_of(sim, room), 403, "Failed to get activity.")
    assert sim.dataset.unreadable(USER) == {r: 403 for r, k in sim.dataset.faulty.items()}


def test_a_space_deleted_after_listing_is_404_and_leaves_the_list(started: Any) -> None:
    sim = started(vanishing_spaces=1)
    room = room_with(sim, "vanishing")
    assert room in {r["id"] for r in sim.dataset.ground_truth(USER)}
    assert messages_of(sim, room).status_code == 404
    assert messages_of(sim, room).status_code == 404  # for good
    with client(sim) as http:
        assert room not in {r["id"] for r in http.get("/rooms").json()["items"]}


def test_a_locked_space_is_423_with_retry_after_then_readable(started: Any) -> None:
    sim = started(locked_spaces=1, locked_times=2, retry_after=30)
    room = room_with(sim, "locked")
    for _ in range(2):
        locked = messages_of(sim, room)
        assert locked.status_code == 423 and locked.headers["Retry-After"] == "30"
    assert messages_of(sim, room).status_code == 200
    assert sim.dataset.unreadable(USER) == {}


def test_a_kms_failure_space_has_an_errors_object_and_no_title(started: Any) -> None:
    sim = started(kms_failures=1)
    with client(sim) as http:
        rooms = http.get("/rooms").json()["items"]
    broken = [r for r in rooms if "errors" in r]
    assert len(broken) == 1 and "title" not in broken[0]
    assert broken[0]["errors"] == {"title": KMS_FAILURE}
    assert all("title" in r for r in rooms if "errors" not in r)


# -- outages and Retry-After -------------------------------------------------------------------
def test_an_outage_after_n_requests_refuses_every_request_for_its_window(
        started: Any, clock: Clock) -> None:
    sim = started(outage_seconds=30, outage_after_requests=2)
    with client(sim) as http:
        assert [http.get("/people/me").status_code for _ in range(2)] == [200, 200]
        refused = http.get("/people/me")
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
        assert http.get("/rooms").status_code == 503
        assert httpx.post(f"{sim.base_url}/access_token").status_code == 503  # OAuth too
        clock.now += 29.5
        assert http.get("/people/me").headers["Retry-After"] == "1"
        clock.now += 0.5
        assert http.get("/people/me").status_code == 200


def test_an_outage_at_a_given_time_can_answer_429_with_a_configured_retry_after(
        started: Any, clock: Clock) -> None:
    sim = started(outage_seconds=10, outage_at=5, outage_status=429, retry_after=60)
    with client(sim) as http:
        assert http.get("/people/me").status_code == 200
        clock.now += 5
        limited = http.get("/people/me")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
        clock.now += 10
        assert http.get("/people/me").status_code == 200
        sim.outage(5, 503)  # and one started by the test, now
        assert http.get("/people/me").status_code == 503


def test_the_rate_limits_retry_after_can_be_configured(started: Any) -> None:
    sim = started(rate_limit=2, retry_after=60)
    with client(sim) as http:
        answers = [http.get("/people/me") for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and {a.headers["Retry-After"] for a in limited} == {"60"}


# -- next links ---------------------------------------------------------------------------------
def test_next_links_can_carry_max_null_which_webex_refuses(started: Any) -> None:
    sim = started(next_link_max_null=True)
    with client(sim) as http:
        first = http.get("/rooms", params={"max": 3})
        link = first.links["next"]["url"]
        assert "max=null" in link
        assert http.get(link).status_code == 400
        repaired = link.replace("max=null", "max=3")
        assert len(http.get(repaired).json()["items"]) == 3


def test_next_links_can_be_relative(started: Any) -> None:
    sim = started(relative_next_links=True)
    biggest = max(sim.dataset.ground_truth(USER), key=lambda r: r["messages"])
    link = messages_of(sim, biggest["id"], max=10).links["next"]["url"]
    assert link.startswith("/v1/messages?") and "beforeMessage=" in link
    with client(sim) as http:
        assert len(http.get(sim.base_url.removesuffix("/v1") + link).json()["items"]) == 10


# -- rooms: sortBy, teamId, direct spaces ---------------------------------------------------------
@pytest.mark.parametrize(("sort_by", "field", "descending"), [
    ("id", "id", False), ("created", "created", True), ("lastactivity", "lastActivity", True)])
def test_rooms_are_sorted_by_sort_by(started: Any, sort_by: str, field: str,
                                     descending: bool) -> None:
    sim = started()
    with client(sim) as http:
        rooms = http.get("/rooms", params={"sortBy": sort_by, "max": 5})
        items = rooms.json()["items"] + http.get(rooms.links["next"]["url"]).json()["items"]
    values = [r[field] for r in items]
    assert len(values) == 10 and values == sorted(values, reverse=descending)


def test_an_unknown_sort_by_is_400(started: Any) -> None:
    with client(started()) as http:
        assert http.get("/rooms", params={"sortBy": "title"}).status_code == 400


def test_rooms_of_a_team_carry_its_team_id_and_filter_by_it(started: Any) -> None:
    sim = started(teams=2)
    with client(sim) as http:
        rooms = http.get("/rooms").json()["items"]
        team = next(r["teamId"] for r in rooms if "teamId" in r)
        in_team = http.get("/rooms", params={"teamId": team}).json()["items"]
    assert in_team and {r["id"] for r in in_team} == {
        r["id"] for r in rooms if r.get("teamId") == team}


def test_direct_spaces_have_two_members_and_the_other_persons_name(started: Any) -> None:
    sim = started(spaces=20, messages=200)
    with client(sim) as http:
        direct = http.get("/rooms", params={"type": "direct"}).json()["items"]
        assert direct
        for room in direct:
            members = http.get("/memberships", params={"roomId": room["id"]}).json()["items"]
            assert len(members) == 2
            other = next(m for m in members if m["personEmail"] != USER)
            assert room["title"] == other["personDisplayName"]
    with client(sim, other["personEmail"]) as theirs:
        seen = theirs.get(f"/rooms/{room['id']}").json()
    assert seen["title"] == "User1 Simulated"  # each side sees the other's name


# -- messages: threads, mentions, before, by id, edits, ties, deletes -----------------------------
def biggest_room(sim: SimulatorHandle) -> str:
    return str(max(sim.dataset.ground_truth(USER), key=lambda r: r["messages"])["id"])


def every_message(sim: SimulatorHandle, room: str) -> list[dict[str, Any]]:
    return list(messages_of(sim, room, max=1000).json()["items"])


def test_threaded_replies_are_listed_and_filtered_by_parent_id(started: Any) -> None:
    sim = started()
    room = biggest_room(sim)
    replies = [m for m in every_message(sim, room) if "parentId" in m]
    assert replies
    parent = replies[0]["parentId"]
    thread = messages_of(sim, room, parentId=parent, max=1000).json()["items"]
    assert thread and {m["parentId"] for m in thread} == {parent}
    assert {m["id"] for m in thread} == {m["id"] for m in replies if m["parentId"] == parent}


def test_mentioned_people_me_lists_only_messages_that_mention_the_caller(started: Any) -> None:
    sim = started(mentions=0.5)
    room = biggest_room(sim)
    me = sim.dataset.by_email[USER].id
    mine = messages_of(sim, room, mentionedPeople="me", max=1000).json()["items"]
    assert mine and all(me in m["mentionedPeople"] for m in mine)
    assert len(mine) == sum(me in m.get("mentionedPeople", []) for m in every_message(sim, room))
    other = sim.dataset.by_email["user2@example.com"].id
    assert messages_of(sim, room, mentionedPeople=other).status_code == 400


def test_before_is_read_as_a_time_in_any_iso_form(started: Any) -> None:
    sim = started()
    room = biggest_room(sim)
    messages = every_message(sim, room)
    cut = messages[len(messages) // 2]["created"]
    zulu = messages_of(sim, room, before=cut, max=1000).json()["items"]
    shifted = (parse_time(cut).astimezone(UTC) + timedelta(hours=2)).replace(
        tzinfo=None).isoformat(timespec="milliseconds") + "+02:00"
    assert messages_of(sim, room, before=shifted, max=1000).json()["items"] == zulu
    assert zulu and all(m["created"] < cut for m in zulu)
    assert len(zulu) == sum(m["created"] < cut for m in messages)


@pytest.mark.parametrize("garbage", ["yesterday", "2019-13-45T00:00:00Z", "null"])
def test_before_that_is_not_a_time_is_400(started: Any, garbage: str) -> None:
    sim = started()
    answer = messages_of(sim, biggest_room(sim), before=garbage)
    assert answer.status_code == 400 and "before" in answer.json()["message"]


def test_a_message_is_read_by_id_and_a_deleted_one_is_404(started: Any) -> None:
    sim = started()
    listed = every_message(sim, biggest_room(sim))[3]
    gone = next(iter(sim.dataset.deleted_messages))
    with client(sim) as http:
        assert http.get(f"/messages/{listed['id']}").json() == listed
        assert http.get(f"/messages/{gone}").status_code == 404
        assert http.delete(f"/messages/{listed['id']}").status_code == 204
        assert http.get(f"/messages/{listed['id']}").status_code == 404
    assert listed["id"] not in {m["id"] for m in every_message(sim, biggest_room(sim))}


def test_the_seeded_data_has_edits_and_timestamp_ties(started: Any) -> None:
    sim = started()
    messages = every_message(sim, biggest_room(sim))
    assert any(m.get("updated", "") > m["created"] for m in messages)
    created = [m["created"] for m in messages]
    assert len(set(created)) < len(created)  # ties
    assert created == sorted(created, reverse=True)  # still newest first


def test_deleted_messages_are_on_top_of_the_count(started: Any) -> None:
    sim = started(deleted=0.1)
    assert sum(r["messages"] for r in sim.dataset.ground_truth(USER)) == 600
    assert len(sim.dataset.deleted_messages) >= 50


def test_data_switches_leave_the_rest_of_the_data_as_it_was(started: Any) -> None:
    plain = SimulatorConfig(spaces=12, messages=600, threads=0, mentions=0, edited=0, ties=0,
                            deleted=0, teams=0)
    ids = [m.id for r in Dataset(plain).rooms.values() for m in r.messages]
    assert ids == [m.id for r in Dataset(SimulatorConfig(spaces=12, messages=600)).rooms.values()
                   for m in r.messages]


# -- OAuth ----------------------------------------------------------------------------------------
def authorize(sim: SimulatorHandle, scope: str) -> httpx.Response:
    return httpx.get(f"{sim.base_url}/authorize", params={
        "client_id": "demo-client", "response_type": "code", "redirect_uri": REDIRECT,
        "state": "s1", "scope": scope})


def test_a_scope_the_integration_lacks_is_webexs_invalid_scope(started: Any) -> None:
    sim = started(scopes=["spark:kms", "spark:rooms_read"])
    query = parse_qs(urlsplit(authorize(sim, "spark:kms spark:all").headers["Location"]).query)
    assert query["error"] == ["invalid_scope"] and query["state"] == ["s1"]
    assert "spark:all" in query["error_description"][0] and "code" not in query
    granted = authorize(sim, "spark:kms spark:rooms_read")
    assert "code" in parse_qs(urlsplit(granted.headers["Location"]).query)


def test_a_refresh_token_keeps_working_while_it_is_used(started: Any, clock: Clock) -> None:
    sim = started(refresh_token_lifetime=100)
    code = parse_qs(urlsplit(authorize(sim, "spark:all").headers["Location"]).query)["code"][0]
    form = {"client_id": "demo-client", "client_secret": "demo-secret"}
    tokens = httpx.post(f"{sim.base_url}/access_token", data={
        **form, "grant_type": "authorization_code", "code": code,
        "redirect_uri": REDIRECT}).json()
    refresh = {**form, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    for _ in range(5):  # 5 x 60 s: three times its lifetime, used every 60 s
        clock.now += 60
        renewed = httpx.post(f"{sim.base_url}/access_token", data=refresh)
        assert renewed.status_code == 200
        assert renewed.json()["refresh_token"] == tokens["refresh_token"]
        assert renewed.json()["scope"] == "spark:all"
    clock.now += 101  # unused for longer than its lifetime
    assert httpx.post(f"{sim.base_url}/access_token", data=refresh).status_code == 400


# -- the server and the command line --------------------------------------------------------------
def test_a_chunked_request_body_is_read(started: Any) -> None:
    sim = started()
    room = biggest_room(sim)
    body = f'{{"roomId": "{room}", "text": "sent in chunks"}}'.encode()
    with client(sim) as http:
        posted = http.post("/messages", content=iter([body[:10], body[10:]]),
                           headers={"Content-Type": "application/json"})
    assert posted.status_code == 200 and posted.json()["text"] == "sent in chunks"


def test_the_command_line_options_set_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[SimulatorConfig] = []

    def fake_start(config: SimulatorConfig, host: str, port: int) -> Any:
        seen.append(config)
        return start_simulator(config, host, 0)

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "start_simulator", fake_start)
    monkeypatch.setattr(cli, "wait_for_interrupt", interrupted)
    result = CliRunner().invoke(cli.webex_sim, [
        "--spaces", "5", "--messages", "50", "--forbidden-spaces", "1", "--vanishing-spaces",
        "1", "--locked-spaces", "1", "--locked-times", "3", "--retry-after", "60",
        "--outage-seconds", "12", "--outage-status", "429", "--outage-after-requests", "40",
        "--next-link-max-null", "--relative-next-links", "--kms-failures", "1",
        "--threads", "0.3", "--ties", "0", "--scope", "spark:kms"])
    assert result.exit_code == 0, result.output
    config = seen[0]
    assert (config.forbidden_spaces, config.vanishing_spaces, config.locked_spaces,
            config.locked_times, config.retry_after) == (1, 1, 1, 3, 60)
    assert (config.outage_seconds, config.outage_status, config.outage_after_requests) == (
        12, 429, 40)
    assert config.next_link_max_null and config.relative_next_links
    assert (config.kms_failures, config.threads, config.ties, config.scopes) == (
        1, 0.3, 0, ["spark:kms"])
    assert "faulty spaces: 1 forbidden, 1 locked, 1 vanishing" in result.output


def test_stop_ends_requests_still_waiting_their_latency(started: Any) -> None:
    sim = started(latency_ms=600_000)  # ten minutes: only stop() can end this request
    token = sim.token_for(USER)
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            httpx.get(f"{sim.base_url}/people/me", timeout=None,
                      headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=ask, daemon=True)
    waiting.start()
    wait_for(lambda: sim.simulator.outage.requests == 1)  # it arrived, and waits
    sim.stop()
    wait_for(lambda: not waiting.is_alive())
    assert outcome  # the connection was closed, not answered
