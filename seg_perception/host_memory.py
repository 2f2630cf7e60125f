"""Keep freed host memory mapped, so CPU inference does not page-fault its activations back in.

glibc gives large freed blocks back to the kernel: blocks above its (dynamic, at most 32 MiB)
mmap threshold are unmapped on free, and free memory at the top of the heap is trimmed. A CPU
forward pass of the default model allocates and frees ~10 MB of activations, so each frame
page-faulted ~2,600 fresh pages back in: about 3-4 ms of a 16 ms forward on the 2-core VM, and
how many depended on the allocator's threshold history, which made the same network drift
between 15 and 20 ms per frame. Serving the allocations from the heap and not trimming it keeps
those pages resident after the first frames (the memory held is the peak of one forward pass).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

# mallopt parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

DEFAULT_TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024

_lock = threading.Lock()
_applied: bool | None = None


def retain_freed_memory(trim_threshold_bytes: int = DEFAULT_TRIM_THRESHOLD_BYTES) -> bool:
    """Serve large allocations from the heap and keep up to `trim_threshold_bytes` free in it.

    Process-wide and idempotent (the first call decides). Returns True when glibc took the
    settings, False on other C libraries (musl, macOS), where nothing changes.
    """
    global _applied
    if trim_threshold_bytes <= 0:
        raise ValueError(f'trim_threshold_bytes must be > 0, got {trim_threshold_bytes}')
    with _lock:
        if _applied is None:
            _applied = _mallopt(M_MMAP_MAX, 0) and _mallopt(M_TRIM_THRESHOLD,
                                                            trim_threshold_bytes)
        return _applied


def _mallopt(param: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(param, min(value, 2**31 - 1)) == 1
