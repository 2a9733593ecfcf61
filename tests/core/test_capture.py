"""What a run prints goes to that run only: its threads, pools and tasks included."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from flask_realtime.core.capture import CapturePump
from flask_realtime.core.capture import buffer as buffer_module
from flask_realtime.core.jobs import Running, job
from tests.conftest import wait_for

from .conftest import Core

SHARED_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2)


def register_printer(core: Core) -> None:
    @job(registry=core.registry)
    def printer(running: Running, tag: str = "a", n: int = 200) -> None:
        def thread_body() -> None:
            for i in range(n):
                print(f"{tag} thread {i}")

        thread = threading.Thread(target=thread_body)
        thread.start()
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda i: print(f"{tag} pool {i}"), range(n)))
        list(SHARED_POOL.map(lambda i: print(f"{tag} shared {i}"), range(n)))
        for i in range(n):
            print(f"{tag} main {i}")
            print(f"{tag} err {i}", file=sys.stderr)
            logging.getLogger("jobs.printer").info("%s log %d", tag, i)
        thread.join()


def test_two_runs_printing_at_once_never_mix(core: Core, capsys: object) -> None:
    register_printer(core)
    a = core.service.start("u", "printer", {"tag": "a"})
    b = core.service.start("u", "printer", {"tag": "b"})
    print("server says hello")  # the server's own output stays the server's
    for run, tag in ((a, "a"), (b, "b")):
        assert core.finished(run.id).state == "succeeded"
        texts = core.texts(run.id, "stdout") + core.texts(run.id, "stderr")
        assert all(t.startswith(f"{tag} ") for t in texts), [t for t in texts if t[0] != tag][:5]
        for kind in ("thread", "pool", "shared", "main", "err"):
            assert sorted(t for t in texts if f" {kind} " in t) == sorted(
                f"{tag} {kind} {i}" for i in range(200)), kind
        assert core.texts(run.id, "stderr") == [f"{tag} err {i}" for i in range(200)]
        assert core.texts(run.id, "log") == [
            f"INFO jobs.printer: {tag} log {i}" for i in range(200)]
        assert "server says hello" not in texts


def test_async_tasks_to_thread_and_executor_belong_to_the_run(core: Core) -> None:
    @job(registry=core.registry)
    async def asyncer(running: Running) -> None:
        loop = asyncio.get_running_loop()

        async def task(i: int) -> None:
            print(f"task {i}")

        await asyncio.gather(*(task(i) for i in range(3)))
        await asyncio.to_thread(print, "to_thread")
        await loop.run_in_executor(None, print, "run_in_executor")

    run = core.service.start("u", "asyncer")
    assert core.finished(run.id).state == "succeeded"
    assert sorted(core.texts(run.id)) == ["run_in_executor", "task 0", "task 1", "task 2",
                                          "to_thread"]


def test_bytes_and_undecodable_output(core: Core) -> None:
    @job(registry=core.registry)
    def raw(running: Running) -> None:
        sys.stdout.buffer.write(b"caf\xc3")  # a UTF-8 character split across writes
        sys.stdout.buffer.write(b"\xa9 \xff\xfe ok\n")

    run = core.service.start("u", "raw")
    core.finished(run.id)
    assert core.texts(run.id) == ["caf\u00e9 \ufffd\ufffd ok"]


def test_a_partial_line_is_published_after_a_short_delay(core: Core) -> None:
    release = threading.Event()

    @job(registry=core.registry)
    def prompt(running: Running) -> None:
        print("Working", end="", flush=True)
        release.wait(10)
        print("... done")

    run = core.service.start("u", "prompt")
    wait_for(lambda: core.texts(run.id) == ["Working"])
    release.set()
    core.finished(run.id)
    piece = core.store.read_output(run.id, 0)
    assert [(text, end) for _stream, text, end in piece.lines] == [("Working", ""),
                                                              ("... done", "\n")]


def test_retention_keeps_the_newest_lines_and_counts_the_rest(core: Core) -> None:
    core.store.retention_lines = 1000

    @job(registry=core.registry)
    def many(running: Running) -> None:
        for i in range(1, 5001):
            print(i)

    run = core.service.start("u", "many")
    core.finished(run.id)
    piece = core.store.read_output(run.id, 0, max_lines=5000, max_chars=10**6)
    assert piece.skipped == 4000 and piece.first_seq == 4001
    assert [text for _stream, text, _end in piece.lines] == [str(i) for i in range(4001, 5001)]


def test_sys_stdout_in_a_run_behaves_like_a_text_stream(core: Core) -> None:
    @job(registry=core.registry)
    def stream(running: Running) -> None:
        print(sys.stdout.write("abc\n"))  # the count of characters, as io.TextIOBase says
        sys.stdout.writelines(["x\n", "y\n"])
        try:
            sys.stdout.write(b"bytes")  # type: ignore[arg-type]
        except TypeError as exc:
            print("TypeError:", exc)
        sys.stdout.close()  # cannot close the server's stdout
        print(isinstance(sys.stdout, io.TextIOBase), sys.stdout.closed, sys.stdout.isatty())

    run = core.service.start("u", "stream")
    assert core.finished(run.id).state == "succeeded"
    assert core.texts(run.id) == ["abc", "4", "x", "y",
                                  "TypeError: write() argument must be str, not bytes",
                                  "True False False"]
    assert not sys.stdout.closed


def test_a_pool_thread_prints_for_whoever_submits_its_next_work(
        core: Core, capsys: pytest.CaptureFixture[str]) -> None:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # one thread for everything

    @job(registry=core.registry)
    def submitter(running: Running, tag: str = "a") -> None:
        pool.submit(print, f"{tag} from the pool").result()

    a = core.service.start("u", "submitter", {"tag": "a"})
    core.finished(a.id)
    pool.submit(print, "the server's own line").result()
    b = core.service.start("u", "submitter", {"tag": "b"})
    core.finished(b.id)
    pool.shutdown()
    assert core.texts(a.id) == ["a from the pool"]
    assert core.texts(b.id) == ["b from the pool"]
    assert "the server's own line" in capsys.readouterr().out


def test_a_flooding_run_gives_way_while_other_runs_share_the_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once per batch, not per write; and only while another run is open."""
    pauses: list[float] = []
    real_sleep = buffer_module.time.sleep

    class Clock:  # the buffer module's clock, with this thread's sleeps recorded
        monotonic, time = staticmethod(time.monotonic), staticmethod(time.time)

        @staticmethod
        def sleep(seconds: float) -> None:
            if threading.current_thread() is threading.main_thread():
                pauses.append(seconds)
            real_sleep(seconds)

    monkeypatch.setattr(buffer_module, "time", Clock)
    pump = CapturePump(lambda run_id, lines, epoch_ms, **_: None, give_way=0.001)
    contention: list[bool] = []
    pump.on_contention = contention.append
    quiet, flood = pump.open("quiet"), pump.open("flood")

    def print_until(condition: Callable[[], bool]) -> None:
        previous = pump.attach(flood)
        try:
            wait_for(lambda: [print("x" * 60) for _ in range(2000)] and condition())
        finally:
            pump.detach(previous)

    print_until(lambda: flood.give_way == 0.001 and contention[-1:] == [True])
    # Told on each change only. Between two batches of prints the flood may be quiet
    # for a round on a busy machine (False, then True again).
    assert quiet.give_way == 0 and contention[0] is True
    assert all(told != then for told, then in itertools.pairwise(contention))
    pauses.clear()
    print_until(lambda: len(pauses) >= 3)  # about one per batch of thousands of prints
    assert set(pauses) == {0.001}
    # What is told after the quiet run closed is all that is certain.
    pump.close(quiet)
    told = len(contention)
    print_until(lambda: flood.give_way == 0)  # alone in the process: full speed
    assert contention[0] is True and contention[-1] is False
    assert True not in contention[told:]
    pump.close(flood)


