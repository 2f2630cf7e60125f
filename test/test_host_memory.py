"""host_memory.retain_freed_memory: freed blocks stay mapped, so reusing them costs no faults."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from seg_perception.host_memory import retain_freed_memory

# A 48 MB malloc is above glibc's largest mmap threshold: by default every allocation is a fresh
# mapping whose pages fault in when written (as a forward pass's activations did). The script
# prints the minor faults per cycle before and after the change.
SCRIPT = """
import ctypes, ctypes.util, resource
from seg_perception.host_memory import retain_freed_memory

libc = ctypes.CDLL(ctypes.util.find_library('c'))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
SIZE = 48 * 1024 * 1024

def faults_per_cycle(cycles=5):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(cycles):
        block = libc.malloc(SIZE)
        ctypes.memset(block, 1, SIZE)
        libc.free(block)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / cycles

before = faults_per_cycle()
applied = retain_freed_memory()
faults_per_cycle(1)  # the first cycle after the change grows the heap once
print(before, faults_per_cycle(), applied)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='mallopt settings are glibc only')
def test_freed_blocks_are_reused_without_page_faults() -> None:
    out = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    before, after, applied = float(out[0]), float(out[1]), out[2]
    assert applied == 'True'
    assert before > 10000  # 48 MB = 11,719 pages faulted in on every cycle
    assert after < 100


def test_bad_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match='trim_threshold_bytes'):
        retain_freed_memory(0)
