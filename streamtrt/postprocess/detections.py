"""The ``Detections`` container: parallel numpy arrays, one row per object (after supervision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

TENTATIVE = -1
"""``tracker_id`` of a detection in a track not yet confirmed (``tracker.min_hits``); its record says
``"tracker_id": null, "track_state": "tentative"``."""


@dataclass
class Detections:
    """Objects found in one frame.

    ``xyxy`` is float32 (N, 4) in source-frame pixels; ``confidence`` float32 (N,);
    ``class_id`` int32 (N,); ``class_name`` a list of N strings.
    Indexing with a boolean mask, an index array or a slice returns a new ``Detections``.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    class_name: list[str] = field(default_factory=list)
    tracker_id: Optional[np.ndarray] = None
    """int64 (N,) when a tracker ran: the confirmed track's id (>= 1), or ``TENTATIVE`` (-1) for a
    detection in a track not yet confirmed."""
    keypoints: Optional[np.ndarray] = None
    """float32 (N, K, 3) for pose models: x, y in source-frame pixels and a visibility score 0..1."""
    masks: Optional[np.ndarray] = None
    """bool (N, H, W) for segmentation models: each object's pixels in the source frame."""

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, np.int32).reshape(-1)
        self.class_name = list(self.class_name)
        n = len(self.xyxy)
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, np.float32)
            if self.keypoints.ndim != 3 or len(self.keypoints) != n:
                raise ValueError(f"Detections keypoints must be (N, K, 3) with N = {n}: got {self.keypoints.shape}")
        if self.masks is not None:
            self.masks = np.asarray(self.masks, bool)
            if self.masks.ndim != 3 or len(self.masks) != n:
                raise ValueError(f"Detections masks must be (N, H, W) with N = {n}: got {self.masks.shape}")
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, np.int64).reshape(-1)
            if len(self.tracker_id) != n:
                raise ValueError(f"Detections arrays differ in length: xyxy {n}, tracker_id {len(self.tracker_id)}")
        if not (len(self.confidence) == len(self.class_id) == len(self.class_name) == n):
            raise ValueError(
                f"Detections arrays differ in length: xyxy {n}, confidence {len(self.confidence)}, "
                f"class_id {len(self.class_id)}, class_name {len(self.class_name)}"
            )

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), [])

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> "Detections":
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.arange(len(self))[index]
        return Detections(self.xyxy[idx], self.confidence[idx], self.class_id[idx],
                          [self.class_name[i] for i in idx],
                          None if self.tracker_id is None else self.tracker_id[idx],
                          None if self.keypoints is None else self.keypoints[idx],
                          None if self.masks is None else self.masks[idx])

    def to_records(self, decimals: int = 2) -> list[dict[str, Any]]:
        """JSON-ready dicts: ``bbox`` [x1, y1, x2, y2], ``score``, ``class_id``, ``class_name``; with a
        tracker also ``tracker_id`` (null while tentative) and ``track_state`` (``confirmed``/``tentative``)."""
        records = [
            {
                "bbox": [round(float(v), decimals) for v in box],
                "score": round(float(score), 4),
                "class_id": int(cid),
                "class_name": name,
            }
            for box, score, cid, name in zip(self.xyxy, self.confidence, self.class_id, self.class_name)
        ]
        if self.tracker_id is not None:
            for record, tid in zip(records, self.tracker_id):
                record["tracker_id"] = int(tid) if tid > 0 else None
                record["track_state"] = "confirmed" if tid > 0 else "tentative"
        if self.keypoints is not None:
            for record, kpts in zip(records, self.keypoints):
                record["keypoints"] = [[round(float(x), decimals), round(float(y), decimals), round(float(v), 3)]
                                       for x, y, v in kpts[:, :3]]
        if self.masks is not None:
            from .masks import mask_to_rle

            for record, mask in zip(records, self.masks):
                record["mask"] = mask_to_rle(mask)
        return records

    @staticmethod
    def concat(items: Sequence["Detections"]) -> "Detections":
        if not items:
            return Detections.empty()
        tracked = all(d.tracker_id is not None for d in items)
        posed = all(d.keypoints is not None for d in items)
        masked = all(d.masks is not None for d in items) and len({d.masks.shape[1:] for d in items}) == 1
        return Detections(
            np.concatenate([d.xyxy for d in items]), np.concatenate([d.confidence for d in items]),
            np.concatenate([d.class_id for d in items]), [n for d in items for n in d.class_name],
            np.concatenate([d.tracker_id for d in items]) if tracked else None,
            np.concatenate([d.keypoints for d in items]) if posed else None,
            np.concatenate([d.masks for d in items]) if masked else None,
        )
