"""Input on the thread runner: a job reads what its user types with ``input()``,
``sys.stdin`` or ``getpass``; the run record says when it waits and for what; the
typed text is in the output as the ``stdin`` stream (``***`` for a secret)."""

from __future__ import annotations

import getpass
import io
import sys
import threading

import pytest

from flask_realtime.core.capture.streams import _StdinProxy
from flask_realtime.core.jobs import Running, job
from flask_realtime.core.output import render_text
from flask_realtime.core.runs import Run, RunState
from flask_realtime.core.service import InputError, RunNotFoundError
from tests.conftest import wait_for

from .conftest import Core


def waiting(core: Core, run_id: str) -> Run:
    """The run once its record says it waits for input."""
    return wait_for(lambda: (r := core.store.get_run(run_id)) and r.waiting_input and r, 10)


def test_input_shows_its_prompt_while_it_waits_and_gets_the_line(core: Core) -> None:
    @job(registry=core.registry)
    def greet(running: Running) -> str:
        name = input("Your name: ")
        print(f"Hello, {name}!")
        return name

    run = core.service.start("alice", "greet")
    assert waiting(core, run.id).waiting_input == {"prompt": "Your name: ", "secret": False}
    core.service.send_input("alice", run.id, "Ada\n")
    done = core.finished(run.id)
    assert done.state is RunState.SUCCEEDED and done.result == "Ada"
    assert done.waiting_input is None
    lines = [line for line in core.store.read_output(run.id, 0).lines if line[0] != "system"]
    # as a terminal shows it (the prompt may have been published as a partial line,
    # which the typed line then ends)
    assert "".join(render_text(lines)) == "Your name: \nAda\nHello, Ada!\n"
    assert [(s, t) for s, t, _ in lines if t] == [
        ("stdout", "Your name: "), ("stdin", "Ada"), ("stdout", "Hello, Ada!")]


def test_a_prompt_published_as_a_partial_line_is_ended_by_the_typed_line(core: Core) -> None:
    @job(registry=core.registry)
    def greet(running: Running) -> None:
        name = input("Your name: ")
        print(f"Hello, {name}!")

    run = core.service.start("alice", "greet")
    waiting(core, run.id)
    wait_for(lambda: core.store.read_output(run.id, 0).lines == [
        ("stdout", "Your name: ", "")], 10)  # published after PARTIAL_FLUSH_SECONDS
    core.service.send_input("alice", run.id, "Ada\n")
    core.finished(run.id)
    assert core.store.read_output(run.id, 0).lines[1:] == [
        ("stdout", "", "\n"), ("stdin", "Ada", "\n"), ("stdout", "Hello, Ada!", "\n")]


def test_the_record_stops_showing_the_wait_once_the_line_came(core: Core) -> None:
    got = threading.Event()
    go_on = threading.Event()

    @job(registry=core.registry)
    def ask(running: Running) -> None:
        input("? ")
        got.set()
        go_on.wait(10)

    run = core.service.start("alice", "ask")
    waiting(core, run.id)
    core.service.send_input("alice", run.id, "x\n")
    assert got.wait(10)
    assert wait_for(lambda: core.store.get_run(run.id).waiting_input is None, 10)
    go_on.set()
    core.finished(run.id)


def test_sys_stdin_reads_lines_until_end_of_file(core: Core) -> None:
    @job(registry=core.registry)
    def total(running: Running) -> int:
        first = sys.stdin.readline()
        rest = [line for line in sys.stdin]
        return int(first) + sum(int(line) for line in rest)

    run = core.service.start("alice", "total")
    for text in ("1\n", "2\n3\n", "4"):  # pieces need not be lines
        core.service.send_input("alice", run.id, text)
    core.service.send_input("alice", run.id, None, eof=True)
    done = core.finished(run.id)
    assert done.result == 10
    assert "End of input (end-of-file)." in core.texts(run.id, "system")


def test_input_typed_ahead_is_read_without_a_wait(core: Core) -> None:
    release = threading.Event()
    seen: list[Run] = []

    @job(registry=core.registry)
    def later(running: Running) -> str:
        release.wait(10)
        return input("name? ")

    core.service.subscribe(seen.append)
    run = core.service.start("alice", "later")
    core.service.send_input("alice", run.id, "early\n")
    release.set()
    assert core.finished(run.id).result == "early"
    assert not any(r.waiting_input for r in seen)


def test_getpass_is_masked_in_the_output_and_marked_secret(core: Core) -> None:
    @job(registry=core.registry)
    def login(running: Running) -> int:
        secret = getpass.getpass("Password: ")
        return len(secret)

    run = core.service.start("alice", "login")
    assert waiting(core, run.id).waiting_input == {"prompt": "Password: ", "secret": True}
    core.service.send_input("alice", run.id, "hunter2\n")
    assert core.finished(run.id).result == 7
    everything = core.texts(run.id)
    assert core.texts(run.id, "stdin") == ["***"]
    assert not any("hunter2" in text for text in everything)


