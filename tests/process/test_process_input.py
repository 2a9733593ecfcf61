"""A job in its own process reads the run's input as a thread job does (docs/jobs.md,
"Input"): ``input()`` and ``getpass`` with their prompts shown while it waits, the
typed text in the ``stdin`` stream (``***`` for a password), then end-of-file; fd 0
itself, and the programs the job starts, read end-of-file."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.core.conftest import Core


def test_a_process_job_reads_the_runs_input_with_its_prompts(core: Core) -> None:
    run = core.service.start("u", "asks")
    waiting = wait_for(lambda: (r := core.store.get_run(run.id)) and r.waiting_input and r)
    assert waiting.waiting_input == {"prompt": "Your name: ", "secret": False}
    core.service.send_input("u", run.id, "Ada\n")
    waiting = wait_for(lambda: (r := core.store.get_run(run.id)) and r.waiting_input
                       and r.waiting_input["secret"] and r)
    assert waiting.waiting_input == {"prompt": "Password: ", "secret": True}
    core.service.send_input("u", run.id, "hunter2\n")
    core.service.send_input("u", run.id, "more\ntext\n")
    wait_for(lambda: (r := core.store.get_run(run.id)) and r.waiting_input)
    core.service.send_input("u", run.id, None, eof=True)
    done = core.finished(run.id)
    assert done.state == "succeeded", core.texts(run.id)
    assert done.result == {"name": "Ada", "secret_length": 7, "rest": "more\ntext\n",
                           "child_read": ""}
    assert core.texts(run.id, "stdin") == ["Ada", "***", "more", "text"]
    assert "End of input (end-of-file)." in core.texts(run.id, "system")
    assert "hunter2" not in "\n".join(core.texts(run.id))
    assert "Hello, Ada!" in core.texts(run.id, "stdout")
