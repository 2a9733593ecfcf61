"""Collapsible groups in a run's output: ``with group("Fetching rooms"):``.

A group is two marker lines in the output, the convention GitHub Actions uses:
``::group::<title>`` opens one and ``::endgroup::`` closes the innermost one open.
Nothing else stores them: a command job that prints the same lines gets the same
groups, the plain-text log keeps them as written, and the page folds what lies
between, with the time between the two lines (docs/ui.md, "Groups").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["GROUP_END", "GROUP_FAILED", "GROUP_START", "group"]

GROUP_START = "::group::"
GROUP_END = "::endgroup::"
#: What follows ``::endgroup::`` when the block raised: the page shows that group open.
GROUP_FAILED = "failed"


@contextmanager
def group(title: str) -> Iterator[None]:
    """Fold what the block prints under ``title`` on the page, with how long it took.

    Prints ``::group::<title>`` before the block and ``::endgroup::`` after it, on
    stdout, so the lines land in order with the block's own prints. A block that
    raises an :class:`Exception` ends with ``::endgroup::failed`` instead (the
    exception goes on): the page opens that group. Groups nest. The title is made
    one line (newlines and runs of whitespace become one space).
    """
    text = " ".join(str(title).split()) or "Group"
    print(f"{GROUP_START}{text}", flush=True)
    failed = False
    try:
        yield
    except Exception:
        failed = True
        raise
    finally:
        print(GROUP_END + (GROUP_FAILED if failed else ""), flush=True)
