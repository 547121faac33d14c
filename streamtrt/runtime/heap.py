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

Before the trim, a full collection of Python's cyclic garbage (``gc.collect()``, every platform).
CPython collects its oldest generation only when the objects promoted there since the last full
collection reach a quarter of those already there, so on a 120,000-object heap garbage that
reached it waited more than five minutes in a soak, and the heap grows to hold the most that ever
waited.
DALI (2.4) makes such garbage on every run: ``Pipeline.run()`` defines a new class
(``_check_api_type_scope``'s ``api_checker``) four times a call, and each class is a reference
cycle; the ones alive while another thread's allocations trigger a young collection (DALI runs
with the GIL released) are promoted. A soak counted up to 73 of them waiting at once (608 objects;
``benchmarks/heapprobe.py --garbage``). streamtrt's own DALI pipelines no longer make them
(:func:`streamtrt.preprocess.dali._pipeline_class`); the collection stays for any other library's
cycles. It took 58 ms on the busy 2-core machine, so it too runs once a ``TRIM_EVERY_S``.
"""

from __future__ import annotations

import ctypes
import gc
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
    """Call it often (e.g. per batch of results); when ``every_s`` seconds have passed since the
    last time (the first after ``every_s``) it runs a full garbage collection, then
    ``malloc_trim(0)``. Returns whether it did. ``available`` is False where the C library has no
    ``malloc_trim`` (the collection still runs); ``collected`` counts the objects it freed."""

    def __init__(self, every_s: float = TRIM_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.every_s = every_s
        self._clock = clock
        self._trim = _malloc_trim()
        self._next = clock() + every_s
        self.trims = 0
        self.collected = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def __call__(self) -> bool:
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self.every_s
        self.collected += gc.collect()  # cyclic garbage of the oldest generation too (see above)
        if self._trim is not None:
            self._trim(0)
        self.trims += 1
        return True
