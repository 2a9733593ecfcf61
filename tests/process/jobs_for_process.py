"""Jobs the process runner's tests run, at module level: a process job's function is
found again in its process by module and name."""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import sys
import time

from flask_realtime.core.files import ArtifactError, Picture, Upload
from flask_realtime.core.jobs import JobRegistry, RunContext, Running, job

#: The tests' registry (tests/process/conftest.py builds the core on it).
registry = JobRegistry()
log = logging.getLogger("tests.process.jobs")


@job(registry=registry, isolation="process")
def everything_writes(running: Running) -> dict[str, object]:
    """Python, the shell, C and a grandchild write to fds 1 and 2, in order."""
    print("from print")
    os.system("echo from os.system")
    ctypes.CDLL(None).write(1, b"from C\n", 7)
    subprocess.run(["sh", "-c", "echo from a grandchild; echo grandchild error >&2"],
                   check=True)
    print("to stderr", file=sys.stderr)
    log.info("a log record")
    return {"pid": os.getpid(), "rows": [1, 2, 3]}


@job(registry=registry, isolation="process")
def raises(running: Running) -> None:
    """Fails with a traceback."""
    print("before the error")
    raise ValueError("bad value")


@job(registry=registry, isolation="process")
def obeys_stop(running: Running) -> str:
    """Waits for Stop, then returns."""
    print("waiting", flush=True)
    while running():
        time.sleep(0.01)
    print("saw the stop")
    return "stopped politely"


@job(registry=registry, isolation="process")
def ignores_stop(running: Running) -> None:
    """Never looks at running()."""
    print("busy", flush=True)
    while True:
        time.sleep(0.01)


@job(registry=registry, isolation="process")
def ignores_sigterm(running: Running) -> None:
    """Ignores running() and SIGTERM too: only SIGKILL ends it."""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("stubborn", flush=True)
    while True:
        time.sleep(0.01)


@job(registry=registry, isolation="process")
def segfaults(running: Running) -> None:
    """Reads address 0."""
    print("about to crash", flush=True)
    ctypes.string_at(0)


@job(registry=registry, isolation="process")
def exits(running: Running, status: int = 3) -> None:
    """Leaves the process at once, no outcome sent."""
    print("leaving", flush=True)
    os._exit(status)


@job(registry=registry, isolation="process", memory_mb=200)
def eats_memory(running: Running) -> None:
    """Asks for more than its memory limit."""
    print("eating", flush=True)
    hoard = bytearray(400 * 1024 * 1024)
    print("never here", len(hoard))


@job(registry=registry, isolation="process", cpu_seconds=1)
def spins(running: Running) -> None:
    """Burns CPU past its limit (and ignores running())."""
    print("spinning", flush=True)
    while True:
        pass


@job(registry=registry, isolation="process", timeout=0.5)
def overstays(running: Running) -> None:
    """Runs past its timeout, ignoring running()."""
    print("overstaying", flush=True)
    while True:
        time.sleep(0.01)


@job(registry=registry, isolation="process", output_bytes=10_000)
def floods(running: Running) -> None:
    """Writes past its output limit, from the shell."""
    os.system("yes 0123456789 | head -c 1000000")
    print("done flooding")


@job(registry=registry, isolation="thread", timeout=0.5)
def thread_overstays(running: Running) -> str:
    """A thread job past its timeout: it sees running() turn False."""
    while running():
        time.sleep(0.01)
    return "noticed"


@job(registry=registry, isolation="process")
def uses_webex(running: Running, context: RunContext) -> str:
    """Asks its Webex service for a token twice, the second time forcing a renewal."""
    import asyncio

    webex = context.services["webex"]

    async def tokens() -> list[str]:
        return [await webex._current_token(), await webex.token_provider(True)]

    first, renewed = asyncio.run(tokens())
    print("first token", first)
    print("renewed token", renewed)
    return "ok"


@job(registry=registry)
def default_isolation(running: Running) -> int:
    """Runs wherever the server's ISOLATION says."""
    os.system("echo from the shell")
    return os.getpid()


@job(registry=registry, isolation="process")
async def async_in_process(running: Running) -> str:
    """An async job in its own process."""
    import asyncio
    print("async start")
    await asyncio.sleep(0)
    return "async done"


@job(registry=registry, isolation="process")
def environment(running: Running) -> list[str]:
    """The names of its environment variables."""
    return sorted(os.environ)


@job(registry=registry, isolation="process")
def tells_its_pid(running: Running) -> None:
    """Prints its pid, then ignores running() and SIGTERM."""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(os.getpid(), flush=True)
    while True:
        time.sleep(0.01)


