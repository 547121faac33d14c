"""Line crossing counts and polygon zones over tracked detections, per stream.

Box jitter is not movement. A detector's box wobbles by a pixel or two from frame to frame even on
an object that never moves, so an anchor that sits on a line or on a zone edge flips sides at
random: counting every flip counted a still person 19 times. Both counters therefore use
hysteresis with a margin band: an object changes side (or enters/exits a zone) only once its anchor
is more than ``margin`` pixels past the boundary; inside the band it keeps its last side. The margin
is ``margin_px``, else ``margin_ratio`` (default 0.1) x the box height, since jitter grows with the
box. This is the distance form of supervision's ``LineZone(minimum_crossing_threshold=N)`` (a side
must be held for N frames), chosen because it does not delay counts by N frames nor depend on the
frame rate, and a slow walker who hesitates on the line still counts once. The lessons of
supervision's issues are kept: a flicker to the far side and back never counts in either direction
(roboflow/supervision#1540, #2600: each track keeps the last side it was *confirmed* on), and
detections of unconfirmed tracks never count (#2578: they carry no id here).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..config import AnalyticsConfig, LineConfig, ZoneConfig
from ..postprocess.detections import Detections
from .clock import StreamClock
from .events import Event
from .geometry import anchors, crossing, signed_depth_in_polygon, signed_distance_to_line


def margins(xyxy: np.ndarray, margin_px: Optional[float], margin_ratio: float) -> np.ndarray:
    """(N,) hysteresis margin in pixels per box: ``margin_px``, else ``margin_ratio`` x box height."""
    if margin_px is not None:
        return np.full(len(xyxy), float(margin_px))
    return margin_ratio * np.maximum(xyxy[:, 3] - xyxy[:, 1], 0.0)


@dataclass
class _LineState:
    side: int  # +1 / -1: the side of the line the track was last confirmed on (beyond the margin)
    point: np.ndarray  # its anchor when last seen beyond the margin on that side


@dataclass
class LineCounter:
    """Counts each tracked object once per crossing of the segment, with its direction.

    ``in`` is a crossing from the right of the start->end arrow to its left, as seen on screen:
    for a line drawn from top to bottom, moving left to right is ``in``. A crossing counts when the
    anchor, last seen more than the margin on one side, is seen more than the margin on the other,
    and the straight path between those two points passes through the segment (crossings beyond
    its ends do not count). A track first seen within the margin gets its side when it leaves it.
    """

    cfg: LineConfig
    counts_in: Counter = field(default_factory=Counter)
    counts_out: Counter = field(default_factory=Counter)
    state: dict[int, _LineState] = field(default_factory=dict)  # per confirmed tracker id

    def update(self, dets: Detections, stream_id: str, frame: int, ts: Optional[float], live: set[int]) -> list[Event]:
        start, end = np.asarray(self.cfg.start, float), np.asarray(self.cfg.end, float)
        points = anchors(dets.xyxy, self.cfg.anchor)
        dist = signed_distance_to_line(points, start, end) if len(points) else np.zeros(0)
        margin = margins(dets.xyxy, self.cfg.margin_px, self.cfg.margin_ratio)
        events = []
        for point, d, m, tid, name in zip(points, dist, margin, dets.tracker_id, dets.class_name):
            tid = int(tid)
            if tid <= 0 or (self.cfg.classes and name not in self.cfg.classes):
                continue
            if abs(d) <= m:
                continue  # within the band: jitter, or on its way; keeps its side
            side = 1 if d > 0 else -1
            previous = self.state.get(tid)
            self.state[tid] = _LineState(side, point)
            if previous is None or previous.side == side:
                continue
            if crossing(previous.point, point, start, end) == 0:
                continue  # changed side beyond an end of the segment
            direction = "in" if previous.side > 0 else "out"
            (self.counts_in if direction == "in" else self.counts_out)[name] += 1
            events.append(Event("line_cross", self.cfg.name, stream_id, frame, ts, tid, name, direction=direction))
        self.forget(live)
        return events

    def forget(self, live: set[int]) -> None:
        """Drop the state of tracks the tracker dropped: memory stays bounded."""
        for tid in [t for t in self.state if t not in live]:
            del self.state[tid]

    def summary(self) -> dict:
        return {"in": dict(self.counts_in), "out": dict(self.counts_out)}


@dataclass
class _ZoneVisit:
    entered: float  # stream-clock seconds at the enter
    class_name: str
    seen: float  # stream-clock seconds at the last sighting inside (the zone)
    seen_frame: int
    seen_ts: Optional[float]


@dataclass
class ZoneCounter:
    """Occupancy per class, enter/exit events and dwell time of tracked objects in a polygon.

    An object enters when its anchor is more than the margin inside the polygon's edge, and exits
    when it is more than the margin outside, or when its track ends; within the band it keeps its
    state (an object first seen there counts as outside). A track that ends inside exits at its
    last sighting: the tracker keeps a lost track for ``track_buffer_s`` before it drops it, and that
    wait is not dwell; the ``zone_exit`` event comes when the track is dropped, with the last
    sighting's frame index, timestamp and dwell. Dwell is measured on the stream's monotonic clock
    (:class:`~streamtrt.analytics.clock.StreamClock`) and is never negative.
    """

    cfg: ZoneConfig
    inside: dict[int, _ZoneVisit] = field(default_factory=dict)  # per tracker id inside
    enters: int = 0
    exits: int = 0
    max_occupancy: int = 0
    occupancy: Counter = field(default_factory=Counter)

    def update(self, dets: Detections, stream_id: str, frame: int, ts: Optional[float], live: set[int],
               now: float) -> list[Event]:
        """``now``: this frame's time on the stream's monotonic clock."""
        polygon = np.asarray(self.cfg.points, float)
        points = anchors(dets.xyxy, self.cfg.anchor)
        depth = signed_depth_in_polygon(points, polygon)
        margin = margins(dets.xyxy, self.cfg.margin_px, self.cfg.margin_ratio)
        events = []
        for d, m, tid, name in zip(depth, margin, dets.tracker_id, dets.class_name):
            tid = int(tid)
            if tid <= 0 or (self.cfg.classes and name not in self.cfg.classes):
                continue
            if d > m and tid not in self.inside:
                self.inside[tid] = _ZoneVisit(now, name, now, frame, ts)
                self.enters += 1
                events.append(Event("zone_enter", self.cfg.name, stream_id, frame, ts, tid, name))
            elif d < -m and tid in self.inside:
                self.inside[tid].seen, self.inside[tid].seen_frame, self.inside[tid].seen_ts = now, frame, ts
                events.append(self._exit(tid, stream_id))
            elif tid in self.inside:  # still inside (or in the band): seen here now
                self.inside[tid].seen, self.inside[tid].seen_frame, self.inside[tid].seen_ts = now, frame, ts
        for tid in [t for t in self.inside if t not in live]:  # the track ended: it left when last seen
            events.append(self._exit(tid, stream_id))
        self.occupancy = Counter(v.class_name for v in self.inside.values())
        self.max_occupancy = max(self.max_occupancy, len(self.inside))
        return events

    def _exit(self, tid: int, stream_id: str) -> Event:
        """The exit at the visit's last sighting (set by the caller to this frame for a seen exit)."""
        v = self.inside.pop(tid)
        self.exits += 1
        return Event("zone_exit", self.cfg.name, stream_id, v.seen_frame, v.seen_ts, tid, v.class_name,
                     dwell_s=max(0.0, v.seen - v.entered))

    def summary(self) -> dict:
        return {"enters": self.enters, "exits": self.exits, "max_occupancy": self.max_occupancy,
                "occupancy": dict(self.occupancy)}


class StreamAnalytics:
    """All lines and zones of one stream, on one monotonic clock."""

    def __init__(self, cfg: AnalyticsConfig, fps: Optional[float]):
        self.clock = StreamClock(fps)
        self.lines = [LineCounter(c) for c in cfg.lines]
        self.zones = [ZoneCounter(c) for c in cfg.zones]

    def update(self, dets: Detections, stream_id: str, frame: int, ts: Optional[float], live: set[int]) -> list[Event]:
        now = self.clock(frame, ts)
        if dets.tracker_id is None:
            return []
        events: list[Event] = []
        for line in self.lines:
            events += line.update(dets, stream_id, frame, ts, live)
        for zone in self.zones:
            events += zone.update(dets, stream_id, frame, ts, live, now)
        return events

    def summary(self) -> dict:
        return {"lines": {c.cfg.name: c.summary() for c in self.lines},
                "zones": {z.cfg.name: z.summary() for z in self.zones}}
