"""Outbound packets are encoded by orjson, and anything it refuses still goes out."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from socketio.packet import EVENT

from flask_realtime.web.packets import TextPacket

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


def encoded(data: object) -> object:
    packet = TextPacket(EVENT, data=["output", data])
    text = packet.encode()
    assert isinstance(text, str) and text.startswith("2")
    return json.loads(text[1:])[1]


@given(_json_values)
def test_what_is_sent_decodes_to_what_was_meant(value: object) -> None:
    # st.text() includes lone surrogates, which orjson refuses: the standard module
    # encodes those payloads instead.
    assert encoded(value) == value


def test_keys_that_are_not_strings_are_encoded_as_json_does() -> None:
    assert encoded({1: "one"}) == {"1": "one"}
