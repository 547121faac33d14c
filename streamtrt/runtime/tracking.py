"""Tracking plus analytics for one stream, in frame order (it joins :mod:`streamtrt.track` and
:mod:`streamtrt.analytics`, so it lives above both)."""

from __future__ import annotations

from typing import Optional

from ..analytics import StreamAnalytics
from ..analytics.events import Event
from ..config import FALLBACK_FPS, AnalyticsConfig, TrackerConfig
from ..postprocess.detections import Detections
from ..track.bytetrack import ByteTracker


class StreamTracking:
    def __init__(self, tracker: TrackerConfig, analytics: AnalyticsConfig, output_threshold: float,
                 fps: Optional[float]):
        self.tracker = ByteTracker(tracker, output_threshold, fps or FALLBACK_FPS)
        self.analytics = StreamAnalytics(analytics, fps)

    def update(self, dets: Detections, meta) -> tuple[Detections, list[Event]]:
        tracked = self.tracker.update(dets)
        live = self.tracker.live_ids()
        return tracked, self.analytics.update(tracked, meta.stream_id, meta.index, meta.timestamp, live)

    def summary(self) -> dict:
        return self.analytics.summary()
