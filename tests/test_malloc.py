"""The allocator setting of server processes (flask_realtime/malloc.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from flask_realtime import malloc
from flask_realtime.assembly import build
from flask_realtime.core.runs import RunState
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for


class FakeLibc:
    """glibc's ``mallopt`` and ``malloc_trim``, counted."""

    def __init__(self) -> None:
        self.trims = 0
        self.mallopts: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.mallopts.append((param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        assert pad == 0
        self.trims += 1
        return 1


class FakeService:
    def __init__(self) -> None:
        self.listeners: list[Callable[[Any], None]] = []

    def subscribe(self, listener: Callable[[Any], None]) -> None:
        self.listeners.append(listener)


#: What :func:`malloc.tune` sets: both thresholds fixed (glibc moves neither then).
TUNED = [(malloc.M_MMAP_THRESHOLD, malloc.RUN_MMAP_THRESHOLD),
         (malloc.M_TRIM_THRESHOLD, malloc.TRIM_THRESHOLD)]


def run_in(state: RunState) -> Any:
    return SimpleNamespace(state=state)


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    """A fake glibc that :func:`malloc.tune` finds (and, after the test, forgets)."""
    fake = FakeLibc()
    monkeypatch.setattr(malloc, "glibc", lambda: fake)
    monkeypatch.setattr(malloc, "_libc", None)
    return fake


def trim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "flask-realtime-malloc-trim"]


def test_an_operators_malloc_environment_wins(libc: FakeLibc) -> None:
    assert malloc.operator_settings({"MALLOC_ARENA_MAX_": "2"})
    assert malloc.operator_settings({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"})
    assert not malloc.operator_settings({"MALLOC_LOOKS_LIKE_A_SETTING": "no", "PATH": "/bin"})
    assert malloc.tune({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
    service = FakeService()
    assert malloc.watch(service) is None  # no trim either, no threshold
    assert malloc.watch(FakeService(), runs_end_here=False) is None
    assert service.listeners == [] and libc.mallopts == [] and libc.trims == 0


def test_nothing_is_done_on_another_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc, "glibc", lambda: None)
    monkeypatch.setattr(malloc, "_libc", None)
    assert malloc.tune({}) is False
    service = FakeService()
    assert malloc.watch(service) is None and service.listeners == []


def test_the_heap_is_trimmed_once_after_a_run_ends_not_while_it_runs(libc: FakeLibc) -> None:
    assert malloc.tune({})
    assert libc.mallopts == TUNED  # no longer moving: big buffers from the heaps
    service = FakeService()
    trimmer = malloc.watch(service)
    assert trimmer is not None and service.listeners == [trimmer.run_changed]
    for state in (RunState.QUEUED, RunState.RUNNING, RunState.STOPPING):
        service.listeners[0](run_in(state))
    assert libc.trims == 0 and not trim_threads()
    service.listeners[0](run_in(RunState.SUCCEEDED))
    wait_for(lambda: libc.trims == 1 and not trim_threads())
    assert libc.trims == 1


def test_runs_ending_during_a_trim_make_one_more_trim_not_one_each() -> None:
    release = threading.Event()
    calls: list[int] = []

    def trim() -> None:
        calls.append(1)
        release.wait(10)

    trimmer = malloc.Trimmer(trim, gap=0)
    trimmer.request()
    wait_for(lambda: calls)
    for _ in range(5):
        trimmer.run_changed(run_in(RunState.FAILED))
    release.set()
    wait_for(lambda: not trim_threads())
    assert len(calls) == 2


def test_a_trim_that_fails_is_logged_and_the_next_run_trims_again(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def trim() -> None:
        calls.append(1)
        raise OSError("no")

    trimmer = malloc.Trimmer(trim, gap=0)
    trimmer.request()
    wait_for(lambda: calls and not trim_threads())
    trimmer.request()
    wait_for(lambda: len(calls) == 2 and not trim_threads())
    assert "malloc_trim failed" in caplog.text


def test_a_process_whose_runs_end_elsewhere_gets_the_fixed_threshold(libc: FakeLibc) -> None:
    assert malloc.tune({})
    service = FakeService()
    assert malloc.watch(service, runs_end_here=False) is None
    assert libc.mallopts == [*TUNED, (malloc.M_MMAP_THRESHOLD, malloc.MMAP_THRESHOLD)]
    assert service.listeners == []


def test_the_assembly_trims_after_each_run_of_its_core_once_tuned(libc: FakeLibc) -> None:
    assert malloc.tune({})
    system = build({"JOBS": "", "STOP_GRACE_SECONDS": 0.3}, store=MemoryStore()).start()
    try:
        run = system.service.start("alice", "flood", {"lines": 10})
        wait_for(lambda: (r := system.store.get_run(run.id)) and r.state.finished)
        wait_for(lambda: libc.trims == 1 and not trim_threads())
    finally:
        system.close()
    assert libc.trims == 1 and libc.mallopts == TUNED


def test_with_rq_a_web_process_fixes_the_threshold_and_a_worker_trims(libc: FakeLibc) -> None:
    assert malloc.tune({})
    web = FakeService()
    worker = FakeService()
    # as assembly.build decides: RUNNER=rq ends runs on the workers, which say so
    malloc.watch(web, runs_end_here=False)
    malloc.watch(worker, runs_end_here=True)
    assert web.listeners == [] and len(worker.listeners) == 1
    assert libc.mallopts == [*TUNED, (malloc.M_MMAP_THRESHOLD, malloc.MMAP_THRESHOLD)]


PROBE = """
import ctypes, sys, threading
from types import SimpleNamespace
from flask_realtime import malloc
from flask_realtime.core.runs import RunState
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 >> 20
def touched(size):
    buffer = libc.malloc(size)
    ctypes.memset(buffer, 1, size)  # in RSS
    return buffer
listeners = []
service = SimpleNamespace(subscribe=listeners.append)
if sys.argv[1] != "default":
    assert malloc.tune({})
    malloc.watch(service, runs_end_here=sys.argv[1] == "trim")
libc.free(libc.malloc(4 << 20))  # one big buffer, freed: glibc moves the thresholds
free_before = libc.mallinfo2().fordblks
buffers = [touched(1 << 20) for _ in range(16)]
pin = libc.malloc(1 << 20)
for b in buffers:
    libc.free(b)
kept = (libc.mallinfo2().fordblks - free_before) >> 20
before = rss()
for listener in listeners:  # a run ends
    listener(SimpleNamespace(state=RunState.SUCCEEDED))
for t in threading.enumerate():
    if t.name == "flask-realtime-malloc-trim":
        t.join(10)
given_back = before - rss()
print(kept, given_back)
"""


def test_the_freed_heap_goes_back_to_the_system_after_a_run_or_is_never_kept() -> None:
    """Without tuning, glibc raises its threshold on the first free of a big mapping:
    the next buffers of that size come from the heap and stay there once freed, below
    something still in use, as a flood's do. Tuned, buffers of that size still come
    from the heap (the 4 MiB threshold), and are given back when a run ends (the
    trim); with the threshold of a process whose runs end elsewhere, never kept."""
    result = {mode: [int(n) for n in subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    ).stdout.split()] for mode in ("default", "trim", "fixed")}
    kept, given_back = result["default"]
    assert kept >= 8 and given_back < 2  # the heap keeps the 16 MiB freed
    kept, given_back = result["trim"]
    assert kept >= 8 and given_back >= 8  # kept at first, then given back by the trim
    kept, _ = result["fixed"]
    assert kept < 2  # mappings of their own, unmapped on free
