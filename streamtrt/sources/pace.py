"""Replaying a file at its frame rate, like a camera: for tests and real-time benchmarks."""

from __future__ import annotations

import time
from typing import Iterator

from ..config import FALLBACK_FPS
from .base import Frame, FrameSource


class PacedSource(FrameSource):
    """Yields each frame of ``inner`` no earlier than its timestamp after the first frame."""

    def __init__(self, inner: FrameSource):
        self.inner = inner
        self.info = inner.info
        self.stats = inner.stats

    def __iter__(self) -> Iterator[Frame]:
        fps = self.info.fps or FALLBACK_FPS
        t0 = None
        for frame in self.inner:
            if t0 is None:
                t0 = time.monotonic()
            due = t0 + (frame.timestamp if frame.timestamp is not None else frame.index / fps)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield frame

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name):  # supervisor etc. of the wrapped source
        return getattr(self.inner, name)
