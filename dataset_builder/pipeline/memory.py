"""Handing freed memory back to the operating system between units of work (a file, a bucket, a stage).

CPython and the tokenizer's threads free memory into glibc's arenas, which keep it: a process that once held a large
file or bucket stays that large while the next stage runs beside it (the local executor runs the single-task stages in
the main process, next to the workers of the others). `malloc_trim` returns the free pages; elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None
    except OSError:
        return None


def release_memory() -> None:
    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