CHILD = [sys.executable, "-c",
         "import sys; print('child out', sys.argv[1]); print('child err', sys.argv[1], "
         "file=sys.stderr)"]


def test_child_processes_write_to_their_own_run_in_order(
        core: Core, capfd: pytest.CaptureFixture[str]) -> None:
    @job(registry=core.registry)
    def shell(running: Running, tag: str = "a") -> str:
        print(f"{tag} before")
        subprocess.run([*CHILD, tag], check=True)
        print(f"{tag} between")
        with subprocess.Popen([*CHILD, tag]):
            pass  # leaving the block waits for the child
        kept = subprocess.run([*CHILD, tag], capture_output=True, text=True).stdout
        print(f"{tag} after")
        return kept

    runs = {tag: core.service.start("u", "shell", {"tag": tag}) for tag in ("a", "b")}
    subprocess.run([*CHILD, "server"], check=True)  # not in a run: the server's own
    for tag, run in runs.items():
        assert core.finished(run.id).state == "succeeded"
        assert core.texts(run.id, "stdout") == [
            f"{tag} before", f"child out {tag}", f"{tag} between", f"child out {tag}",
            f"{tag} after"]
        assert core.texts(run.id, "stderr") == [f"child err {tag}"] * 2
        # capture_output=True: the job reads the output itself, as before
        assert core.store.get_run(run.id).result == f"child out {tag}\n"  # type: ignore[union-attr]
    terminal = capfd.readouterr()
    assert "child out server" in terminal.out and "child err server" in terminal.err
    assert "child out a" not in terminal.out + terminal.err
    assert "child out b" not in terminal.out + terminal.err


def test_a_child_that_cannot_start_leaves_no_pipe_open(core: Core) -> None:
    @job(registry=core.registry)
    def missing(running: Running) -> None:
        subprocess.run(["/nonexistent/program"])

    before = len(os.listdir("/proc/self/fd"))
    run = core.service.start("u", "missing")
    assert core.finished(run.id).state == "failed"
    assert "FileNotFoundError" in "\n".join(core.texts(run.id, "stderr"))
    assert len(os.listdir("/proc/self/fd")) <= before
