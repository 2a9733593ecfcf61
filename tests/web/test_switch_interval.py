"""Server processes shorten the GIL switch interval, and more so while a run floods."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from flask_realtime.web.app import apply_switch_interval, create_app


@pytest.fixture
def restored_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_the_interval_is_shorter_only_while_a_flood_shares_the_process(
        app_config: dict[str, Any], restored_interval: None) -> None:
    app = create_app({**app_config, "SWITCH_INTERVAL_SECONDS": 0.0005,
                      "FLOOD_SWITCH_INTERVAL_SECONDS": 0.0002})
    apply_switch_interval(app)
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    pump = app.extensions["flask_realtime"].pump
    pump.on_contention(True)  # as the capture pump calls it (tests/core/test_capture.py)
    assert sys.getswitchinterval() == pytest.approx(0.0002)
    pump.on_contention(False)
    assert sys.getswitchinterval() == pytest.approx(0.0005)


def test_zero_leaves_pythons_interval_alone(app_config: dict[str, Any],
                                            restored_interval: None) -> None:
    before = sys.getswitchinterval()
    app = create_app({**app_config, "SWITCH_INTERVAL_SECONDS": 0,
                      "FLOOD_SWITCH_INTERVAL_SECONDS": 0})
    apply_switch_interval(app)
    assert sys.getswitchinterval() == before
    assert app.extensions["flask_realtime"].pump.on_contention is None
