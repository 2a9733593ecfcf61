"""Command jobs: any executable as a job. Each parameter is exactly one argv element
(never a shell); the exit status decides the outcome; stdout and stderr are the run's;
Stop ends the process group (SIGTERM, then SIGKILL after the grace period); only the
allow-listed environment reaches the child; stdin is the run's input when asked for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from flask_realtime import Param, command_job
from flask_realtime.config import ConfigError
from flask_realtime.core.access import JobAccess
from flask_realtime.core.commands import load_commands
from flask_realtime.core.jobs import JobError, JobRegistry, ParamError, Range
from flask_realtime.core.output import render_text
from flask_realtime.core.runs import RunState
from flask_realtime.core.system import build
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for

from .conftest import Core

#: A tiny program that prints its arguments (after the program's name) as one JSON line.
PRINT_ARGV = "import json, sys\nprint(json.dumps(sys.argv[1:]))\n"

HOSTILE = [
    "; rm -rf ~",
    "$(touch pwned)",
    "`touch pwned`",
    "first line\nsecond line",
    "-rf",
    "--help",
    "a b 'c' \"d\" \\e | f > g & h",
    "",
]


@pytest.fixture
def script(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``script(name, source)``: the path of a Python file in a folder of the test's."""
    def write(name: str, source: str) -> str:
        path = tmp_path / name
        path.write_text(source)
        return str(path)
    return write


def test_each_parameter_arrives_as_one_literal_argument(core: Core, script, tmp_path: Path
                                                        ) -> None:
    printer = script("print_argv.py", PRINT_ARGV)
    command_job("show", [sys.executable, printer, "--", "{value}"],
                params=[Param("value", "str")], cwd=str(tmp_path), registry=core.registry)
    for value in HOSTILE:
        run = core.service.start("alice", "show", {"value": value})
        assert core.finished(run.id).state is RunState.SUCCEEDED, core.texts(run.id)
        assert json.loads(core.texts(run.id, "stdout")[0]) == ["--", value]
    assert not (tmp_path / "pwned").exists()  # no shell ever ran the text


def test_the_double_dash_keeps_a_leading_dash_a_value(core: Core, script) -> None:
    parser = script("args.py", (
        "import argparse\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--force', action='store_true')\n"
        "parser.add_argument('path')\n"
        "args = parser.parse_args()\n"
        "print(f'path={args.path} force={args.force}')\n"))
    command_job("guarded", [sys.executable, parser, "--", "{path}"],
                params=[Param("path", "str")], registry=core.registry)
    run = core.service.start("alice", "guarded", {"path": "--force"})
    assert core.finished(run.id).state is RunState.SUCCEEDED
    assert core.texts(run.id, "stdout") == ["path=--force force=False"]


def test_parameters_are_typed_and_validated_as_a_python_jobs_are(core: Core, script) -> None:
    printer = script("print_argv.py", PRINT_ARGV)
    command_job("typed", [sys.executable, printer, "{n}", "{ratio}", "{fast}", "{mode}"],
                params=[Param("n", "int", default=3, range=Range(1, 10)),
                        Param("ratio", "float", default=0.5),
                        Param("fast", "bool", default=False),
                        Param("mode", "choice", default="safe", choices=("fast", "safe"))],
                registry=core.registry)
    with pytest.raises(ParamError) as refused:
        core.service.start("alice", "typed", {"n": 11, "mode": "reckless"})
    assert set(refused.value.errors) == {"n", "mode"}
    assert core.store.list_runs() == []  # nothing was started
    run = core.service.start("alice", "typed", {"n": "4", "fast": True})
    core.finished(run.id)
    assert json.loads(core.texts(run.id, "stdout")[0]) == ["4", "0.5", "true", "safe"]
    described = core.registry.get("typed").to_json()
    assert described["group"] == "user"
    assert [p["type"] for p in described["params"]] == ["int", "float", "bool", "choice"]


def test_a_placeholder_must_be_a_whole_element(core: Core) -> None:
    with pytest.raises(JobError, match="must be a whole element"):
        command_job("bad", ["/bin/echo", "--x={a}"], params=[Param("a", "str")],
                    registry=core.registry)
    with pytest.raises(JobError, match="names no parameter"):
        command_job("bad", ["/bin/echo", "{nope}"], registry=core.registry)
    with pytest.raises(JobError, match="not used in argv"):
        command_job("bad", ["/bin/echo"], params=[Param("a", "str")], registry=core.registry)
    with pytest.raises(JobError, match="the program, cannot be a parameter"):
        command_job("bad", ["{a}"], params=[Param("a", "str")], registry=core.registry)
    with pytest.raises(JobError, match="not an executable"):
        command_job("bad", ["no-such-program-here"], registry=core.registry)


