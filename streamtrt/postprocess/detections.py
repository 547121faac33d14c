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

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, np.int32).reshape(-1)
        self.class_name = list(self.class_name)
        n = len(self.xyxy)
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
                          None if self.tracker_id is None else self.tracker_id[idx])

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
        return records

    @staticmethod
    def concat(items: Sequence["Detections"]) -> "Detections":
        if not items:
            return Detections.empty()
        tracked = all(d.tracker_id is not None for d in items)
        return Detections(
            np.concatenate([d.xyxy for d in items]), np.concatenate([d.confidence for d in items]),
            np.concatenate([d.class_id for d in items]), [n for d in items for n in d.class_name],
            np.concatenate([d.tracker_id for d in items]) if tracked else None,
        )