@job(registry=registry, isolation="process")
def floods_then_shells(running: Running, lines: int = 20_000) -> None:
    """A flood (batched writes), then a command, then a line, then C."""
    for i in range(lines):
        print(i)
    os.system("echo after the flood")
    print("then python")
    sys.stdout.flush()
    ctypes.CDLL(None).write(1, b"then C\n", 7)
    print("err", file=sys.stderr)


@job(registry=registry, isolation="process")
def timed_flood(running: Running, lines: int = 500_000) -> float:
    """Prints ``lines`` lines; returns how long its own printing took (s)."""
    pad = "x" * 51
    started = time.perf_counter()
    for i in range(lines):
        print(f"{i:08d} {pad}")
    sys.stdout.flush()
    return time.perf_counter() - started


@job(registry=registry, isolation="thread")
def in_a_thread(running: Running) -> int:
    """Chooses a thread, whatever the server's default."""
    return os.getpid()


@job(registry=registry, isolation="thread", output_bytes=10_000)
def thread_floods(running: Running) -> None:
    """A thread job writing past its output limit, until running() turns False."""
    i = 0
    while running():
        print(f"{i:09d}")
        i += 1


@job(registry=registry, isolation="process")
def asks(running: Running) -> dict[str, object]:
    """Reads a name with input(), a password with getpass, then the rest of stdin; and
    shows that fd 0 itself (C code, programs it starts) reads end-of-file."""
    import getpass

    name = input("Your name: ")
    secret = getpass.getpass("Password: ")
    rest = sys.stdin.read()
    child = subprocess.run(["cat"], capture_output=True, text=True, check=False).stdout
    print(f"Hello, {name}!")
    return {"name": name, "secret_length": len(secret), "rest": rest, "child_read": child}


#: A 1x1 PNG (its signature makes it a picture).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010804000000b51c0c02"
    "0000000b4944415478da6364600000000600023081d02f0000000049454e44ae426082")


@job(registry=registry, isolation="process")
def keeps_files(running: Running, context: RunContext) -> dict[str, object]:
    """Saves, writes and reads back artifacts from its own process."""
    context.artifacts.save("summary.txt", "3 rows\n")
    context.artifacts.save("chart.png", Picture(PNG))
    (context.artifacts.path / "raw").mkdir()
    (context.artifacts.path / "raw" / "data.csv").write_text("a,b\n1,2\n")
    return {"pid": os.getpid(), "used": context.artifacts.used,
            "read back": (context.artifacts.get("summary.txt") or b"").decode(),
            "missing": context.artifacts.get("nothing.txt")}


@job(registry=registry, isolation="process")
def reads_upload(running: Running, data: Upload) -> dict[str, object]:
    """Reads the file the user sent, in its own process."""
    return {"text": data.read_bytes().decode(), "filename": data.filename,
            "name": data.path.name, "pid": os.getpid()}


@job(registry=registry, isolation="process")
def returns_picture(running: Running) -> Picture:
    """Returns a picture: it becomes the artifact picture.png."""
    return Picture(PNG)


@job(registry=registry, isolation="process")
def fills_its_budget(running: Running, context: RunContext) -> None:
    """Saves past the run's artifact budget (set to 10 bytes by the test)."""
    context.artifacts.save("a.bin", b"x" * 6)
    try:
        context.artifacts.save("b.bin", b"x" * 6)
    except ArtifactError as exc:
        print(f"refused: {exc}")
    try:
        context.artifacts.save("../outside.txt", b"x")
    except ArtifactError as exc:
        print(f"refused: {exc}")
    (context.artifacts.path / "c.bin").write_bytes(b"x" * 5)  # collected: past it too


@job(registry=registry, isolation="process")
def points_at_secrets(running: Running, context: RunContext, secret: str = "") -> list[str]:
    """What a job's process that is out to read the server's files might try: a
    symbolic link where the parent reads an exchange file, and artifacts.path
    replaced by a link to another folder."""
    said = []
    exchange = context.artifacts.path.parent / ".exchange"
    os.symlink(secret, exchange / "7")
    try:
        context.artifacts._call("save", "stolen.txt", 7)  # type: ignore[attr-defined]
    except Exception as exc:
        said.append(f"link: {type(exc).__name__}")
    for number in ("../7", -1, True):
        try:
            context.artifacts._call("save", "stolen.txt", number)  # type: ignore[attr-defined]
        except Exception as exc:
            said.append(f"{number!r}: {exc}")
    os.rmdir(context.artifacts.path)
    os.symlink(os.path.dirname(secret), context.artifacts.path)
    return said


@job(registry=registry, isolation="thread")
def ticks(running: Running) -> None:
    """A quiet run in the server's process: a numbered line every 5 ms until stopped."""
    i = 0
    while running():
        print(i)
        i += 1
        time.sleep(0.005)
