"""Keep freed CPU memory in the process for reuse, so that training on a CPU does not page-fault its tensors in anew
at every step.

glibc's `malloc` (Linux) serves every block above its mmap threshold (128 KB to 32 MB, adapted as it runs) with a
fresh `mmap` and gives it back to the kernel when it is freed. A pre-training step at the default size allocates and
frees activations of up to 200 MB dozens of times, and the kernel zero-fills every page of each anew on first touch:
on a 2-core EPYC that took a third of the step (1.1 -> 2.0 sequences/s with memory retained, benchmarks/README.md).
Served from the heap and not trimmed, freed blocks are reused as they are. The numbers computed are the same; the
process keeps its peak memory until it exits (it needs it again at the next step anyway). `python -m training`
calls `retain_freed_memory()` on the CPU; the benchmarks time every implementation with it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# mallopt(3) parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


@functools.cache
def retain_freed_memory() -> bool:
    """Ask glibc's malloc to serve large blocks from its heap and never to return freed memory to the kernel.

    Returns whether that was done: False on other C libraries and systems (musl, macOS, Windows), where nothing is
    changed. Applies to the whole process, from the call on; calling it again does nothing more.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success, 0 on error; the largest trim threshold an int holds means "never trim".
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
