"""A job's process does not outlive the server: killed with ``kill -9``, the server
leaves no job process behind (each sees its control connection close and ends its
group)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from tests.conftest import wait_for
from tests.processes import ROOT

SERVER = textwrap.dedent("""
    import time
    from flask_realtime.core.system import build, isolating_runner
    from flask_realtime.store.memory import MemoryStore
    from tests.process import jobs_for_process
    system = build({}, store=MemoryStore(), registry=jobs_for_process.registry,
                   runner=isolating_runner)
    run = system.service.start("u", "tells_its_pid")
    while not (lines := system.store.read_output(run.id, 0).lines):
        time.sleep(0.01)
    print(lines[0][1], flush=True)
    time.sleep(600)
""")


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for a parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_server_leaves_no_job_process_behind() -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        job_pid = int(server.stdout.readline())
        assert alive(job_pid)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        wait_for(lambda: not alive(job_pid), timeout=10)
    finally:
        server.kill()
