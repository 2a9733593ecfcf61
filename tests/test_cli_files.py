"""``flask-realtime exec`` and files (issue 20): a file parameter's value is a local
file's path, read and given to the job as the page's upload would be; ``--files DIR``
writes the files the run kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.jobs_for_files import PNG
from tests.processes import ROOT
from tests.test_cli import cli


def test_exec_uploads_a_local_file_for_a_file_parameter(tmp_path: Path) -> None:
    env = {**os.environ, "FLASK_REALTIME_INSTANCE_PATH": str(tmp_path / "instance"),
           "FLASK_REALTIME_WEBEX_ENV_FILE": '""', "PYTHONPATH": str(ROOT),
           "FLASK_REALTIME_JOBS": "tests.jobs_for_files"}
    data = tmp_path / "rows.txt"
    data.write_text("a\nb\n")
    done = cli(env, "exec", "--json", "file_lines", f"data={data}")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["result"] == {"filename": "rows.txt", "lines": 2, "path_name": "data"}
    missing = cli(env, "exec", "file_lines", f"data={tmp_path / 'nope.txt'}")
    assert missing.returncode == 2 and "cannot read that file" in missing.stderr


def test_exec_writes_the_files_a_run_keeps_with_files(tmp_path: Path) -> None:
    env = {**os.environ, "FLASK_REALTIME_INSTANCE_PATH": str(tmp_path / "instance"),
           "FLASK_REALTIME_WEBEX_ENV_FILE": '""', "PYTHONPATH": str(ROOT),
           "FLASK_REALTIME_JOBS": "tests.jobs_for_files"}
    told = cli(env, "exec", "make_files")
    assert told.returncode == 0, told.stderr
    assert ("The run kept 3 file(s) (chart.png, drawing.svg, report.csv): give --files DIR "
            "to write them there.") in told.stderr
    out = tmp_path / "out"
    done = cli(env, "exec", "make_files", "--files", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["chart.png", "drawing.svg", "report.csv"]
    assert (out / "chart.png").read_bytes() == PNG
