"""Per-stream state of a running pipeline: where a stream comes from, how it is decoded, and
its live counters (state, frames, drops, reconnects, latency) for status lines and metrics."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from ..config import LiveConfig, SourceConfig
from ..sources import FrameSource, SourceInfo
from ..sources.uri import SourceURI
from .timing import StageTimer

RECENT_S = 5.0  # how far back the per-stream frame rate looks


STREAM_LATENCY_SAMPLES = 300
"""A stream's p50/p99 latency (status, metrics, stats) is over its last 300 frames: 10 s at 30 fps,
so that it tells the latency now, not since the start (the run's own end-to-end timer keeps 10,000)."""


@dataclass
class StreamState:
    """One stream. ``state`` is ``starting``, ``connecting``, ``running``, ``reconnecting``,
    ``ended``, ``failed`` or ``removed``."""

    id: str
    uri: SourceURI
    config: SourceConfig
    info: SourceInfo
    decoder: str  # "cpu", "dali-gpu", "gstreamer" or "nvdec" (live; a connection may fall back to "cpu")
    live: bool
    drop_stale: bool
    chunk: int  # frames handed over at once
    source: Optional[FrameSource] = None  # CPU and NVDEC decode; None where the GPU stage opens the file
    state: str = "starting"
    frames: int = 0
    dropped: int = 0
    last_frame_at: Optional[float] = None  # time.time()
    error: Optional[str] = None
    exception: Optional[BaseException] = None
    expected_frames: Optional[int] = None
    expected_estimated: bool = False  # expected_frames is a guess: never a reason to count frames as bad
    stages: list = field(default_factory=list)
    control: Any = None
    engine: Optional[int] = None  # which engine group serves it, once launched
    latency: StageTimer = field(default_factory=lambda: StageTimer("end_to_end", STREAM_LATENCY_SAMPLES))
    _recent: deque = field(default_factory=deque, repr=False)  # monotonic times of the last RECENT_S
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def display(self) -> str:
        return self.uri.display

    def count_dropped(self, frames: int) -> None:
        with self._lock:
            self.dropped += frames

    def frame_done(self, latency_s: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames += 1
            self._recent.append(now)
            while self._recent[0] < now - RECENT_S:
                self._recent.popleft()
        self.last_frame_at = time.time()
        self.latency.add(latency_s)

    def recent_fps(self, window_s: float = RECENT_S) -> float:
        """Frames per second that reached the sinks over the last ``window_s`` (at most ``RECENT_S``)."""
        since = time.monotonic() - window_s
        with self._lock:
            return sum(1 for t in self._recent if t >= since) / window_s

    def status(self, latency: bool = True) -> dict:
        """A JSON-ready snapshot (credentials never included); ``latency`` adds the percentiles,
        which cost a sort of the recent samples."""
        counters = self.source.status() if self.source is not None else {}
        lat = self.latency.stats() if latency else None
        out = {
            "id": self.id, "uri": self.display, "state": counters.get("state", self.state),
            "decoder": counters.get("decoder", self.decoder) if self.decoder == "nvdec" else self.decoder,
            "live": self.live, "frames": self.frames, "dropped": self.dropped,
            "reconnects": counters.get("reconnects", 0),
            "frames_lost": counters.get("frames_lost", 0),
            "last_frame_age_s": None if self.last_frame_at is None else round(time.time() - self.last_frame_at, 3),
            "latency_ms": {"p50": round(lat.p50_ms, 2), "p99": round(lat.p99_ms, 2)} if lat and lat.count else None,
        }
        if self.engine is not None:
            out["engine"] = self.engine
        if self.state in ("ended", "failed", "removed"):
            out["state"] = self.state
        if self.error or counters.get("error"):
            out["error"] = self.error or counters.get("error")
        out["bad_frames"] = self.source.stats.bad_frames if self.source is not None else 0
        return out


def drop_stale_for(live: bool, cfg: LiveConfig) -> bool:
    """Whether a stream drops stale frames under the configured policy."""
    return live if cfg.drop_stale == "auto" else bool(cfg.drop_stale)
