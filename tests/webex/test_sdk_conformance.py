"""The official SDK, an independent client, works against the simulator.

If the simulator drifted from Webex's paths, JSON shapes or paging, webexpythonsdk
(which follows the real API) would fail or see different data here.
"""

from __future__ import annotations

import pytest

from flask_realtime.webex.simulator import SimulatorHandle

webexpythonsdk = pytest.importorskip("webexpythonsdk")

USER = "user1@example.com"


def sdk(sim: SimulatorHandle) -> object:
    return webexpythonsdk.WebexAPI(access_token=sim.token_for(USER),
                                   base_url=sim.base_url + "/", single_request_timeout=10)


def test_sdk_lists_rooms_and_every_message_across_pages(sim: SimulatorHandle) -> None:
    api = sdk(sim)
    truth = {r["id"]: r for r in sim.dataset.ground_truth(USER)}
    rooms = list(api.rooms.list(max=7))  # type: ignore[attr-defined]  # many pages
    assert [r.id for r in rooms] == list(truth)
    assert {r.title for r in rooms} == {t["title"] for t in truth.values()}
    biggest = max(truth.values(), key=lambda r: r["messages"])
    messages = list(api.messages.list(roomId=biggest["id"], max=100))  # type: ignore[attr-defined]
    assert len(messages) == biggest["messages"] > 100
    assert messages[0].to_dict()["created"] == biggest["newest"]
    assert messages[-1].to_dict()["created"] == biggest["oldest"]


def test_sdk_sees_people_me_and_webex_errors(sim: SimulatorHandle) -> None:
    api = sdk(sim)
    me = api.people.me()  # type: ignore[attr-defined]
    assert me.emails == [USER]
    with pytest.raises(webexpythonsdk.ApiError) as caught:
        api.rooms.get("no-such-room")  # type: ignore[attr-defined]
    assert caught.value.status_code == 404
    assert caught.value.tracking_id and caught.value.tracking_id.endswith("-SIM")


def test_sdk_creates_a_space_adds_a_member_and_posts(sim: SimulatorHandle) -> None:
    api = sdk(sim)
    room = api.rooms.create("SDK made this")  # type: ignore[attr-defined]
    api.memberships.create(room.id, personEmail="user2@example.com")  # type: ignore[attr-defined]
    api.messages.create(room.id, text="hello from the SDK")  # type: ignore[attr-defined]
    members = {m.personEmail for m in api.memberships.list(roomId=room.id)}  # type: ignore[attr-defined]
    assert members == {USER, "user2@example.com"}
    assert [m.text for m in api.messages.list(roomId=room.id)] == [  # type: ignore[attr-defined]
        "hello from the SDK"]
    api.rooms.delete(room.id)  # type: ignore[attr-defined]
    assert room.id not in {r.id for r in api.rooms.list()}  # type: ignore[attr-defined]
