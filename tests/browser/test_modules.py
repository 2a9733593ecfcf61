"""The page's pure modules (ANSI parsing, line assembly), run in Chromium as they ship."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

ESC = "\x1b"


@pytest.fixture
def modules(open_page: Any) -> Any:
    page = open_page()

    def run(body: str, arg: Any = None) -> Any:
        # Built here, not with new Function in the page: the page's CSP forbids eval.
        return page.evaluate(
            "async (arg) => { const ansi = await import('/static/ansi.js');"
            f" const lines = await import('/static/lines.js'); {body} }}", arg)

    return run


PLAIN_CASES = [
    (f"a{ESC}[31mb{ESC}[0mc", "abc"),
    (f"{ESC}]8;;javascript:alert(1)\x07link{ESC}]8;;\x07 after", "link after"),
    (f"{ESC}]8;;https://x{ESC}\\text{ESC}]8;;{ESC}\\", "text"),
    (f"keep{ESC}]0;window title never ends", "keep"),
    (f"{ESC}[2K{ESC}[1G{ESC}[?25lx{ESC}[10;20Hy", "xy"),
    ("\x9b31mred\x9b0m", "red"),
    (f"{ESC}(Bx{ESC}7y{ESC}8", "xy"),
    ("bell\x07 back\bspace\x00nul", "bell backspacenul"),
    ("tab\tstays", "tab\tstays"),
    (f"{ESC}Pdcs string{ESC}\\z", "z"),
    ("ünïcødé ✓ 😀", "ünïcødé ✓ 😀"),
    (f"broken {ESC}[31", "broken "),
]


def test_escape_sequences_are_removed(modules: Any) -> None:
    raw = [r for r, _ in PLAIN_CASES]
    got = modules("return arg.map(ansi.plainText);", raw)
    assert list(zip(raw, got, strict=True)) == PLAIN_CASES


def test_sgr_states(modules: Any) -> None:
    cases = {
        f"{ESC}[1;31mA": {"fg": 1, "bold": True},
        f"{ESC}[38;5;196mA": {"fg": 196},
        f"{ESC}[38:2::1:2:3mA": {"fg": "#010203"},
        f"{ESC}[48;2;255;0;0mA": {"bg": "#ff0000"},
        f"{ESC}[94;103mA": {"fg": 12, "bg": 11},
        f"{ESC}[1;2m{ESC}[22mA": {},
        f"{ESC}[31m{ESC}[mA": {},
        f"{ESC}[4:0;3;9mA": {"italic": True, "strike": True},
        f"{ESC}[7;8mA": {"inverse": True, "hidden": True},
        f"{ESC}[38;5;999;1mA": {"bold": True},  # out of range colour: ignored, rest applies
    }
    for raw, expected in cases.items():
        state = modules(
            "const s = ansi.segments(ansi.DEFAULT_STATE, arg); return s[s.length - 1].state;", raw)
        changed = {k: v for k, v in state.items() if v not in (None, False)}
        assert changed == expected, raw


def test_styles_for_states(modules: Any) -> None:
    styles = modules("""
        const S = (p) => ansi.styleOf(ansi.applySgr(ansi.DEFAULT_STATE, p));
        return [S('31'), S('38;5;208'), S('7'), S('1;4;44'), ansi.styleOf(ansi.DEFAULT_STATE)];
    """)
    assert styles[0] == {"cls": "a-fg1", "color": None, "background": None}
    assert styles[1] == {"cls": "", "color": "#ff8700", "background": None}
    assert styles[2] == {"cls": "a-ifg a-ibg", "color": None, "background": None}
    assert styles[3] == {"cls": "a-bg4 a-b a-u", "color": None, "background": None}
    assert styles[4] is None


def test_state_carries_to_the_next_line_of_the_same_stream(modules: Any) -> None:
    result = modules("""
        const w = new lines.LineWindow(100);
        w.appendRaw('stdout', '\\x1b[32mgreen starts', undefined, 1, 0);
        w.appendRaw('stderr', 'plain stderr', undefined, 2, 0);
        w.appendRaw('stdout', 'still green\\x1b[0m', undefined, 3, 0);
        w.appendRaw('stdout', 'plain again', undefined, 4, 0);
        return w.sgr.map(s => s.fg);
    """)
    assert result == [None, None, 2, None]


def test_partial_and_carriage_return_lines(modules: Any) -> None:
    result = modules("""
        const w = new lines.LineWindow(100);
        const raw = [
          ['stdout', 'ab', ''], ['stderr', 'E1', undefined], ['stdout', 'cd', undefined],
          ['stdout', '10%', '\\r'], ['stderr', 'E2', undefined], ['stdout', '50%', '\\r'],
          ['stdout', '100%', undefined], ['stdout', 'x', ''], ['stdout', 'y', '\\r'],
          ['stdout', 'z', undefined],
        ];
        raw.forEach(([s, t, e], i) => w.appendRaw(s, t, e, i + 1, 0));
        return [w.text, w.seq];
    """)
    assert result == [["abcd", "E1", "100%", "E2", "z"], [1, 2, 4, 5, 8]]


def test_window_trims_front_and_prepends_older_lines(modules: Any) -> None:
    result = modules("""
        const w = new lines.LineWindow(1000);
        for (let i = 1; i <= 1200; i++) w.appendRaw('stdout', String(i), undefined, i, 0);
        const dropped = w.trimFront();
        const older = new lines.LineWindow(Infinity);
        older.appendRaw('stdout', '199', undefined, 199, 0);
        older.appendRaw('stdout', '200 partial', '', 200, 0);
        const firstBefore = w.text[0];
        w.text[0] = ' continued';
        const added = w.prepend(older);
        return [dropped, firstBefore, added, w.text.slice(0, 2), w.seq.slice(0, 2), w.length];
    """)
    assert result == [200, "201", 1, ["199", "200 partial continued"], [199, 200], 1001]


def test_endless_partial_line_wraps_into_new_rows(modules: Any) -> None:
    lengths = modules("""
        const w = new lines.LineWindow(100);
        for (let i = 1; i <= 10; i++) w.appendRaw('stdout', '.'.repeat(10000), '', i, 0);
        return w.text.map(t => t.length);
    """)
    assert lengths == [60_000, 40_000]
