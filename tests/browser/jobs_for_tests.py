"""Jobs the browser tests start (loaded with the ``JOBS`` setting, never in production).

Named ``ui_*``: jobs register in one process-wide registry, which other test modules'
jobs share.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any, Literal

from flask_realtime import Range, job
from flask_realtime.core.jobs import Running

ESC = "\x1b"

HOSTILE_LINES = [
    '<img src=x onerror="window.__pwned=1;alert(1)">',
    f"{ESC}]8;;javascript:window.__pwned=2;alert(2){ESC}\\click me{ESC}]8;;{ESC}\\ (osc-8 link)",
    "</script><script>window.__pwned=3;alert(3)</script>",
    "<b>bold?</b> &amp; &lt;not an entity&gt;",
]


@job(name="ui_numbers", title="Numbers")
def numbers(
    running: Running,
    n: Annotated[int, Range(0, 10_000_000)] = 100,
    delay: Annotated[float, Range(0, 10)] = 0.0,
) -> int:
    """Print 1..n, one per line, `delay` seconds apart."""
    for i in range(1, n + 1):
        if not running():
            return i
        print(i)
        if delay:
            time.sleep(delay)
    return n


@job(name="ui_hostile", title="<b>x</b><script>window.__pwned=4;alert(4)</script>")
def hostile(running: Running, note: str = "<img src=x onerror=alert(5)>") -> str:
    """Prints markup, OSC-8 javascript: links and </script>: all must show as text."""
    for line in HOSTILE_LINES:
        print(line)
    print(note, file=sys.stderr)
    return "<img src=x onerror=alert(6)>"


@job(name="ui_colours", title="Colours")
def colours(running: Running, steps: Annotated[int, Range(1, 1000)] = 20) -> None:
    """ANSI styles and a carriage-return progress line."""
    print(f"{ESC}[31mred{ESC}[0m plain {ESC}[1;32mbold green{ESC}[0m")
    print(f"{ESC}[38;5;208morange256{ESC}[0m {ESC}[38;2;10;20;30mtruecolor{ESC}[0m")
    print(f"{ESC}[4munder{ESC}[24m {ESC}[3mitalic{ESC}[23m {ESC}[7minverse{ESC}[27m")
    print(f"{ESC}[2J{ESC}[Hcleared? {ESC}[5Acursor{ESC}[K moved")
    for i in range(1, steps + 1):
        sys.stdout.write(f"\rprogress {i}/{steps}")
        sys.stdout.flush()
        time.sleep(0.01)
    sys.stdout.write("\n")
    print("after progress")


@job(name="ui_table", title="Table")
def table(
    running: Running,
    rows: Annotated[int, Range(0, 1000)] = 3,
    kind: Literal["list", "dict"] = "list",
) -> Any:
    """Returns a list of dicts (a table) or a dict, after printing a line per row."""
    data = [{"name": f"row {i}", "value": i * i, "ok": i % 2 == 0} for i in range(rows)]
    for row in data:
        print(row["name"])
    return data if kind == "list" else {"rows": rows}


@job(name="ui_words", title="Words")
def words(running: Running, n: Annotated[int, Range(1, 100_000)] = 200) -> None:
    """Lines with a searchable word on every 50th."""
    for i in range(1, n + 1):
        print(f"line {i} needle" if i % 50 == 0 else f"line {i} hay")


@job(name="ui_groups", title="Groups")
def groups(running: Running, fail: bool = False, items: Annotated[int, Range(1, 1000)] = 30,
           pause: Annotated[float, Range(0, 5)] = 0.3) -> None:
    """Two groups made with `group()`, one of them nested, and one a command job would
    print; with `fail`, the job raises inside the second group."""
    from flask_realtime import group

    print("before the groups")
    with group("Fetching rooms"):
        for i in range(items):
            print(f"room {i}")
        with group("Inner page"):
            print("inner line")
        time.sleep(pause)  # the group's duration: at least this
    with group("Deleting rooms"):
        print("deleting")
        if fail:
            raise RuntimeError("could not delete a room")
    print("::group::Printed by a command")
    print("command output")
    print("::endgroup::")
    print("after the groups")


@job(name="ui_secret", title="Secret")
def secret(running: Running) -> int:
    """Read a password with getpass and say only its length."""
    import getpass

    word = getpass.getpass("Password: ")
    print(f"{len(word)} characters")
    return len(word)
