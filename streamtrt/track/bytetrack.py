"""ByteTrack: two-stage IoU association (confident detections first, then low-score ones)
over Kalman-predicted tracks. One tracker per stream; deterministic given the frame order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import TrackerConfig
from ..postprocess.detections import Detections
from .assignment import linear_assignment
from .kalman import KalmanBoxFilter, xyah_to_xyxy, xyxy_to_xyah


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class Track:
    track_id: int
    class_id: int
    mean: np.ndarray
    cov: np.ndarray
    hits: int = 1
    misses: int = 0
    confirmed: bool = False
    last_frame: int = 0

    @property
    def box(self) -> np.ndarray:
        return xyah_to_xyxy(self.mean)


@dataclass
class ByteTracker:
    """Assigns ``tracker_id`` to detections, frame by frame.

    ``update`` takes every detection down to ``low_threshold`` and returns those at or above
    ``output_threshold``, plus low-score ones that continued a track, each with its id (-1 for
    detections that belong to no confirmed track)."""

    cfg: TrackerConfig
    output_threshold: float
    frame_rate: float = 30.0
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 1
    frame: int = 0
    kf: KalmanBoxFilter = field(default_factory=KalmanBoxFilter)

    @property
    def max_misses(self) -> int:
        return max(1, int(round(self.cfg.track_buffer_s * self.frame_rate)))

    def update(self, dets: Detections) -> Detections:
        self.frame += 1
        cfg = self.cfg
        for t in self.tracks:
            t.mean, t.cov = self.kf.predict(t.mean, t.cov)
        ids = np.full(len(dets), -1, np.int64)
        high = np.flatnonzero(dets.confidence >= cfg.high_threshold)
        low = np.flatnonzero((dets.confidence < cfg.high_threshold) & (dets.confidence >= cfg.low_threshold))

        # 1st stage: confident detections against all tracks.
        matched_tracks, unmatched_high = self._associate(list(range(len(self.tracks))), high, dets, cfg.match_iou, ids)
        # 2nd stage: remaining confirmed tracks against low-score detections (occlusion, blur).
        rest = [i for i in range(len(self.tracks)) if i not in matched_tracks and self.tracks[i].confirmed]
        matched_low, _ = self._associate(rest, low, dets, cfg.low_match_iou, ids)
        matched_tracks |= matched_low

        for i, t in enumerate(self.tracks):
            if i not in matched_tracks:
                t.misses += 1
                if not t.confirmed:
                    t.misses = self.max_misses + 1  # a tentative track that misses once is dropped
        # New tracks from confident detections that matched nothing.
        for d in unmatched_high:
            if dets.confidence[d] < cfg.new_track_threshold:
                continue
            mean, cov = self.kf.initiate(xyxy_to_xyah(dets.xyxy[d]))
            track = Track(self.next_id, int(dets.class_id[d]), mean, cov, last_frame=self.frame,
                          confirmed=self.frame == 1 or cfg.min_hits <= 1)
            self.next_id += 1
            self.tracks.append(track)
            if track.confirmed:
                ids[d] = track.track_id
        # Lost tracks older than the buffer are purged: memory stays bounded.
        self.tracks = [t for t in self.tracks if t.misses <= self.max_misses]

        keep = (dets.confidence >= self.output_threshold) | (ids >= 0)
        out = dets[np.flatnonzero(keep)]
        out.tracker_id = ids[keep].astype(np.int64)
        return out

    def _associate(self, track_idx: list[int], det_idx: np.ndarray, dets: Detections, min_iou: float,
                   ids: np.ndarray) -> tuple[set[int], list[int]]:
        if not track_idx or len(det_idx) == 0:
            return set(), list(det_idx)
        boxes = np.stack([self.tracks[i].box for i in track_idx])
        iou = iou_matrix(boxes, dets.xyxy[det_idx])
        if self.cfg.class_aware:
            same = np.array([[self.tracks[i].class_id == dets.class_id[d] for d in det_idx] for i in track_idx])
            iou = np.where(same, iou, 0.0)
        matched, used = set(), set()
        for r, c in linear_assignment(1.0 - iou):
            if iou[r, c] < min_iou:
                continue
            t = self.tracks[track_idx[r]]
            d = int(det_idx[c])
            t.mean, t.cov = self.kf.update(t.mean, t.cov, xyxy_to_xyah(dets.xyxy[d]))
            t.hits += 1
            t.misses = 0
            t.last_frame = self.frame
            if not t.confirmed and t.hits >= self.cfg.min_hits:
                t.confirmed = True
            if t.confirmed:
                ids[d] = t.track_id
            matched.add(track_idx[r])
            used.add(d)
        return matched, [int(d) for d in det_idx if int(d) not in used]
