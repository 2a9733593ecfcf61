"""Jobs that take files and make them (issue 20), for the web and browser tests
(loaded with JOBS=tests.jobs_for_files)."""

from __future__ import annotations

import base64
from typing import Any

from flask_realtime import Picture, RunContext, Running, Upload, job

#: A 2x2 red PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg==")
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>document.title="svg ran"</script><rect width="10" height="10"/></svg>')


@job(title="Count the lines of a file")
def file_lines(running: Running, data: Upload, label: str = "") -> dict[str, Any]:
    """Read the uploaded `data` and count its lines."""
    with data.open() as f:
        content = f.read()
    print(f"{label}{data.filename}: {data.size} bytes")
    return {"filename": data.filename, "lines": len(content.splitlines()),
            "path_name": data.path.name}


@job(title="Make files")
def make_files(running: Running, context: RunContext) -> None:
    """Keep a PNG chart, an SVG drawing and a CSV report as artifacts."""
    context.artifacts.save("chart.png", Picture(PNG))
    context.artifacts.save("drawing.svg", SVG)
    (context.artifacts.path / "report.csv").write_text("a,b\n1,2\n")
    print("made 3 files")


@job(title="A picture")
def a_picture(running: Running) -> Picture:
    """Return a picture: the page shows it."""
    return Picture(PNG, name="red.png")


@job(title="A table")
def a_table(running: Running, rows: int = 12) -> list[dict[str, Any]]:
    """Rows with numbers, text, formulas and gaps, to sort and download."""
    names = ["pear", "apple", "fig", "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)"]
    return [{"name": names[i % len(names)], "size": (i * 7) % 12 if i != 3 else None,
             "score": [10, 9, 100, 2.5][i % 4]} for i in range(rows)]