def test_input_at_end_of_file_raises_eoferror_in_the_job(core: Core) -> None:
    @job(registry=core.registry)
    def ask(running: Running) -> str:
        try:
            return input("name? ")
        except EOFError:
            return "no name"

    run = core.service.start("alice", "ask")
    waiting(core, run.id)
    core.service.send_input("alice", run.id, None, eof=True)
    assert core.finished(run.id).result == "no name"


def test_stop_ends_a_wait_for_input_as_end_of_file(core: Core) -> None:
    @job(registry=core.registry)
    def stuck(running: Running) -> None:
        input("never answered: ")

    run = core.service.start("alice", "stuck")
    waiting(core, run.id)
    core.service.stop("alice", run.id)
    done = core.finished(run.id)
    assert done.state is RunState.FAILED and done.error.startswith("EOFError")
    assert done.waiting_input is None


def test_threads_of_the_job_read_the_same_input(core: Core) -> None:
    @job(registry=core.registry)
    def helper(running: Running) -> str:
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(sys.stdin.readline()))
        reader.start()
        reader.join(10)
        return out[0]

    run = core.service.start("alice", "helper")
    waiting(core, run.id)
    core.service.send_input("alice", run.id, "from a thread\n")
    assert core.finished(run.id).result == "from a thread\n"


def test_each_run_reads_its_own_input(core: Core) -> None:
    @job(registry=core.registry)
    def echo(running: Running) -> str:
        return input()

    one = core.service.start("alice", "echo")
    two = core.service.start("bob", "echo")
    waiting(core, one.id)
    waiting(core, two.id)
    core.service.send_input("bob", two.id, "bob's\n")
    core.service.send_input("alice", one.id, "alice's\n")
    assert core.finished(one.id).result == "alice's"
    assert core.finished(two.id).result == "bob's"


def test_sending_is_for_the_owner_of_a_going_run_within_the_limits(core: Core) -> None:
    @job(registry=core.registry)
    def ask(running: Running) -> str:
        return input()

    run = core.service.start("alice", "ask")
    with pytest.raises(RunNotFoundError):
        core.service.send_input("mallory", run.id, "x\n")
    with pytest.raises(InputError, match="INPUT_MAX_BYTES"):
        core.service.send_input("alice", run.id, "x" * (core.service.input_max_bytes + 1))
    with pytest.raises(InputError, match="text to type"):
        core.service.send_input("alice", run.id, {"not": "text"})
    with pytest.raises(InputError, match="text to type"):
        core.service.send_input("alice", run.id, "")
    core.service.send_input("alice", run.id, "ok\n")
    core.finished(run.id)
    with pytest.raises(InputError, match="has ended"):
        core.service.send_input("alice", run.id, "late\n")


def test_input_after_end_of_file_is_refused(core: Core) -> None:
    @job(registry=core.registry)
    def ask(running: Running) -> str:
        return sys.stdin.read()

    run = core.service.start("alice", "ask")
    core.service.send_input("alice", run.id, None, eof=True)
    with pytest.raises(InputError, match="end-of-file was sent"):
        core.service.send_input("alice", run.id, "more\n")
    core.finished(run.id)


def test_threads_of_no_run_read_the_real_stdin() -> None:
    proxy = _StdinProxy(io.StringIO("the server's own line\n"))
    assert proxy.readline() == "the server's own line\n"


def test_a_child_process_of_a_job_never_reads_the_servers_stdin(core: Core) -> None:
    import os
    import subprocess

    @job(registry=core.registry)
    def child(running: Running) -> str:
        done = subprocess.run([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"],
                              stdout=subprocess.PIPE, text=True, timeout=30)
        return done.stdout.strip()

    read_end, write_end = os.pipe()  # the server's fd 0, with something on it
    os.write(write_end, b"the server's terminal\n")
    os.close(write_end)
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        run = core.service.start("alice", "child")
        assert core.finished(run.id).result == "''"  # end-of-file, not the server's text
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read_end)


def test_stdin_buffer_in_a_job_is_the_runs_input_as_bytes(core: Core) -> None:
    @job(registry=core.registry)
    def raw(running: Running) -> str:
        return sys.stdin.buffer.readline().decode()

    run = core.service.start("alice", "raw")
    waiting(core, run.id)
    core.service.send_input("alice", run.id, "é bytes\n")
    assert core.finished(run.id).result == "é bytes\n"


def test_a_prompt_printed_without_a_newline_is_the_prompt_shown(core: Core) -> None:
    @job(registry=core.registry)
    def asks(running: Running) -> str:
        print("Colour?", end=" ", flush=True)
        return sys.stdin.readline().strip()

    run = core.service.start("alice", "asks")
    assert waiting(core, run.id).waiting_input == {"prompt": "Colour? ", "secret": False}
    core.service.send_input("alice", run.id, "blue\n")
    assert core.finished(run.id).result == "blue"


def test_input_left_unread_is_dropped_when_the_run_ends(core: Core) -> None:
    release = threading.Event()

    @job(registry=core.registry)
    def ignores(running: Running) -> None:
        release.wait(10)

    run = core.service.start("alice", "ignores")
    core.service.send_input("alice", run.id, "a password nobody read\n")
    release.set()
    core.finished(run.id)
    assert core.store.take_input(run.id, 0) is None
    assert core.store.send_input(run.id, "late\n") == "closed"
