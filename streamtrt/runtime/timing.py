"""Per-stage timers and the statistics reported in summaries and benchmarks."""

from __future__ import annotations

import bisect
import itertools
import threading
from dataclasses import dataclass

import numpy as np


@dataclass
class LatencyStats:
    count: int
    frames: int
    total_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def ms_per_frame(self) -> float:
        return 1e3 * self.total_s / self.frames if self.frames else 0.0

    def as_dict(self) -> dict:
        return {
            "batches": self.count, "frames": self.frames, "busy_s": round(self.total_s, 4),
            "p50_ms": round(self.p50_ms, 3), "p99_ms": round(self.p99_ms, 3),
            "mean_ms": round(self.mean_ms, 3), "ms_per_frame": round(self.ms_per_frame, 3),
        }


HISTOGRAM_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_RECENT = 10_000  # samples kept for percentiles


class StageTimer:
    """Counts, totals, a fixed-bucket histogram and the most recent ``capacity`` samples; thread-safe.

    The recent samples live in a ring of float64 allocated (and written) up front, so a timer's
    memory is the same at its first sample and after a month: a deque of Python floats grew by
    ~32 bytes a sample until it was full, which on a 5 fps stream took more than half an hour and
    read as a leak on soak runs."""

    def __init__(self, name: str, capacity: int = _RECENT):
        self.name = name
        self._recent = np.full(max(1, capacity), np.nan, np.float64)
        self._count = 0
        self._total = 0.0
        self._frames = 0
        self.buckets = [0] * (len(HISTOGRAM_BUCKETS_S) + 1)
        self._lock = threading.Lock()

    def add(self, seconds: float, frames: int = 1) -> None:
        with self._lock:
            self._recent[self._count % len(self._recent)] = seconds
            self._count += 1
            self._total += seconds
            self._frames += frames
            self.buckets[bisect.bisect_left(HISTOGRAM_BUCKETS_S, seconds)] += 1

    def samples(self) -> np.ndarray:
        """A copy of the recent samples (seconds), in no particular order."""
        with self._lock:
            return self._recent[:min(self._count, len(self._recent))].copy()

    def histogram(self) -> tuple[list[int], int, float]:
        """(cumulative counts per bucket incl. +Inf, count, sum) for a Prometheus histogram."""
        with self._lock:
            return list(itertools.accumulate(self.buckets)), self._count, self._total

    def stats(self) -> LatencyStats:
        """Totals over the whole run; percentiles over the most recent samples."""
        with self._lock:
            recent = self._recent[:min(self._count, len(self._recent))].copy()
            count, total, frames = self._count, self._total, self._frames
        if count == 0:
            return LatencyStats(0, 0, 0.0, 0.0, 0.0, 0.0)
        ms = recent * 1e3
        return LatencyStats(count, frames, total, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)),
                            1e3 * total / count)


def merge_timers(timers: list[StageTimer]) -> list[StageTimer]:
    """One timer per name, in first-seen order: the per-stream timers of a stage kind combined
    (the merged timer holds every recent sample of its parts)."""
    groups: dict[str, list[StageTimer]] = {}
    for t in timers:
        groups.setdefault(t.name, []).append(t)
    out = []
    for name, group in groups.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        parts = [t.samples() for t in group]
        merged = StageTimer(name, capacity=sum(len(p) for p in parts))
        if parts:
            merged._recent[:] = np.concatenate(parts) if sum(len(p) for p in parts) else np.nan
        for t in group:
            with t._lock:
                merged._count += t._count
                merged._total += t._total
                merged._frames += t._frames
                merged.buckets = [a + b for a, b in zip(merged.buckets, t.buckets)]
        out.append(merged)
    return out
