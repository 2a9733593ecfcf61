"""Output text an attacker controls: it must neither freeze the page nor spoof what it shows.

The parser tests time the page's own modules in Chromium (``page.evaluate``) and compare
a hostile line with a benign coloured line of the same length: a ratio, never an absolute
limit (docs/reliability.md, section 7).
"""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import next_frame, start_job, wait_js, wait_state

pytestmark = pytest.mark.browser

COPIES = 1_000

# JavaScript: time what the page does with each line (append it to a LineWindow, which
# follows the SGR state; draw its segments; search its plain text) for COPIES benign
# coloured lines and COPIES hostile ones, in alternating batches so that a change in the
# machine's load hits both alike. A hostile batch gives up once it has cost ten times its
# benign batch, so the unfixed parser fails in seconds rather than minutes.
TIME_PARSER = """async ([line, copies]) => {
  const base = new URL(document.querySelector("script[type=module]").src);
  const ansi = await import(new URL("ansi.js", base));
  const { LineWindow } = await import(new URL("lines.js", base));
  const unit = "\\x1b[1;38;5;208mok\\x1b[0m plain \\x1b[48;2;10;20;30mbg\\x1b[49m ";
  const benign = unit.repeat(Math.ceil(line.length / unit.length)).slice(0, line.length);
  const batch = (text, n, budget) => {
    const w = new LineWindow(n + 1);
    const t0 = performance.now();
    let done = 0;
    while (done < n && performance.now() - t0 <= budget) {
      w.appendRaw("stdout", text, undefined, done + 1, 0);
      ansi.segments(w.sgr[done], text);
      ansi.plainText(text);
      done++;
    }
    return { ms: performance.now() - t0, done };
  };
  batch(benign, 50, Infinity); // warm up the JIT on both paths
  batch(line, 50, 1000);
  const size = copies / 10;
  let benignMs = 0, benignDone = 0, hostileMs = 0, hostileDone = 0;
  for (let round = 0; round < 10; round++) {
    const b = batch(benign, size, Infinity);
    const h = batch(line, size, 10 * b.ms);
    benignMs += b.ms;
    benignDone += b.done;
    hostileMs += h.ms;
    hostileDone += h.done;
    if (h.done < size) break;
  }
  const perBenign = benignMs / benignDone, perHostile = hostileMs / Math.max(1, hostileDone);
  return { ratio: perHostile / perBenign, perBenign, perHostile, hostileDone };
}"""

ESC = "\x1b"
HOSTILE_LINES = {
    # The reported one (16 KB): each 38 copied the rest of the parameter list.
    "extended-colour-params": f"{ESC}[" + "38;" * 5400 + "m",
    "background-params": f"{ESC}[" + "48;" * 5400 + "m",
    "colon-subparams": f"{ESC}[38" + ":2" * 8100 + "m",
    "many-tiny-sgr": f"{ESC}[1mx{ESC}[22mx" * 1350,
    "many-resets": f"{ESC}[m" * 5400,
    "broken-csi": f"{ESC}[" * 8100,
    "unterminated-osc8": f"{ESC}]8;;" + "javascript:" * 1500,
    "many-osc8-links": f"{ESC}]8;;x{ESC}\\y{ESC}]8;;{ESC}\\" * 1000,
    "c1-csi-params": "\x9b" + "38;5;" * 3300 + "m",
}


@pytest.mark.parametrize("hostile", HOSTILE_LINES.values(), ids=HOSTILE_LINES.keys())
def test_hostile_escape_line_costs_about_a_coloured_line(
    open_page: Any, page: Any, hostile: str,
) -> None:
    page = open_page()
    timing = page.evaluate(TIME_PARSER, [hostile, COPIES])
    assert timing["ratio"] < 3, timing


