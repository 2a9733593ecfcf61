"""The thread runner: each run in a thread of this process, its output captured.

Stop is cooperative: ``running()`` turns False. An ``async def`` job runs on its own
event loop in the run's thread, and its main task is also cancelled if it is still
going ``stop_grace`` seconds after Stop. Python cannot kill a thread, so a sync job that
ignores ``running()`` stays ``stopping`` until it returns: the state says so honestly.
"""

from __future__ import annotations

import asyncio
import json
import threading
import traceback
from collections.abc import Awaitable, Mapping
from typing import Any

from .capture import CapturePump
from .jobs import JobSpec, RunContext
from .runs import Run, RunState
from .service import RunService

#: Results bigger than this are not kept (the output still has everything the job printed).
MAX_RESULT_BYTES = 4 * 1024 * 1024


def checked_result(value: Any) -> tuple[Any, bool, str | None]:
    """(result, has_result, problem): the value if it can be stored as JSON."""
    if value is None:
        return None, False, None
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError) as exc:
        return None, False, f"The job's result was not kept: it is not JSON-serialisable ({exc})."
    if len(encoded) > MAX_RESULT_BYTES:
        return None, False, (f"The job's result was not kept: it is larger than "
                             f"{MAX_RESULT_BYTES // (1024 * 1024)} MiB as JSON.")
    return value, True, None


class ThreadRunner:
    def __init__(self, service: RunService, pump: CapturePump, *, stop_grace: float = 2.0) -> None:
        self.service = service
        self.pump = pump
        self.stop_grace = stop_grace
        self._stops: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def submit(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
               context: RunContext) -> None:
        with self._lock:
            self._stops[run.id] = threading.Event()
        thread = threading.Thread(
            target=self._execute, args=(run, spec, params, context),
            name=f"flask-realtime-run-{run.id}", daemon=True)
        thread.start()

    def stop(self, run_id: str) -> None:
        with self._lock:
            event = self._stops.get(run_id)
        if event is not None and not event.is_set():
            capture = self.pump.capture_of(run_id)
            if capture is not None:
                capture.system("Stop requested.")  # before the job can see it and print
            event.set()

    def active(self) -> int:
        with self._lock:
            return len(self._stops)

    def _execute(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
                 context: RunContext) -> None:
        with self._lock:
            stop = self._stops[run.id]
        try:
            if self.service.transition(run.id, RunState.RUNNING) is None:
                return  # stopped while queued
            self._run_job(run, spec, params, context, stop)
        finally:
            with self._lock:
                self._stops.pop(run.id, None)

    def _run_job(self, run: Run, spec: JobSpec, params: Mapping[str, Any],
                 context: RunContext, stop: threading.Event) -> None:
        capture = self.pump.open(run.id)
        previous = self.pump.attach(capture)
        error: str | None = None
        stopped = False
        value: Any = None
        try:
            call = spec.bind(lambda: not stop.is_set(), params, context)
            value = asyncio.run(self._supervise(call(), stop)) if spec.is_async else call()
        except asyncio.CancelledError:
            stopped = True
        except BaseException as exc:  # the server survives whatever a job raises
            traceback.print_exc()  # into the run's stderr: this thread is captured
            error = f"{type(exc).__name__}: {exc}"[:2000]
        result, has_result, problem = checked_result(value)
        if problem:
            capture.system(problem)
        self.pump.detach(previous)
        self.pump.close(capture)  # every line is stored before the run is seen to end
        self.service.finish(run.id, error=error, stopped=stopped or stop.is_set(),
                            result=result, has_result=has_result)

    async def _supervise(self, job: Awaitable[Any], stop: threading.Event) -> Any:
        """Await the job; once Stop is older than the grace period, cancel it."""
        task = asyncio.ensure_future(job)
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.05)
            if done:
                return task.result()
            if stop.is_set():
                if deadline is None:
                    deadline = loop.time() + self.stop_grace
                elif loop.time() >= deadline and not task.cancelling():
                    task.cancel()
