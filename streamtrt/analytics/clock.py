"""Monotonic stream time for durations (dwell): never backwards, even when a source's clock resets."""

from __future__ import annotations

from typing import Optional

from ..config import FALLBACK_FPS


class StreamClock:
    """Turns per-frame timestamps into a monotonic time line for durations.

    Timestamps come from the container (or ``index / fps``). A source whose clock restarts (MPEG-TS
    files joined with ``cat``, a camera that reboots, a wrapped PTS) gives a timestamp below the last
    one; from then on the clock adds an offset so that time keeps rising by one frame step (``1 / fps``,
    or the last positive step seen when the rate is unknown). Without timestamps, ``frame / fps`` (:data:`~streamtrt.config.FALLBACK_FPS` when unknown).
    The sources make timestamps monotonic too; this guard keeps analytics safe on its own.
    """

    def __init__(self, fps: Optional[float]):
        self.fps = fps if fps and fps > 0 else None
        self.offset = 0.0
        self.last_raw: Optional[float] = None
        self.last: Optional[float] = None
        self.step = 1.0 / self.fps if self.fps else 0.0
        self.resets = 0

    def __call__(self, frame: int, ts: Optional[float]) -> float:
        """Seconds on the monotonic time line for this frame (call once per frame, in order)."""
        raw = ts if ts is not None else frame / (self.fps or FALLBACK_FPS)
        if self.fps is None and self.last_raw is not None and raw > self.last_raw:
            self.step = raw - self.last_raw
        now = raw + self.offset
        if self.last is not None and now < self.last:
            self.resets += 1
            self.offset = self.last + self.step - raw
            now = raw + self.offset
        self.last_raw, self.last = raw, now
        return now
