"""Replaying a file at its frame rate, like a camera: for tests and real-time benchmarks.

One pacing rule (:class:`Pacer`) for the CPU path (:class:`PacedSource`) and the GPU decode stage:
frame ``i`` is due at its timestamp after the first frame came out (``index / fps`` where it has
no timestamp; :data:`~streamtrt.config.FALLBACK_FPS` where the rate is unknown)."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator, Optional

from ..config import FALLBACK_FPS
from .base import Frame, FrameSource, SourceInfo, SourceStats


class Pacer:
    """When each frame is due, on the :func:`time.perf_counter` clock.

    The first call of :meth:`due` (or :meth:`start`) fixes the start; ``due(index, timestamp)``
    is then ``start + timestamp`` (``start + index / fps`` without a timestamp)."""

    def __init__(self, fps: Optional[float]):
        self.fps = fps or FALLBACK_FPS
        self.t0: Optional[float] = None

    def start(self, at: Optional[float] = None) -> None:
        """Fix the start (now unless ``at``), once; later calls change nothing."""
        if self.t0 is None:
            self.t0 = time.perf_counter() if at is None else at

    def due(self, index: int, timestamp: Optional[float]) -> float:
        """The ``perf_counter()`` time frame ``index`` is due (seconds)."""
        self.start()
        return self.t0 + (timestamp if timestamp is not None else index / self.fps)

    @staticmethod
    def wait_until(due: float, stop: Optional[threading.Event] = None) -> bool:
        """Sleep until ``due``; ``True`` if ``stop`` was set while waiting (the wait then ends
        early). A frame already due does not wait, whatever ``stop`` says."""
        delay = due - time.perf_counter()
        if delay <= 0:
            return False
        if stop is None:
            time.sleep(delay)
            return False
        return stop.wait(delay)


class PacedSource(FrameSource):
    """Yields each frame of ``inner`` no earlier than its :class:`Pacer` time. Everything else
    (info, counters, supervision, stop events) is the wrapped source's."""

    def __init__(self, inner: FrameSource):
        self.inner = inner

    @property
    def info(self) -> SourceInfo:  # type: ignore[override]
        return self.inner.info

    @property
    def stats(self) -> SourceStats:  # type: ignore[override]
        return self.inner.stats

    @property
    def live(self) -> bool:  # type: ignore[override]
        return self.inner.live

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.inner.kind

    def __iter__(self) -> Iterator[Frame]:
        pacer = Pacer(self.info.fps)
        for frame in self.inner:
            Pacer.wait_until(pacer.due(frame.index, frame.timestamp))
            yield frame

    def bind_stop(self, *events: Any) -> None:
        self.inner.bind_stop(*events)

    def status(self) -> dict:
        return self.inner.status()

    def close(self) -> None:
        self.inner.close()
