"""``flask-realtime exec`` forwards this terminal's stdin to the job: a line each time
the job asks, end-of-file at Ctrl-D or the end of piped input; on a terminal a
password is read without echo and what was typed is not printed twice."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import cli, env  # noqa: F401 (fixture)

SECRET_JOB = '''
import getpass
from flask_realtime import Running, job

@job
def secret(running: Running) -> int:
    word = getpass.getpass("Password: ")
    print(f"{len(word)} characters")
    return len(word)
'''


def test_piped_input_reaches_the_job(env: dict[str, str]) -> None:  # noqa: F811
    done = subprocess.run([sys.executable, "-m", "flask_realtime.cli", "exec", "greet"],
                          env=env, input="Ada\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == ["Your name: ", "Ada", "Hello, Ada!"]


def test_no_input_is_end_of_file(env: dict[str, str]) -> None:  # noqa: F811
    done = subprocess.run([sys.executable, "-m", "flask_realtime.cli", "exec", "greet"],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "No name given." in done.stdout


def read_until(fd: int, wanted: bytes, timeout: float = 30) -> bytes:
    """What the terminal shows until ``wanted`` appears (poll with a deadline)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{wanted!r} did not appear; the terminal showed {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.parametrize("job", ["greet", "secret"])
def test_a_terminal_types_into_the_job(env: dict[str, str], tmp_path: Path,  # noqa: F811
                                       job: str) -> None:
    (tmp_path / "secretjobs.py").write_text(SECRET_JOB)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_realtime.cli", "exec", job],
        env={**env, "FLASK_REALTIME_JOBS": str(tmp_path / "secretjobs.py")},
        stdin=follower, stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    try:
        prompt = b"Your name: " if job == "greet" else b"Password: "
        read_until(leader, prompt)
        os.write(leader, b"hunter2\n")
        shown = read_until(leader, b"Hello, hunter2!" if job == "greet" else b"7 characters")
        assert process.wait(30) == 0
        if job == "greet":
            # the terminal's echo, then the greeting: no second copy, no blank line
            assert shown.startswith(b"hunter2\r\nHello, hunter2!\r\n")
        else:
            assert b"hunter2" not in shown and b"***" not in shown  # no echo at all
    finally:
        process.kill()
        os.close(leader)
