"""``CollectorPause``: holders may overlap; the collector is on again once the last one
ends, and only if it was on when the first began."""

from __future__ import annotations

import gc

from flask_realtime.core.gcpause import CollectorPause


def test_overlapping_pauses_end_with_the_last_one() -> None:
    assert gc.isenabled()
    first, second = CollectorPause(), CollectorPause()
    first.begin()
    second.begin()
    assert not gc.isenabled()
    first.end()
    first.end()  # idempotent: it does not end the other holder's pause
    assert not gc.isenabled()
    second.end()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        pause = CollectorPause()
        pause.begin()
        pause.end()
        assert not gc.isenabled()
    finally:
        gc.enable()