def test_doubled_braces_are_literal_braces(core: Core) -> None:
    command_job("braces", ["/bin/echo", "{{a}}", "x}}y"], registry=core.registry)
    run = core.service.start("alice", "braces")
    core.finished(run.id)
    assert core.texts(run.id, "stdout") == ["{a} x}y"]


def test_stdout_and_stderr_are_the_runs_streams_line_by_line(core: Core, script) -> None:
    both = script("both.py", "import sys\nprint('out 1')\nprint('err 1', file=sys.stderr)\n"
                             "print('out 2')\n")
    command_job("both", [sys.executable, both], registry=core.registry)
    run = core.service.start("alice", "both")
    assert core.finished(run.id).state is RunState.SUCCEEDED
    assert core.texts(run.id, "stdout") == ["out 1", "out 2"]
    assert core.texts(run.id, "stderr") == ["err 1"]


def test_a_non_zero_exit_fails_the_run_with_its_status(core: Core, script) -> None:
    failing = script("fail.py", "print('about to fail')\nraise SystemExit(3)\n")
    command_job("failing", [sys.executable, failing], registry=core.registry)
    run = core.service.start("alice", "failing")
    done = core.finished(run.id)
    assert done.state is RunState.FAILED
    assert done.error == "the command exited with status 3"
    assert core.texts(run.id, "stdout") == ["about to fail"]  # the output is kept
    assert not any("Traceback" in t for t in core.texts(run.id))


