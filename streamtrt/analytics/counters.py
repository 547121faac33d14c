"""Line crossing counts and polygon zones over tracked detections, per stream."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..config import AnalyticsConfig, LineConfig, ZoneConfig
from ..postprocess.detections import Detections
from .events import Event
from .geometry import anchors, crossing, inside_polygon


@dataclass
class LineCounter:
    """Counts each tracked object once per crossing of the segment, with its direction.

    ``in`` is a crossing from the right of the start->end arrow to its left, as seen on screen:
    for a line drawn from top to bottom, moving left to right is ``in``. Crossings beyond the
    segment's ends do not count.
    """

    cfg: LineConfig
    counts_in: Counter = field(default_factory=Counter)
    counts_out: Counter = field(default_factory=Counter)
    last: dict[int, np.ndarray] = field(default_factory=dict)

    def update(self, dets: Detections, stream_id: str, frame: int, ts: Optional[float], live: set[int]) -> list[Event]:
        start, end = np.asarray(self.cfg.start, float), np.asarray(self.cfg.end, float)
        points = anchors(dets.xyxy, self.cfg.anchor)
        events = []
        for point, tid, name in zip(points, dets.tracker_id, dets.class_name):
            if tid < 0 or (self.cfg.classes and name not in self.cfg.classes):
                continue
            previous = self.last.get(int(tid))
            self.last[int(tid)] = point
            if previous is None:
                continue
            sense = crossing(previous, point, start, end)
            if sense == 0:
                continue
            direction = "in" if sense > 0 else "out"
            (self.counts_in if direction == "in" else self.counts_out)[name] += 1
            events.append(Event("line_cross", self.cfg.name, stream_id, frame, ts, int(tid), name, direction=direction))
        for tid in list(self.last):  # forget tracks the tracker dropped: memory stays bounded
            if tid not in live:
                del self.last[tid]
        return events

    def summary(self) -> dict:
        return {"in": dict(self.counts_in), "out": dict(self.counts_out)}


@dataclass
class ZoneCounter:
    """Occupancy per class, enter/exit events and dwell time of tracked objects in a polygon."""

    cfg: ZoneConfig
    fps: Optional[float]
    inside: dict[int, tuple[float, str]] = field(default_factory=dict)  # tracker id -> (entered at s, class)
    enters: int = 0
    exits: int = 0
    max_occupancy: int = 0
    occupancy: Counter = field(default_factory=Counter)

    def _time(self, frame: int, ts: Optional[float]) -> float:
        return ts if ts is not None else frame / (self.fps or 1.0)

    def update(self, dets: Detections, stream_id: str, frame: int, ts: Optional[float], live: set[int]) -> list[Event]:
        polygon = np.asarray(self.cfg.points, float)
        now = self._time(frame, ts)
        points = anchors(dets.xyxy, self.cfg.anchor)
        within = inside_polygon(points, polygon) if len(points) else np.zeros(0, bool)
        events, present = [], set()
        for ok, tid, name in zip(within, dets.tracker_id, dets.class_name):
            tid = int(tid)
            if tid < 0 or (self.cfg.classes and name not in self.cfg.classes):
                continue
            if ok:
                present.add(tid)
                if tid not in self.inside:
                    self.inside[tid] = (now, name)
                    self.enters += 1
                    events.append(Event("zone_enter", self.cfg.name, stream_id, frame, ts, tid, name))
        # Objects seen outside, or whose track ended, leave the zone.
        seen = {int(t) for t in dets.tracker_id if t >= 0}
        for tid in list(self.inside):
            if tid in present or (tid not in seen and tid in live):
                continue  # still inside, or only missed this frame while its track lives on
            entered, name = self.inside.pop(tid)
            self.exits += 1
            events.append(Event("zone_exit", self.cfg.name, stream_id, frame, ts, tid, name, dwell_s=now - entered))
        self.occupancy = Counter(name for _, name in self.inside.values())
        self.max_occupancy = max(self.max_occupancy, len(self.inside))
        return events

    def summary(self) -> dict:
        return {"enters": self.enters, "exits": self.exits, "max_occupancy": self.max_occupancy,
                "occupancy": dict(self.occupancy)}


class StreamAnalytics:
    """All lines and zones of one stream."""

    def __init__(self, cfg: AnalyticsConfig, fps: Optional[float]):
        self.lines = [LineCounter(c) for c in cfg.lines]
        self.zones = [ZoneCounter(c, fps) for c in cfg.zones]

    def update(self, dets: Detections, stream_id: str, frame: int, ts: Optional[float], live: set[int]) -> list[Event]:
        if dets.tracker_id is None:
            return []
        events: list[Event] = []
        for counter in [*self.lines, *self.zones]:
            events += counter.update(dets, stream_id, frame, ts, live)
        return events

    def summary(self) -> dict:
        return {"lines": {c.cfg.name: c.summary() for c in self.lines},
                "zones": {z.cfg.name: z.summary() for z in self.zones}}
