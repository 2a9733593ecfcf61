"""The allocator setting of server processes (flask_realtime/malloc.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from flask_realtime import malloc


def test_an_operators_malloc_environment_wins() -> None:
    assert malloc.operator_settings({"MALLOC_ARENA_MAX_": "2"})
    assert malloc.operator_settings({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"})
    assert not malloc.operator_settings({"MALLOC_LOOKS_LIKE_A_SETTING": "no", "PATH": "/bin"})
    assert malloc.tune({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False


def test_a_freed_big_buffer_goes_back_to_the_system_once_tuned() -> None:
    """Without the fixed threshold, glibc raises it on the first free of a big mapping,
    and the next buffers of that size come from the heap and stay there once freed
    (below something still in use), as a flood's do."""
    program = """
import ctypes, sys
from flask_realtime import malloc
if sys.argv[1] == "tuned":
    assert malloc.tune({})
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(4 << 20))  # one big buffer, freed: glibc would move the threshold
free_before = libc.mallinfo2().fordblks
buffers = [libc.malloc(1 << 20) for _ in range(16)]
pin = libc.malloc(1 << 20)  # still in use above them (from the top): no shrinking
for b in buffers:
    libc.free(b)
print((libc.mallinfo2().fordblks - free_before) >> 20)
"""
    grown = {mode: int(subprocess.run(
        [sys.executable, "-c", program, mode], capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}).stdout)
        for mode in ("default", "tuned")}
    assert grown["default"] >= 8  # the heap keeps the 16 MiB freed (what tune fixes)
    assert grown["tuned"] < 2
