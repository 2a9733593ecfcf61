"""Core's input contract (``RunInput`` in core/ports.py) on every store: what a user
types for a run is queued in the store, handed once to the process executing the run,
in order, and refused once the input is over. The ``store`` fixture is in conftest.py."""

from __future__ import annotations

import threading

from flask_realtime.core.ports import RunStore


def test_items_come_out_in_the_order_sent_and_each_once(store: RunStore) -> None:
    assert store.send_input("r1", "alice\n") == "sent"
    assert store.send_input("r1", "bob\n") == "sent"
    assert store.take_input("r1", 0) == "alice\n"
    assert store.take_input("r1", 0) == "bob\n"
    assert store.take_input("r1", 0) is None  # taken items are gone


def test_runs_have_separate_inputs(store: RunStore) -> None:
    store.send_input("r1", "for one\n")
    assert store.take_input("r2", 0) is None
    assert store.take_input("r1", 0) == "for one\n"


def test_end_of_file_is_the_last_item_and_closes_the_input(store: RunStore) -> None:
    store.send_input("r1", "last line\n")
    assert store.send_input("r1", None) == "sent"
    assert store.send_input("r1", "too late\n") == "closed"
    assert store.send_input("r1", None) == "closed"
    assert store.take_input("r1", 0) == "last line\n"
    assert store.take_input("r1", 0) == ""  # end-of-file
    assert store.take_input("r1", 0) is None


def test_closing_drops_what_is_unread_and_refuses_more(store: RunStore) -> None:
    store.send_input("r1", "secret\n")
    store.close_input("r1")
    store.close_input("r1")  # harmless twice
    assert store.take_input("r1", 0) is None
    assert store.send_input("r1", "more\n") == "closed"


def test_unread_text_is_bounded_in_bytes(store: RunStore) -> None:
    assert store.send_input("r1", "é" * 4, max_queued=10) == "sent"  # 8 bytes
    assert store.send_input("r1", "abc", max_queued=10) == "full"
    assert store.send_input("r1", "ab", max_queued=10) == "sent"
    assert store.take_input("r1", 0) == "é" * 4
    assert store.send_input("r1", "abcdefgh", max_queued=10) == "sent"  # room again
    assert store.send_input("r1", None, max_queued=10) == "sent"  # end-of-file always fits


def test_text_survives_exactly(store: RunStore) -> None:
    text = "tab\t;rm -rf / $(x) `y` \u00e9\u4e2d\U0001f600 \x00nul\r\n"
    store.send_input("r1", text)
    assert store.take_input("r1", 0) == text


def test_a_waiting_reader_gets_what_is_sent_meanwhile(store: RunStore) -> None:
    got: list[str | None] = []
    waiting = threading.Thread(target=lambda: got.append(store.take_input("r1", 30)))
    waiting.start()
    store.send_input("r1", "hello\n")
    waiting.join(30)
    assert got == ["hello\n"]


def test_a_wait_with_nothing_sent_ends_empty(store: RunStore) -> None:
    assert store.take_input("r1", 0.05) is None
