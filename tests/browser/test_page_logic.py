"""The page's logic that no server test reaches: palette colours, overlapping batches."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture
def evaluate(open_page: Any) -> Any:
    """Run ``body`` in the page with ``ansi`` and ``session`` (the modules as they ship)."""
    page = open_page()

    def run(body: str, arg: Any = None) -> Any:
        # Built here, not with new Function in the page: the page's CSP forbids eval.
        return page.evaluate(
            "async (arg) => { const ansi = await import('/static/ansi.js');"
            f" const session = await import('/static/session.js'); {body} }}", arg)

    return run


def test_the_256_colour_greys_run_from_08_to_ee(evaluate: Any) -> None:
    greys = evaluate("return [232, 233, 244, 255].map(ansi.paletteColour);")
    assert greys == ["#080808", "#121212", "#808080", "#eeeeee"]


def test_a_batch_overlapping_the_held_lines_adds_only_the_new_ones(evaluate: Any) -> None:
    held = evaluate("""
        const viewer = {follow: true, shifted() {}, invalidate() {}, setFollow() {}};
        const socket = {connected: false, emit() {}};
        const s = new session.RunSession('r', {socket, viewer, cap: 100, stats: {lines: 0},
                                               onRecord() {}, onError() {}});
        s.watch(0);
        const batch = (first, n) => ({run_id: 'r', first_seq: first, lines:
            Array.from({length: n}, (_, i) => ({stream: 'stdout', text: String(first + i)}))});
        s.onOutput(batch(1, 3));
        s.onOutput(batch(2, 4));  // repeats 2 and 3 (sent again after a re-watch)
        return [s.lines.text, s.lines.seq, s.lastSeq, s.stats.lines];
    """)
    assert held == [["1", "2", "3", "4", "5"], [1, 2, 3, 4, 5], 5, 5]
