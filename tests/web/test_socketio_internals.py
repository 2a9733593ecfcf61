"""What web/socketio_internals.py reaches into in python-socketio/python-engineio is there.

An upgrade that removes or renames one of them fails here, and stops the app at
startup, with a sentence naming that module rather than an AttributeError mid-request.
"""

from __future__ import annotations

from typing import Any

import pytest
import socketio
from flask import Flask

from flask_realtime.web import socketio_internals
from flask_realtime.web.app import create_app


def test_the_installed_libraries_have_every_internal_this_server_uses(app: Flask) -> None:
    server = app.extensions["socketio"].server
    assert socketio_internals.missing_internals(server) == [], (
        "python-socketio/python-engineio changed: update flask_realtime/web/"
        "socketio_internals.py (see its docstring)")


def test_a_missing_internal_stops_startup_with_a_sentence_naming_the_module(
    app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(socketio.Server, "_send_packet")  # as an upgrade might
    with pytest.raises(RuntimeError, match=r"web/socketio_internals\.py uses "
                                           r"\(socketio\.Server\._send_packet\)"):
        create_app(app_config)