def test_a_command_killed_by_a_signal_fails_saying_which(core: Core, script) -> None:
    dying = script("die.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    command_job("dying", [sys.executable, dying], registry=core.registry)
    run = core.service.start("alice", "dying")
    done = core.finished(run.id)
    assert done.state is RunState.FAILED and done.error == "the command died (SIGKILL)"


def test_stop_sends_sigterm_to_the_group(core: Core, script) -> None:
    sleeper = script("sleep.py", "import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    command_job("sleeper", [sys.executable, sleeper], registry=core.registry)
    run = core.service.start("alice", "sleeper")
    wait_for(lambda: "ready" in core.texts(run.id, "stdout"), 10)
    core.service.stop("alice", run.id)
    done = core.finished(run.id)
    assert done.state is RunState.STOPPED
    assert any("got SIGTERM at Stop and ended" in t for t in core.texts(run.id, "system"))


def test_a_command_that_ignores_sigterm_gets_sigkill_after_the_grace(core: Core, script
                                                                    ) -> None:
    stubborn = script("stubborn.py", (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        # a grandchild in the same group, also deaf to SIGTERM, holding the output pipe
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"))
    command_job("stubborn", [sys.executable, stubborn], registry=core.registry)
    run = core.service.start("alice", "stubborn")
    wait_for(lambda: "ready" in core.texts(run.id, "stdout"), 10)
    core.service.stop("alice", run.id)
    done = core.finished(run.id, timeout=20)
    assert done.state is RunState.STOPPED
    assert any("did not end within 0.15 s of SIGTERM and got SIGKILL" in t
               for t in core.texts(run.id, "system"))


def test_only_the_allow_listed_environment_reaches_the_child(
        core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FR_TEST_ALLOWED", "yes")
    monkeypatch.setenv("FR_TEST_HIDDEN", "no")
    monkeypatch.setenv("SECRET_KEY", "the server's secret")
    command_job("environment", ["/usr/bin/env"], env=["FR_TEST_ALLOWED", "FR_TEST_ABSENT"],
                registry=core.registry)
    run = core.service.start("alice", "environment")
    core.finished(run.id)
    assert core.texts(run.id, "stdout") == ["FR_TEST_ALLOWED=yes"]


def test_the_servers_settings_cannot_be_allow_listed(core: Core) -> None:
    for name in ("SECRET_KEY", "REDIS_URL", "FLASK_REALTIME_SECRET_KEY", "CLIENT_SECRET"):
        with pytest.raises(JobError, match=f"env may not pass {name}"):
            command_job("leaky", ["/usr/bin/env"], env=[name], registry=core.registry)


def test_the_command_runs_in_its_working_directory(core: Core, tmp_path: Path) -> None:
    command_job("where", ["/bin/pwd"], cwd=str(tmp_path), registry=core.registry)
    run = core.service.start("alice", "where")
    core.finished(run.id)
    assert core.texts(run.id, "stdout") == [str(tmp_path.resolve())]


def test_a_command_reads_the_runs_input_when_it_asks_for_stdin(core: Core) -> None:
    command_job("copy", ["/bin/cat"], stdin=True, registry=core.registry)
    run = core.service.start("alice", "copy")
    wait_for(lambda: core.store.get_run(run.id).waiting_input, 10)
    core.service.send_input("alice", run.id, "hello\n")
    wait_for(lambda: "hello" in core.texts(run.id, "stdout"), 10)
    core.service.send_input("alice", run.id, None, eof=True)
    done = core.finished(run.id)
    assert done.state is RunState.SUCCEEDED and done.waiting_input is None
    assert core.texts(run.id, "stdin") == ["hello"]


def test_without_stdin_a_command_reads_end_of_file(core: Core) -> None:
    command_job("copy_nothing", ["/bin/cat"], registry=core.registry)
    run = core.service.start("alice", "copy_nothing")
    assert core.finished(run.id).state is RunState.SUCCEEDED
    assert core.texts(run.id, "stdout") == []


# -- jobs files ------------------------------------------------------------------------

def jobs_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.toml"
    path.write_text(text)
    return path


def test_a_jobs_file_offers_its_commands(tmp_path: Path, script) -> None:
    printer = script("print_argv.py", PRINT_ARGV)
    path = jobs_file(tmp_path, f'''
[jobs.archive]
title = "Archive a folder"
description = "Pack one folder."
argv = [{json.dumps(sys.executable)}, {json.dumps(printer)},
        "--level", "{{level}}", "--", "{{folder}}"]
cwd = "."
env = ["LANG"]

[jobs.archive.params.folder]
type = "str"
help = "The folder to pack"

[jobs.archive.params.level]
type = "int"
default = 6
min = 1
max = 9
''')
    system = build({"COMMANDS": str(path)}, store=MemoryStore(), registry=JobRegistry())
    with system:
        spec = system.registry.get("archive")
        assert spec.title == "Archive a folder" and spec.description == "Pack one folder."
        assert [p.to_json() for p in spec.params] == [
            {"name": "folder", "type": "str", "required": True, "help": "The folder to pack"},
            {"name": "level", "type": "int", "required": False, "default": 6,
             "min": 1, "max": 9}]
        run = system.service.start("alice", "archive", {"folder": "$(reboot)"})
        done = wait_for(lambda: (r := system.store.get_run(run.id)) and r.state.finished
                        and r, 10)
        assert done.state is RunState.SUCCEEDED
        line = system.store.read_output(run.id, 0).lines[0][1]
        assert json.loads(line) == ["--level", "6", "--", "$(reboot)"]


@pytest.mark.parametrize(("text", "sentence"), [
    ('[jobs.a]\nargv = ["/bin/echo", "--x={v}"]\n[jobs.a.params.v]\ntype = "str"\n',
     r"line 2, key jobs\.a\.argv: argv element '--x=\{v\}' puts a placeholder"),
    ('[jobs.a]\nargv = ["/bin/echo"]\ncmd = "oops"\n',
     r"line 3, key jobs\.a\.cmd: jobs\.a has no key 'cmd'"),
    ('[jobs.a]\nargv = ["/bin/echo", "{n}"]\n\n[jobs.a.params.n]\ntype = "int"\n'
     'default = "many"\n', r"line 6, key jobs\.a\.params\.n\.default: .* must be an integer"),
    ('[jobs.a]\nargv = ["/bin/echo", "{n}"]\n[jobs.a.params.n]\ntype = "list"\n',
     r"line 4, key jobs\.a\.params\.n\.type: .* one of str, int, float, bool, choice"),
    ('[jobs.a]\nargv = ["/usr/bin/env"]\nenv = ["HOME", "SECRET_KEY"]\n',
     r"line 3, key jobs\.a\.env: env may not pass SECRET_KEY"),
    ('[jobs.a]\nargv = ["/bin/pwd"]\ncwd = "no/such/folder"\n',
     r"line 3, key jobs\.a\.cwd: cwd 'no/such/folder' is not a folder"),
    ('[jobs.a]\ntitle = "no argv"\n', r"line 1, key jobs\.a: jobs\.a needs argv"),
    ('[jobs.a\nargv = []\n', r"not valid TOML \(.*line 1"),
    ('title = "x"\n', r"line 1, key title: a jobs file holds \[jobs\.NAME\] tables only"),
])
def test_a_bad_jobs_file_is_refused_naming_file_line_and_key(
        tmp_path: Path, text: str, sentence: str) -> None:
    path = jobs_file(tmp_path, text)
    with pytest.raises(ConfigError, match=sentence) as refused:
        load_commands(path, JobRegistry())
    message = str(refused.value)
    assert message.startswith(str(path)) and message.endswith(".")
    assert "\n" not in message


def test_a_missing_jobs_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"COMMANDS names .*cannot be read"):
        build({"COMMANDS": str(tmp_path / "absent.toml")}, store=MemoryStore(),
              registry=JobRegistry())


def test_a_command_job_in_a_jobs_module_is_found_like_a_job(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    module = tmp_path / "commandjobs_for_test.py"
    module.write_text("from flask_realtime import command_job\n"
                      "listing = command_job('listing', ['/bin/ls', '-1'])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = JobRegistry()
    registry.load_modules(str(module))
    assert registry.get("listing").to_json()["group"] == "user"


def test_a_parameter_cannot_be_named_running(core: Core) -> None:
    with pytest.raises(JobError, match="not running"):
        command_job("bad", ["/bin/echo", "{running}"], params=[Param("running", "str")],
                    registry=core.registry)


def test_a_commands_prompt_is_shown_while_it_waits(core: Core, script) -> None:
    asker = script("ask.py", "import sys\nsys.stderr.write('Name: ')\nsys.stderr.flush()\n"
                             "print(f'Hi {sys.stdin.readline().strip()}')\n")
    command_job("asker", [sys.executable, asker], stdin=True, registry=core.registry)
    run = core.service.start("alice", "asker")
    wait_for(lambda: (core.store.get_run(run.id).waiting_input or {}).get("prompt")
             == "Name: ", 10)
    core.service.send_input("alice", run.id, "Ada\n")
    assert core.finished(run.id).state is RunState.SUCCEEDED
    lines = [line for line in core.store.read_output(run.id, 0).lines if line[0] != "system"]
    # as a terminal shows it: the typed line ends the prompt's line
    assert "".join(render_text(lines)) == "Name: \nAda\nHi Ada\n"
    assert [s for s, _t, _e in lines if _t] == ["stderr", "stdin", "stdout"]


def test_a_jobs_file_rules_who_may_run_a_command(tmp_path: Path) -> None:
    path = jobs_file(tmp_path, '[jobs.wipe]\nargv = ["/bin/true"]\n'
                               'allowed = ["ops@example.com", "@admins.example.com"]\n')
    system = build({"COMMANDS": str(path)}, store=MemoryStore(), registry=JobRegistry())
    with system:
        system.service.access = JobAccess({})  # as the web tier sets it (docs/access.md)
        assert system.registry.get("wipe").allowed == ("ops@example.com",
                                                       "@admins.example.com")
        assert [s.name for s in system.service.jobs_for("ops@example.com")] == ["wipe"]
        assert "wipe" not in [s.name for s in system.service.jobs_for("eve@example.com")]
    with pytest.raises(ConfigError, match=r"line 3, key jobs\.a\.allowed: .*allowed must "
                                          r"be a list"):
        load_commands(jobs_file(tmp_path, '[jobs.a]\nargv = ["/bin/true"]\n'
                                          'allowed = "ops"\n'), JobRegistry())


def test_a_file_parameter_arrives_as_the_path_of_the_runs_copy(tmp_path: Path,
                                                               script) -> None:
    from flask_realtime.core.files import IncomingFile

    reader = script("cat.py", "import sys\nprint(open(sys.argv[1]).read().strip())\n")
    path = jobs_file(tmp_path, f'[jobs.show]\nargv = [{json.dumps(sys.executable)}, '
                               f'{json.dumps(reader)}, "{{data}}"]\n'
                               '[jobs.show.params.data]\ntype = "file"\n'
                               '[jobs.show.params.key]\ntype = "str"\nsecret = true\n'
                               'default = "k"\n')
    with pytest.raises(ConfigError, match=r"parameter 'key' is not used in argv"):
        load_commands(path, JobRegistry())
    path.write_text(path.read_text().replace('"{data}"]', '"{data}", "{key}"]'))
    system = build({"COMMANDS": str(path)}, store=MemoryStore(), registry=JobRegistry())
    with system:
        spec = system.registry.get("show")
        assert spec.file_params == ("data",) and spec.params[1].secret
        run = system.service.start("alice", "show", {},
                                   files={"data": IncomingFile("../../etc/x", b"uploaded\n")})
        done = wait_for(lambda: (r := system.store.get_run(run.id)) and r.state.finished
                        and r, 10)
        assert done.state is RunState.SUCCEEDED, done.error
        lines = [t for s, t, _ in system.store.read_output(run.id, 0).lines if s == "stdout"]
        assert lines == ["uploaded"]
