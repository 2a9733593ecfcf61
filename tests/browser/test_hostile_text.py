"""Output text an attacker controls: it must neither freeze the page nor spoof what it shows.

The parser tests time the page's own modules in Chromium (``page.evaluate``) and compare
a hostile line with a benign coloured line of the same length: a ratio, never an absolute
limit (docs/reliability.md, section 7).
"""

from __future__ import annotations

from typing import Any

import pytest

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
