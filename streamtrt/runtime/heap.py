"""Freed heap memory given back to the system during long runs (glibc's ``malloc_trim``).

A pipeline allocates and frees about a frame's worth of memory per frame (decoded images, model
tensors, outputs) on several threads. glibc keeps freed chunks in per-thread arenas for reuse and
gives back only the free space at the top of an arena, so pages in the middle stay resident: on a
live soak the resident size kept creeping by a few hundred bytes per frame (in steps of ~1.4 MB)
while the memory in use, measured after ``malloc_trim(0)``, stayed flat (``benchmarks/leakhunt.py``).
``malloc_trim(0)`` returns every whole free page of every arena (glibc >= 2.8, ``man 3 malloc_trim``).
It walks the free lists with each arena locked in turn (ctypes releases the GIL meanwhile): on the
busy 2-core machine 50 ms with little to give back, 0.46 s the first time on a 430 MB heap left
fragmented by six threads; so a run calls it at most once a ``TRIM_EVERY_S``, from the thread
that hands results to the sinks (the stages keep working; the results queue absorbs the pause).
Elsewhere (musl, macOS) there is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
import time
from typing import Callable, Optional

TRIM_EVERY_S = 60.0


def _malloc_trim() -> Optional[Callable[[int], int]]:
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: libc's on Linux
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class HeapTrimmer:
    """Call it often (e.g. per batch of results); it calls ``malloc_trim(0)`` when ``every_s``
    seconds have passed since the last trim (the first after ``every_s``). Returns whether it did.
    ``available`` is False where the C library has no ``malloc_trim``."""

    def __init__(self, every_s: float = TRIM_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.every_s = every_s
        self._clock = clock
        self._trim = _malloc_trim()
        self._next = clock() + every_s
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def __call__(self) -> bool:
        if self._trim is None:
            return False
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self.every_s
        self._trim(0)
        self.trims += 1
        return True
