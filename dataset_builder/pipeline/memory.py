"""Handing freed memory back to the operating system between units of work (files, buckets, a stage).

CPython and the tokenizer's threads free memory into glibc's arenas, which keep it: a process that once held a large
file or bucket stays that large while the next stage runs beside it (the local executor runs the single-task stages in
the main process, next to the workers of the others). `malloc_trim` returns the free pages; elsewhere this is a no-op.

A full collection walks every live object: about 80 ms once pyarrow, datatrove and a tokenizer are loaded, which
paid after every small file was half of a compile's time. So each task first freezes what it holds throughout
(`freeze_long_lived`: modules, the tokenizer, the filler pool), which takes it out of every later collection,
automatic ones included (a collection then costs about a millisecond); and the read stage releases once per
`RELEASE_EVERY_BYTES` of input (`work_done`) rather than after every file, counted across the tasks a process runs.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from functools import lru_cache

RELEASE_EVERY_BYTES = 8 << 20


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


def freeze_long_lived() -> None:
    """Call once a task has loaded what it keeps to its end. Frozen objects are still freed by reference counting
    when the task drops them; only garbage cycles among them would wait for the process to end."""
    gc.freeze()


_pending = 0


def work_done(nbytes: int, every: int = RELEASE_EVERY_BYTES) -> bool:
    """Call after each unit of work of about `nbytes`; memory is released once at least `every` bytes are done."""
    global _pending
    _pending += nbytes
    if _pending < every:
        return False
    release_memory()
    _pending = 0
    return True
