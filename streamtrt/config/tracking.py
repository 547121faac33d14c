"""Tracking (ByteTrack) and analytics (lines, zones)."""

from __future__ import annotations

from typing import Literal, NamedTuple, Optional

from pydantic import Field


from .base import _Strict


TRACK_HIGH_DEFAULT = 0.25
#: ByteTrack's second-association floor: Ultralytics ``track_low_thresh: 0.1``, supervision's ``scores > 0.1``.
TRACK_LOW_DEFAULT = 0.1


class TrackThresholds(NamedTuple):
    """The tracker's score thresholds once defaults are resolved against ``postprocess.score_threshold``."""

    high: float
    low: float
    new_track: float


class TrackerConfig(_Strict):
    """ByteTrack-style multi-object tracking, one tracker per stream.

    The thresholds must fit the detector: every detection streamtrt reports (score above
    ``postprocess.score_threshold``) can start or continue a track, so ``high_threshold`` and
    ``new_track_threshold`` may not exceed ``postprocess.score_threshold`` (checked when the config
    is read). Unset, ``high`` and ``low`` follow Ultralytics and supervision (0.25, 0.1), lowered to
    ``postprocess.score_threshold`` where that is lower, and a new track starts from any detection
    streamtrt reports (``postprocess.score_threshold``; supervision's effective new-track threshold is
    its 0.25 + 0.1 = 0.35, the sample's): see :meth:`thresholds` and ``benchmarks/tracker_peer.py``."""

    enabled: bool = False
    high_threshold: Optional[float] = Field(None, ge=0.0, le=1.0)
    """Detections at or above this score are associated first (and may start tracks);
    default ``min(0.25, postprocess.score_threshold)``."""
    low_threshold: Optional[float] = Field(None, ge=0.0, le=1.0)
    """Detections between this and ``high_threshold`` can continue a confirmed track (second stage);
    default ``min(0.1, high_threshold)``."""
    new_track_threshold: Optional[float] = Field(None, ge=0.0, le=1.0)
    """A confident detection that matches no track starts one at or above this score; default
    ``postprocess.score_threshold``: what the sinks show starts tracks, weaker candidates only continue them."""
    match_iou: float = Field(0.2, ge=0.0, le=1.0)
    """Minimum IoU between a predicted track box and a confident detection (Ultralytics and
    supervision: ``match_thresh``/``minimum_matching_threshold`` 0.8 on 1 - IoU)."""
    fuse_score: bool = True
    """Weigh the IoU of confident matches by the detection's score (IoU x score >= ``match_iou``), as
    Ultralytics (``fuse_score: True``) and supervision do: a weak box far from a track does not take it."""
    low_match_iou: float = Field(0.5, ge=0.0, le=1.0)
    """Minimum IoU in the second (low-score) stage (0.5 in both peers)."""
    track_buffer_s: float = Field(3.0, gt=0.0)
    """How long a lost track is kept for re-association, in seconds of video."""
    min_hits: int = Field(2, ge=1)
    """Matches before a new track gets an id (tracks of the first frame get one at once); until
    then its detections are reported as ``tentative``."""
    class_aware: bool = True
    """Never associate a detection with a track of another class."""

    def thresholds(self, score_threshold: float) -> TrackThresholds:
        """Resolve unset thresholds against the detector's ``postprocess.score_threshold``."""
        high = self.high_threshold if self.high_threshold is not None else min(TRACK_HIGH_DEFAULT, score_threshold)
        low = self.low_threshold if self.low_threshold is not None else min(TRACK_LOW_DEFAULT, high)
        new = self.new_track_threshold if self.new_track_threshold is not None else max(high, score_threshold)
        return TrackThresholds(high, low, new)

    def threshold_problem(self, score_threshold: float) -> Optional[str]:
        """Why these thresholds would let reported detections go untracked (None when they fit)."""
        t = self.thresholds(score_threshold)
        for key, value, role in (("high_threshold", t.high, "start or continue a track"),
                                 ("new_track_threshold", t.new_track, "start a track")):
            if value > score_threshold:
                return (f"tracker.{key}: {value:g} is above postprocess.score_threshold {score_threshold:g}: "
                        f"detections scored between them are reported but could never {role}; "
                        f"set it to at most {score_threshold:g}, or leave it unset")
        if t.low > t.high:
            return f"tracker.low_threshold: {t.low:g} is above tracker.high_threshold {t.high:g}"
        return None


Point = tuple[float, float]


class LineConfig(_Strict):
    """A counting line. ``in``: crossing from the right of the start->end arrow to its left as seen
    on screen (for a line drawn top to bottom, moving left to right); ``out``: the other way."""

    name: str
    start: Point
    end: Point
    classes: Optional[list[str]] = None
    """Count only these classes (all when unset)."""
    anchor: Literal["bottom_center", "center"] = "bottom_center"
    """The point of a box that crosses: its bottom centre (feet) or its centre."""
    margin_px: Optional[float] = Field(None, ge=0.0)
    """Hysteresis: a crossing counts once the anchor is more than this many pixels past the line,
    having been as far on the other side before; default ``margin_ratio`` x the box height."""
    margin_ratio: float = Field(0.1, ge=0.0, le=1.0)
    """The default margin as a fraction of the box height (box jitter grows with the box)."""


class ZoneConfig(_Strict):
    """A polygon zone: occupancy, dwell time, enter and exit events."""

    name: str
    points: list[Point] = Field(min_length=3)
    classes: Optional[list[str]] = None
    anchor: Literal["bottom_center", "center"] = "bottom_center"
    margin_px: Optional[float] = Field(None, ge=0.0)
    """Hysteresis: an object enters once its anchor is more than this many pixels inside the polygon's
    edge and exits once it is as far outside; default ``margin_ratio`` x the box height."""
    margin_ratio: float = Field(0.1, ge=0.0, le=1.0)


class AnalyticsConfig(_Strict):
    """Line crossing and zone analytics on tracked objects (needs ``tracker.enabled``)."""

    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
