"""``flask-realtime exec`` with a file parameter (issue 20): the value is a local file's
path, read and given to the job as the page's upload would be."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