def test_sgr_parameters_past_the_cap_are_ignored(open_page: Any, page: Any) -> None:
    page = open_page()
    state = page.evaluate("""async () => {
      const base = new URL(document.querySelector("script[type=module]").src);
      const ansi = await import(new URL("ansi.js", base));
      const early = ansi.applySgr(ansi.DEFAULT_STATE, "1;" + "22;1;".repeat(3) + "31");
      const late = ansi.applySgr(ansi.DEFAULT_STATE, "1;".repeat(40) + "31");
      return { early: [early.bold, early.fg], late: [late.bold, late.fg] };
    }""")
    assert state == {"early": [True, 1], "late": [True, None]}


# Bidi controls and zero-width characters (docs/ui.md, "Output is text").
RLO = "\u202e"
CONTROLS = [
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # embeddings and overrides
    "\u2066", "\u2067", "\u2068", "\u2069",  # isolates
    "\u200e", "\u200f", "\u061c",  # marks
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",  # zero-width
]


def marker(c: str) -> str:
    return f"<U+{ord(c):04X}>"


def stderr_line(page: Any) -> str:
    wait_js(page, "document.querySelector('#output .line.stderr')")
    return page.text_content("#output .line.stderr")


def test_right_to_left_override_in_output_shows_as_a_marker(open_page: Any, page: Any) -> None:
    page = open_page()
    start_job(page, "ui_hostile", note=f"abc{RLO}dcba")
    wait_state(page, "succeeded")
    assert stderr_line(page) == f"abc{marker(RLO)}dcba"
    marks = page.eval_on_selector_all(
        "#output .line.stderr .cc", "ms => ms.map(m => [m.textContent, m.title])")
    assert marks == [["<U+202E>", "RIGHT-TO-LEFT OVERRIDE (U+202E), not applied"]]


def test_every_bidi_and_zero_width_control_shows_as_a_marker(open_page: Any, page: Any) -> None:
    page = open_page()
    start_job(page, "ui_hostile", note="x".join(CONTROLS))
    wait_state(page, "succeeded")
    shown = stderr_line(page)
    assert shown == "x".join(marker(c) for c in CONTROLS)
    assert not set(shown) & set(CONTROLS)


def test_controls_in_parameters_show_as_markers(open_page: Any, page: Any) -> None:
    page = open_page()
    start_job(page, "ui_hostile", note=f"abc{RLO}dcba")
    wait_state(page, "succeeded")
    expected = f"note=abc{marker(RLO)}dcba"
    assert page.text_content("#run-params") == expected
    assert page.get_attribute("#run-params", "title") == expected
    wait_js(page, "document.querySelector('#runs-body .params')")
    assert page.text_content("#runs-body .params") == expected
    assert page.get_attribute("#runs-body .params", "title") == expected


def test_search_finds_and_highlights_text_around_a_control(open_page: Any, page: Any) -> None:
    page = open_page()
    start_job(page, "ui_hostile", note=f"abc{RLO}dcba")
    wait_state(page, "succeeded")
    stderr_line(page)
    page.fill("#search", "dcba")
    page.press("#search", "Enter")
    page.wait_for_selector("#search-count:has-text('1 of 1')")
    next_frame(page)
    assert page.text_content("#output mark.hl.current") == "dcba"
    assert page.text_content("#output mark.hl.current >> xpath=..") == f"abc{marker(RLO)}dcba"
    page.fill("#search", f"c{RLO}d")  # pasted from the raw log, control and all
    page.press("#search", "Enter")
    page.wait_for_selector("#search-count:has-text('1 of 1')")
    next_frame(page)
    assert page.text_content("#output mark.hl.current") == f"c{marker(RLO)}d"


def test_a_line_of_controls_does_not_flood_the_row_with_elements(
    open_page: Any, page: Any,
) -> None:
    page = open_page()
    start_job(page, "ui_hostile", note="a\u200b" * 5000)
    wait_state(page, "succeeded")
    shown = stderr_line(page)
    assert shown == f"a{marker(chr(0x200B))}" * 5000
    assert page.locator("#output .line.stderr *").count() < 500
