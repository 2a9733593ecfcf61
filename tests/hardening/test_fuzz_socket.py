"""Bad input over Socket.IO (docs/protocol.md): every call is answered, nothing crashes.

Hypothesis sends the four events and unknown ones with payloads of every shape (wrong
types, missing fields, huge and nested values, unknown jobs and run ids, negative and
huge ``after``, booleans where numbers go) through a real client to a real server.
Packets no client library would send (undecodable, unnamed events, the server's own
``connect``/``disconnect`` as events, JSON nested 20,000 deep, oversize) close that one
connection and nobody else's. Either way the server logs no traceback and goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import LiveServer, Watcher, wait_for
from tests.hardening.conftest import ServerProblems
from tests.hardening.rawclient import RawClient

Connect = Callable[..., Watcher]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=16)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


# Large, but two of them together stay below MAX_HTTP_BUFFER_SIZE (64 KiB): larger
# packets are refused by the transport (test_an_oversize_packet_is_refused_...).
HUGE = st.sampled_from(["x" * 25_000, ["y"] * 3_000, {f"k{i}": i for i in range(1_500)}]) \
    | st.integers(1, 400).map(nested)
ANY = JSON | HUGE
JOB = st.sampled_from(["hx_echo", "fail", "nope", "", "hx_echo\x00", "../etc/passwd"]) | ANY
AFTER = st.integers(-(2**70), 2**70) | st.booleans() | st.floats() | ANY


@st.composite
def payloads(draw: st.DrawFn, real_run_id: str) -> Any:
    run_id = st.sampled_from([real_run_id, "no-such-run", "", "x" * 101, real_run_id + " "]) \
        | ANY
    start = st.fixed_dictionaries({"job": JOB}, optional={
        "params": st.dictionaries(st.sampled_from(["text", "n", "x"]), ANY) | ANY,
        "request_id": st.text(max_size=120) | ANY})
    target = st.fixed_dictionaries({}, optional={"run_id": run_id, "after": AFTER})
    schedule = st.fixed_dictionaries({}, optional={  # the schedule_* events (web/schedules.py)
        "schedule_id": st.text(max_size=120) | ANY,
        "schedule": st.fixed_dictionaries({"job": JOB}, optional={
            "name": st.text(max_size=120), "cron": st.text(max_size=40) | ANY,
            "interval": st.integers() | ANY, "timezone": st.text(max_size=40) | ANY,
            "end_at": st.text(max_size=40) | ANY}) | ANY})
    payload = draw(start | target | schedule | ANY)
    if draw(st.integers(0, 9)) == 0:  # more than one argument
        return (payload, draw(ANY))
    return payload


EVENTS = st.sampled_from(["start", "stop", "watch", "unwatch", "schedules", "schedule_create",
                          "schedule_update", "schedule_preview", "schedule_pause",
                          "schedule_resume", "schedule_delete", "schedule_run_now"]) | st.text(
    min_size=1, max_size=30).filter(lambda e: e not in ("connect", "disconnect",
                                                        "connect_error"))


def is_answer(ack: Any) -> bool:
    if not isinstance(ack, dict):
        return False
    if "error" in ack:
        return isinstance(ack["error"], str) and len(ack["error"]) > 10
    return (isinstance(ack.get("run_id"), str) or ack.get("ok") is True
            or isinstance(ack.get("schedules"), list) or isinstance(ack.get("schedule"), dict)
            or isinstance(ack.get("fires"), list))


@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_event_gets_an_answer_and_nothing_crashes(
    data: st.DataObject, connect: Connect, server_problems: ServerProblems,
) -> None:
    # Hypothesis calls this function once per example, with the same fixtures: the one
    # client and server see every example in a row, as a long-lived page would.
    client = _client(connect)
    event = data.draw(EVENTS, label="event")
    payload = data.draw(payloads(client.real_run_id), label="payload")
    # Past MAX_HTTP_BUFFER_SIZE the transport closes the connection by design (tested
    # in test_an_oversize_packet_is_refused_at_the_transport): not an answerable call.
    assume(len(json.dumps([event, payload], default=str)) < 60_000)
    ack = client.watcher.client.call(event, payload, timeout=10)
    assert is_answer(ack), ack
    assert server_problems.summary() == []


class _FuzzClient:
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.real_run_id = watcher.call("start", {"job": "hx_echo", "params": {"text": "hi"}})[
            "run_id"]


_clients: dict[int, _FuzzClient] = {}


def _client(connect: Connect) -> _FuzzClient:
    key = id(connect)
    if key not in _clients:
        _clients.clear()
        _clients[key] = _FuzzClient(connect())
    return _clients[key]


def test_the_server_is_usable_after_the_fuzz(
    connect: Connect, server_problems: ServerProblems, live_server: LiveServer,
) -> None:
    """The same fuzz in short, then real work, on a server that has seen it all."""
    w = connect()
    for event, payload in [("start", {"job": ["x"]}), ("watch", {"run_id": 5, "after": True}),
                           ("stop", nested(300)), ("nope", "x" * 50_000),
                           ("unwatch", ({"run_id": "a"}, 2))]:
        assert is_answer(w.call(event, payload))
    run_id = w.call("start", {"job": "numbers", "params": {"n": 2000}})["run_id"]
    wait_for(lambda: w.state_of(run_id) == "succeeded", timeout=20)
    wait_for(lambda: len(w.lines.get(run_id, [])) == 2000, timeout=20)
    assert w.texts(run_id) == [str(i) for i in range(1, 2001)] and w.errors == []
    assert server_problems.summary() == []


@pytest.mark.parametrize("payload", [None, "x", {"job": "fail"}, ["a", 1]])
def test_an_event_named_star_is_answered_as_an_unknown_event(
    connect: Connect, server_problems: ServerProblems, payload: Any,
) -> None:
    """python-socketio hands an event named "*" to the catch-all handler without its
    name (found by the fuzz above: a TypeError and no answer)."""
    answer = connect().call("*", payload)
    assert answer["error"].startswith("There is no event '*': send start, stop")
    assert server_problems.summary() == []


MALFORMED = [
    "42", "42[]", "421[]", "421[5]", '421[{"a":1}]', "421[null]", '421["connect"]',
    '421["disconnect","x"]', '421["connect_error"]', "42{bad", "47", "4", "45-",
    '451-["start",{"_placeholder":true,"num":0}]', "4" + "9" * 200 + '["start"]',
    "421" + "[" * 20_000 + "]" * 20_000,
    '421["start",{"job":"countdown","params":{"n":' + "9" * 5_000 + "}}]",
    '421["watch",{"run_id":"x","after":' + "9" * 5_000 + "}]",
]


@pytest.mark.parametrize("packet", MALFORMED, ids=lambda p: p[:24])
def test_a_malformed_packet_closes_only_that_connection(
    packet: str, connect: Connect, live_server: LiveServer, server_problems: ServerProblems,
) -> None:
    other = connect()
    raw = RawClient(live_server.url)
    raw.send(packet)
    assert raw.closed_by_server(timeout=5)
    assert other.call("stop", {"run_id": "nope"})["error"]
    assert server_problems.summary() == []
    assert any("malformed packet" in r.getMessage() for r in server_problems.all)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_text_as_a_packet_is_answered_or_refused(
    text: str, live_server: LiveServer, server_problems: ServerProblems,
) -> None:
    raw = RawClient(live_server.url)
    try:
        raw.send("4" + text)
        raw.pump(0.3)  # an ack, the close, or nothing (an ack to a client's ack id)
    finally:
        raw.close()
    assert server_problems.summary() == []


def test_an_oversize_packet_is_refused_at_the_transport(
    connect: Connect, live_server: LiveServer, server_problems: ServerProblems,
) -> None:
    limit = live_server.app.config["MAX_HTTP_BUFFER_SIZE"]
    watcher = connect()
    run_id = watcher.call("start", {"job": "numbers", "params": {"n": 20_000}})["run_id"]
    raw = RawClient(live_server.url)
    raw.send('42["start",' + json.dumps({"job": "hx_echo", "params": {
        "text": "x" * (limit + 1)}}) + "]")
    assert raw.closed_by_server(timeout=5)
    big = connect()
    big.client.emit("start", {"job": "hx_echo", "params": {"text": "y" * 2_000_000}})
    wait_for(lambda: not big.client.connected, timeout=10)
    wait_for(lambda: watcher.state_of(run_id) == "succeeded", timeout=30)
    wait_for(lambda: len(watcher.lines.get(run_id, [])) == 20_000, timeout=30)
    assert watcher.errors == []
    assert watcher.call("start", {"job": "hx_echo", "params": {"text": "x" * 5_000}})[
        "run_id"]
    assert server_problems.summary() == []
