"""A process job's flood beside a quiet run of the same server: its reader is held to
one slice of ``SHARED_FLOOD_LINES_PER_DRAIN`` lines per drain (the server handles that
much of the flood a round, not all the job prints), and every line of both runs is
kept, in order, numbered without a gap or a repeat (docs/reliability.md). Alone, the
flood is read in slices of ``FLOOD_ALONE_LINES_PER_DRAIN``: a slow round does not make
the next one larger."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flask_realtime.core.capture import SHARED_FLOOD_LINES_PER_DRAIN, pump
from flask_realtime.core.output import Line
from flask_realtime.core.system import build, isolating_runner
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for
from tests.core.conftest import Core

from . import jobs_for_process

LINES = 60_000


def test_a_process_flood_beside_a_quiet_run_is_read_a_slice_at_a_time_and_kept_whole(
        ) -> None:
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=MemoryStore(),
                   registry=jobs_for_process.registry, runner=isolating_runner)
    with system:
        core = Core(system.registry, system.store, system.service)
        quiet = core.service.start("u", "ticks")
        wait_for(lambda: core.texts(quiet.id, "stdout"))
        flood = core.service.start("u", "timed_flood", {"lines": LINES})
        intakes: set[int] = set()

        def held_to_a_slice() -> bool:
            intakes.update(o.capture.intake for o in list(system.pump._outboxes.values()))
            return SHARED_FLOOD_LINES_PER_DRAIN in intakes

        wait_for(held_to_a_slice, timeout=30)
        assert core.finished(flood.id, timeout=60).state == "succeeded"
        core.service.stop("u", quiet.id)
        assert core.finished(quiet.id).state in ("stopped", "succeeded")
        assert core.texts(flood.id, "stdout") == [f"{i:08d} {'x' * 51}" for i in range(LINES)]
        piece = core.store.read_output(flood.id, 0, max_lines=10**7, max_chars=10**9)
        assert (piece.first_seq, piece.end_seq, len(piece.lines), piece.skipped) == (
            1, LINES, LINES, 0)  # numbered from 1, no gap, no repeat
        ticked = core.texts(quiet.id, "stdout")
        assert ticked == [str(i) for i in range(len(ticked))] and len(ticked) > 1


def test_a_process_flood_alone_is_stored_in_rounds_of_a_slice_however_slow_a_round_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round of the pump stores what the reader wrote since the last; a reader
    that never waited made a slow round's successor larger, and so slower, until a
    round held 60,000-95,000 lines (docs/performance.md, "Process isolation"). Held to
    its slice per drain cycle from the start, a round holds about one slice (and one
    read more), however long the round before took."""
    slice_ = 1000
    monkeypatch.setattr(pump, "FLOOD_ALONE_LINES_PER_DRAIN", slice_)
    store = MemoryStore()
    sizes: list[int] = []

    def slow_sink(run_id: str, lines: list[Line], epoch_ms: int, **numbers: Any) -> object:
        if run_id == flood.id:
            sizes.append(len(lines))
            # A slow round (the job prints on meanwhile), shorter than the reader's wait
            # for a drain (INTAKE_WAIT_SECONDS, 0.1 s): at 0.1 s a loaded machine's
            # round outlasted two of its waits, and held three slices (CI, once).
            time.sleep(0.05)
        return store.append_output(run_id, lines, epoch_ms, **numbers)

    lines = 100_000
    system = build({"STOP_GRACE_SECONDS": 0.3}, store=store, sink=slow_sink,
                   registry=jobs_for_process.registry, runner=isolating_runner)
    with system:
        core = Core(system.registry, system.store, system.service)
        flood = core.service.start("u", "timed_flood", {"lines": lines})
        assert core.finished(flood.id, timeout=60).state == "succeeded"
        assert core.texts(flood.id, "stdout") == [f"{i:08d} {'x' * 51}" for i in range(lines)]
    # From the first round (before the pump has seen it flood); the last ones, once
    # the job's process has ended, read the rest of its pipes unbounded.
    ended = max(len(sizes) - 3, 1)
    assert len(sizes) > 20 and max(sizes[:ended]) <= 2 * slice_ + 200, sizes
