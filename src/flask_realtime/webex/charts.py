"""``space_stats``'s charts: messages per space and activity over time, as PNG pictures.

Drawn with matplotlib when it is installed (``pip install 'flask-realtime[charts]'``);
it is an optional extra, never a dependency of the core, and without it the job
says so in one line (:data:`NEEDS_EXTRA`) and returns its table as before. Only
matplotlib's object-oriented API is used (``matplotlib.figure.Figure``, no pyplot): no
global state, so runs in several threads draw at once safely.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from ..core.files import Picture

#: The line a run prints when matplotlib is not installed.
NEEDS_EXTRA = ("Charts need the charts extra (matplotlib): pip install "
               "'flask-realtime[charts]'; the table below has the same figures.")
#: Spaces in the bar chart: the ones with the most messages.
TOP_SPACES = 20
#: Longest space title on the bar chart's axis.
LABEL_CHARS = 32
#: Past this many days, the timeline counts messages per month instead of per day.
DAILY_UP_TO_DAYS = 180


def available() -> bool:
    """Whether matplotlib can be imported (the ``charts`` extra is installed)."""
    return importlib.util.find_spec("matplotlib") is not None


def _label(row: Mapping[str, Any]) -> str:
    title = row.get("title") or f"(untitled {row.get('type') or 'space'})"
    text = "".join(c for c in str(title) if c.isprintable())
    if len(text) > LABEL_CHARS:
        text = text[:LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")  # a $ would start matplotlib's mathtext


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def messages_per_space(rows: Iterable[Mapping[str, Any]]) -> Picture | None:
    """A horizontal bar chart of the :data:`TOP_SPACES` spaces with the most messages
    (None when no space has any)."""
    counted = [r for r in rows if r.get("messages")]
    top = sorted(counted, key=lambda r: r["messages"], reverse=True)[:TOP_SPACES]
    if not top:
        return None
    figure = _figure(8, 1.2 + 0.32 * len(top))
    axes = figure.subplots()
    labels = [_label(r) for r in reversed(top)]
    axes.barh(range(len(top)), [r["messages"] for r in reversed(top)], color="#2563eb")
    axes.set_yticks(range(len(top)), labels)
    axes.set_xlabel("messages")
    shown = f"the {len(top)} largest of {len(counted)}" if len(counted) > len(top) else (
        f"{len(top)}")
    axes.set_title(f"Messages per space ({shown} spaces with messages)")
    return _draw(figure, "messages-per-space.png")


def activity(days: Mapping[str, int]) -> Picture | None:
    """A timeline of messages per day (per month past :data:`DAILY_UP_TO_DAYS` days),
    from ``days`` ("YYYY-MM-DD" -> messages); None when there are none."""
    dated: Counter[date] = Counter()
    for day, n in days.items():
        try:
            dated[date.fromisoformat(day)] += n
        except ValueError:  # a message without a usable time
            continue
    if not dated:
        return None
    first, last = min(dated), max(dated)
    monthly = (last - first).days > DAILY_UP_TO_DAYS
    if monthly:
        months: Counter[date] = Counter()
        for when, n in dated.items():
            months[when.replace(day=1)] += n
        dated = months
    figure = _figure(8, 3)
    axes = figure.subplots()
    ordered = sorted(dated)
    axes.bar(ordered, [dated[d] for d in ordered], width=20 if monthly else 0.9,
             color="#16a34a")
    axes.set_ylabel("messages per month" if monthly else "messages per day")
    axes.set_title(f"Activity, {first.isoformat()} to {last.isoformat()}")
    figure.autofmt_xdate()
    return _draw(figure, "activity.png")


def _draw(figure: Any, name: str) -> Picture:
    with warnings.catch_warnings():  # a title in a script the font lacks: drawn as boxes
        warnings.simplefilter("ignore", UserWarning)
        return Picture(figure, name=name)
