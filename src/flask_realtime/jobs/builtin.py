"""Built-in jobs that need no account: for trying the console, and for the benchmarks."""

from __future__ import annotations

import sys
import time
from typing import Annotated

from ..core.jobs import Range, Running, job


@job(title="Countdown")
def countdown(
    running: Running,
    n: Annotated[int, Range(0, 1_000_000), "numbers to count down from"] = 10,
    delay: Annotated[float, Range(0, 60), "seconds between numbers"] = 1.0,
) -> int:
    """Print n, n-1, … 1, one number every `delay` seconds; stops when asked."""
    for i in range(n, 0, -1):
        if not running():
            print("Stopped.")
            return i
        print(i, flush=True)
        if delay:
            time.sleep(delay)
    print("Liftoff!")
    return 0


@job(title="Flood")
def flood(
    running: Running,
    lines: Annotated[int, Range(0, 100_000_000), "how many lines"] = 100_000,
    width: Annotated[int, Range(1, 10_000), "characters per line"] = 60,
) -> int:
    """Print `lines` numbered lines of about `width` characters, as fast as possible."""
    pad = "x" * max(width - 9, 0)
    printed = 0
    for start in range(1, lines + 1, 1000):
        if not running():
            break
        for i in range(start, min(start + 1000, lines + 1)):
            print(f"{i:08d} {pad}")
        printed = min(start + 999, lines)
    return printed


@job(title="Progress bar")
def progress(
    running: Running,
    steps: Annotated[int, Range(1, 100_000), "steps of the bar"] = 50,
    delay: Annotated[float, Range(0, 10), "seconds per step"] = 0.1,
) -> None:
    """Show a tqdm progress bar (tqdm writes `\\r` updates to stderr)."""
    from tqdm import tqdm

    for _ in tqdm(range(steps), file=sys.stderr, mininterval=0.05, ascii=True):
        if not running():
            break
        time.sleep(delay)
    print("Done.")


@job(title="Fail")
def fail(running: Running, message: str = "this job fails on purpose") -> None:
    """Raise an exception after a line of output: shows how a failed run looks."""
    print("About to fail…")
    raise RuntimeError(message)


@job(title="Greet")
def greet(running: Running) -> str | None:
    """Ask for your name (type it in the input line under the output), then greet you."""
    try:
        name = input("Your name: ")
    except EOFError:  # end-of-file, or Stop while it waited
        print("No name given.")
        return None
    print(f"Hello, {name}!")
    return name
