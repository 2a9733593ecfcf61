"""The Socket.IO protocol (docs/protocol.md) against a real server and real clients."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import LiveServer, Watcher, wait_for

Connect = Callable[..., Watcher]


def numbers_seen(watcher: Watcher, run_id: str) -> list[int]:
    return [int(t) for t in watcher.texts(run_id) if t.isdigit()]


def test_start_receive_and_finish(connect: Connect) -> None:
    w = connect()
    ack = w.call("start", {"job": "countdown", "params": {"n": 3, "delay": 0}})
    run_id = ack["run_id"]
    wait_for(lambda: w.state_of(run_id) == "succeeded")
    wait_for(lambda: w.texts(run_id) == ["3", "2", "1", "Liftoff!"])
    assert [s["state"] for s in w.states if s["run_id"] == run_id] == [
        "queued", "running", "succeeded"]
    assert w.errors == []


def test_stop_over_the_socket(connect: Connect) -> None:
    w = connect()
    run_id = w.call("start", {"job": "countdown", "params": {"n": 1000, "delay": 0.05}})["run_id"]
    wait_for(lambda: len(w.texts(run_id)) >= 2)
    assert w.call("stop", {"run_id": run_id}) == {"ok": True}
    wait_for(lambda: w.state_of(run_id) == "stopped")
    assert w.call("stop", {"run_id": run_id}) == {"ok": True}  # harmless the second time
    wait_for(lambda: "Stopped." in w.texts(run_id))


def test_reconnect_and_rewatch_gets_exactly_the_missing_lines(connect: Connect) -> None:
    first = connect()
    run_id = first.call("start", {"job": "numbers", "params": {"n": 5000}})["run_id"]
    wait_for(lambda: len(numbers_seen(first, run_id)) >= 500)
    first.close()
    seen = list(first.lines[run_id])  # one copy: a batch being handled may still land
    last = len(seen)  # seqs start at 1 and nothing was dropped: the last seq it has

    again = connect()
    again.last_seq[run_id] = last
    ack = again.call("watch", {"run_id": run_id, "after": last})
    assert ack["ok"] and ack["run"]["id"] == run_id
    wait_for(lambda: len(seen) + len(again.lines.get(run_id, [])) >= 5000, timeout=30)
    combined = [int(line["text"]) for line in seen + again.lines[run_id]]
    assert combined == list(range(1, 5001))
    assert again.errors == []


def test_a_second_client_sees_the_same_lines(connect: Connect) -> None:
    starter, other = connect(), connect()
    run_id = starter.call("start", {"job": "numbers", "params": {"n": 3000}})["run_id"]
    other.call("watch", {"run_id": run_id, "after": 0})
    for w in (starter, other):
        wait_for(lambda w=w: len(w.lines.get(run_id, [])) >= 3000, timeout=30)
        assert numbers_seen(w, run_id) == list(range(1, 3001))
        assert w.errors == []


def test_watching_a_finished_run_replays_it(connect: Connect) -> None:
    w = connect()
    run_id = w.call("start", {"job": "countdown", "params": {"n": 2, "delay": 0}})["run_id"]
    wait_for(lambda: w.state_of(run_id) == "succeeded")
    late = connect()
    late.last_seq[run_id] = 1  # where it says it was
    assert late.call("watch", {"run_id": run_id, "after": 1})["run"]["state"] == "succeeded"
    wait_for(lambda: late.texts(run_id) == ["1", "Liftoff!"])


def test_the_same_request_id_does_not_start_twice(connect: Connect) -> None:
    w = connect()
    start = {"job": "gate", "params": {}, "request_id": "3f1c-retry"}
    first = w.call("start", start)
    assert w.call("start", start) == first
    w.call("stop", first)


@pytest.mark.parametrize("event,payload,message", [
    ("start", None, "to start a job"),
    ("start", {"job": "nope"}, "no job named 'nope'"),
    ("start", {"job": "countdown", "params": {"n": "many"}}, "n: must be an integer"),
    ("start", {"job": "countdown", "params": "n=3"}, "must be an object"),
    ("start", {"job": "countdown", "request_id": 5}, "request_id"),
    ("stop", {"run_id": "no-such-run"}, "There is no run"),
    ("stop", {}, "run_id"),
    ("watch", {"run_id": "no-such-run", "after": 0}, "There is no run"),
    ("watch", ["run_id"], "run_id"),
    ("unwatch", "x", "run_id"),
])
def test_bad_requests_get_a_sentence_not_a_crash(
    connect: Connect, event: str, payload: Any, message: str,
) -> None:
    w = connect()
    answer = w.call(event, payload)
    assert message in answer["error"]


def test_watch_rejects_a_bad_position(connect: Connect) -> None:
    w = connect()
    run_id = w.call("start", {"job": "countdown", "params": {"n": 1, "delay": 0}})["run_id"]
    for after in (-1, "3", 1.5, True, None):
        assert "after" in w.call("watch", {"run_id": run_id, "after": after})["error"]


def test_an_oversized_packet_drops_only_that_connection(
    connect: Connect, live_server: LiveServer,
) -> None:
    big, fine = connect(), connect()
    big.client.emit("start", {"job": "countdown", "params": {"pad": "x" * 2_000_000}})
    wait_for(lambda: not big.client.connected, timeout=10)
    assert fine.call("start", {"job": "countdown", "params": {"n": 1, "delay": 0}})["run_id"]


def test_output_batches_respect_the_size_bound(connect: Connect, live_server: LiveServer) -> None:
    w = connect()
    run_id = w.call("start", {"job": "flood", "params": {"lines": 20000, "width": 200}})["run_id"]
    frames: list[int] = []
    w.client.on("output", lambda b: (frames.append(sum(len(x["text"]) for x in b["lines"])),
                                     w.on_output(b)))
    wait_for(lambda: len(w.lines.get(run_id, [])) >= 20000, timeout=30)
    limit = live_server.app.config["MAX_BATCH_CHARS"]
    assert max(frames) <= limit


def test_the_server_hangs_up_once_a_websocket_has_closed(live_server: LiveServer) -> None:
    """Werkzeug used to keep the connection for a next request: a thread blocked until
    the client hung up, and the client's closing frame was logged as a bad request."""
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:"
                     f"{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-"
                     "Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096)
        assert received.startswith(b"HTTP/1.1 101")
        sock.sendall(_client_frame(1, b"1"))  # Engine.IO "close"
        while b"\x88" not in received.partition(b"\r\n\r\n")[2]:  # the server's close frame
            received += sock.recv(4096)
        with contextlib.suppress(ConnectionError):
            sock.sendall(_client_frame(8, b"\x03\xe8"))  # the client's close frame
        rest = b""
        with contextlib.suppress(ConnectionError):
            while chunk := sock.recv(4096):  # socket.timeout here: the server kept it open
                rest += chunk
        assert b"HTTP/" not in rest  # no answer to the closing frame as if a request


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked websocket frame, as clients send them (payload under 126 bytes)."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))
