"""Per-stage timers and the statistics reported in summaries and benchmarks."""

from __future__ import annotations

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


class StageTimer:
    """Collects (seconds, frames) samples; thread-safe."""

    def __init__(self, name: str):
        self.name = name
        self._samples: list[float] = []
        self._frames = 0
        self._lock = threading.Lock()

    def add(self, seconds: float, frames: int = 1) -> None:
        with self._lock:
            self._samples.append(seconds)
            self._frames += frames

    def stats(self) -> LatencyStats:
        with self._lock:
            samples = np.asarray(self._samples, np.float64)
            frames = self._frames
        if samples.size == 0:
            return LatencyStats(0, 0, 0.0, 0.0, 0.0, 0.0)
        ms = samples * 1e3
        return LatencyStats(
            int(samples.size), frames, float(samples.sum()),
            float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean()),
        )
