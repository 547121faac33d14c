"""ByteTrack: two-stage IoU association (confident detections first, then low-score ones)
over Kalman-predicted tracks. One tracker per stream; deterministic given the frame order.

Follows Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box"
(ECCV 2022) as Ultralytics (``trackers/byte_tracker.py``) and supervision
(``tracker/byte_tracker/core.py``) implement it: a first association of tracks with detections
at or above ``high``, a second of the remaining confirmed tracks with detections between ``low``
and ``high``, new tracks from unmatched confident detections, a tentative track that misses a frame
dropped, a lost track kept for ``track_buffer_s``. As there, tentative tracks only get the
confident detections that confirmed tracks left (a third stage), and only tracks seen in the last
frame take low-score detections. State is held as stacked arrays so that the
Kalman filter runs once per frame for all tracks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import FALLBACK_FPS, TrackerConfig
from ..errors import ConfigError
from ..postprocess.boxes import box_iou
from ..postprocess.detections import TENTATIVE, Detections
from .assignment import linear_assignment
from .kalman import KalmanBoxFilter, xyah_to_xyxy, xyxy_to_xyah

_NO_TRACK = -2  # internal: a candidate in no track (never output, see ByteTracker.update)
_TENTATIVE_MATCH_IOU = 0.3  # ByteTrack, Ultralytics, supervision: unconfirmed tracks match at cost < 0.7


@dataclass(frozen=True)
class Track:
    """A snapshot of one track (for inspection; the tracker keeps its state in arrays)."""

    track_id: int  # > 0 once confirmed; TENTATIVE (-1) before
    class_id: int
    box: np.ndarray
    hits: int
    misses: int
    confirmed: bool


class ByteTracker:
    """Assigns ``tracker_id`` to detections, frame by frame.

    ``update`` takes every candidate down to the low threshold and returns those at or above
    ``output_threshold`` (what the sinks show), plus low-score ones that continued a confirmed
    track. Each returned detection is in a track: its id once the track is confirmed, else
    ``TENTATIVE`` (-1). The thresholds (``cfg.thresholds(output_threshold)``) must let every
    returned detection start or continue a track: :class:`~streamtrt.errors.ConfigError` otherwise.
    """

    def __init__(self, cfg: TrackerConfig, output_threshold: float, frame_rate: float = FALLBACK_FPS):
        problem = cfg.threshold_problem(output_threshold)
        if problem:
            raise ConfigError(problem)
        self.cfg = cfg
        self.thresholds = cfg.thresholds(output_threshold)
        self.output_threshold = output_threshold
        self.frame_rate = frame_rate
        self.kf = KalmanBoxFilter()
        self.frame = 0
        self.next_id = 1
        self.means = np.zeros((0, 8))
        self.covs = np.zeros((0, 8, 8))
        self.ids = np.zeros(0, np.int64)      # > 0 confirmed, TENTATIVE before
        self.class_ids = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.misses = np.zeros(0, np.int64)

    @property
    def max_misses(self) -> int:
        return max(1, int(round(self.cfg.track_buffer_s * self.frame_rate)))

    @property
    def tracks(self) -> list[Track]:
        boxes = xyah_to_xyxy(self.means) if len(self.means) else np.zeros((0, 4), np.float32)
        return [Track(int(i), int(c), b, int(h), int(m), bool(i > 0))
                for i, c, b, h, m in zip(self.ids, self.class_ids, boxes, self.hits, self.misses)]

    def live_ids(self) -> set[int]:
        """Ids of confirmed tracks still kept (tracked or lost within the buffer)."""
        return {int(i) for i in self.ids if i > 0}

    def update(self, dets: Detections) -> Detections:
        self.frame += 1
        t = self.thresholds
        if len(self.means):
            self.means[self.misses > 0, 7] = 0.0  # a lost track stops growing or shrinking (ByteTrack's multi_predict)
            self.means, self.covs = self.kf.predict(self.means, self.covs)
        n_tracks = len(self.ids)
        det_track = np.full(len(dets), -1, np.int64)  # index of the track each detection joined
        score = dets.confidence
        high = np.flatnonzero(score >= t.high)
        low = np.flatnonzero((score < t.high) & (score >= t.low))
        boxes = xyah_to_xyxy(self.means) if n_tracks else np.zeros((0, 4), np.float32)

        confirmed = self.ids > 0
        # 1st stage: confident detections against confirmed tracks, tracked or lost.
        matched = np.zeros(n_tracks, bool)
        self._associate(np.flatnonzero(confirmed), high, boxes, dets, self.cfg.match_iou, matched, det_track,
                        self.cfg.fuse_score)
        # 2nd stage: tracks seen last frame and still unmatched against low-score detections (occlusion, blur).
        rest = np.flatnonzero(confirmed & ~matched & (self.misses == 0))
        self._associate(rest, low, boxes, dets, self.cfg.low_match_iou, matched, det_track)
        # 3rd stage: tentative tracks against the confident detections left (ByteTrack's "unconfirmed").
        left = high[det_track[high] < 0]
        self._associate(np.flatnonzero(~confirmed), left, boxes, dets, _TENTATIVE_MATCH_IOU, matched, det_track,
                        self.cfg.fuse_score)

        # Kalman update of every matched track at once.
        rows = np.flatnonzero(det_track >= 0)
        if len(rows):
            tracks = det_track[rows]
            self.means[tracks], self.covs[tracks] = self.kf.update(
                self.means[tracks], self.covs[tracks], xyxy_to_xyah(dets.xyxy[rows]))
            self.hits[tracks] += 1
            self.misses[tracks] = 0
            confirm = tracks[(self.ids[tracks] <= 0) & (self.hits[tracks] >= self.cfg.min_hits)]
            self._confirm(confirm)
        self.misses[~matched] += 1
        keep = matched | (self.ids > 0)  # a tentative track that misses once is dropped
        keep &= self.misses <= self.max_misses  # lost tracks older than the buffer: memory stays bounded
        remap = np.cumsum(keep) - 1
        self._select(keep)
        det_track = np.where(det_track >= 0, remap[np.maximum(det_track, 0)] if n_tracks else -1, -1)

        # New tracks from confident detections that matched nothing.
        new = high[(det_track[high] < 0) & (score[high] >= t.new_track)]
        if len(new):
            mean, cov = self.kf.initiate(xyxy_to_xyah(dets.xyxy[new]))
            start = len(self.ids)
            self.means = np.concatenate([self.means, mean])
            self.covs = np.concatenate([self.covs, cov])
            self.ids = np.concatenate([self.ids, np.full(len(new), TENTATIVE, np.int64)])
            self.class_ids = np.concatenate([self.class_ids, dets.class_id[new].astype(np.int64)])
            self.hits = np.concatenate([self.hits, np.ones(len(new), np.int64)])
            self.misses = np.concatenate([self.misses, np.zeros(len(new), np.int64)])
            created = np.arange(start, start + len(new))
            det_track[new] = created
            if self.frame == 1 or self.cfg.min_hits <= 1:
                self._confirm(created)

        ids = np.where(det_track >= 0, self.ids[np.maximum(det_track, 0)] if len(self.ids) else _NO_TRACK, _NO_TRACK)
        keep_det = (score >= self.output_threshold) | (ids > 0)
        out = dets[np.flatnonzero(keep_det)]
        out.tracker_id = ids[keep_det].astype(np.int64)
        if np.any(out.tracker_id == _NO_TRACK):  # excluded by the threshold check in __init__
            raise AssertionError("a reported detection is in no track")
        return out

    def _confirm(self, tracks: np.ndarray) -> None:
        for i in tracks:  # ids in creation order: deterministic
            self.ids[i] = self.next_id
            self.next_id += 1

    def _select(self, keep: np.ndarray) -> None:
        self.means, self.covs = self.means[keep], self.covs[keep]
        self.ids, self.class_ids = self.ids[keep], self.class_ids[keep]
        self.hits, self.misses = self.hits[keep], self.misses[keep]

    def _associate(self, track_idx: np.ndarray, det_idx: np.ndarray, boxes: np.ndarray, dets: Detections,
                   min_iou: float, matched: np.ndarray, det_track: np.ndarray, fuse: bool = False) -> None:
        """Optimal assignment on IoU (times the detection's score with ``fuse``, as Ultralytics'
        ``fuse_score`` and supervision do in their first and third stages), pairs below ``min_iou`` left out."""
        if len(track_idx) == 0 or len(det_idx) == 0:
            return
        iou = box_iou(boxes[track_idx], dets.xyxy[det_idx])
        if fuse:
            iou = iou * dets.confidence[det_idx][None, :]
        if self.cfg.class_aware:
            iou = np.where(self.class_ids[track_idx][:, None] == dets.class_id[det_idx][None, :], iou, 0.0)
        for r, c in linear_assignment(1.0 - iou):
            if iou[r, c] < min_iou:
                continue
            matched[track_idx[r]] = True
            det_track[det_idx[c]] = track_idx[r]
