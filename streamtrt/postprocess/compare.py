"""Agreement of two detectors' outputs on the same frames: precision, recall and F1 of one
against the other taken as reference (an INT8 model against its FP32 original; streamtrt
against a peer runner on the same model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .boxes import box_iou
from .detections import Detections


@dataclass
class Agreement:
    matched: int
    predicted: int
    reference: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.reference if self.reference else 1.0

    @property
    def f1(self) -> float:
        """2 * matched / (predicted + reference); 1.0 when both are empty."""
        total = self.predicted + self.reference
        return 2 * self.matched / total if total else 1.0

    def as_dict(self) -> dict:
        return {"f1": round(self.f1, 4), "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "matched": self.matched, "predicted": self.predicted, "reference": self.reference}


def match_frame(pred: Detections, ref: Detections, iou: float = 0.5) -> int:
    """Matches between one frame's detections: greedy in descending ``pred`` confidence, each
    reference box used once, same class, IoU >= ``iou`` (the PASCAL VOC / COCO matching rule)."""
    if not len(pred) or not len(ref):
        return 0
    ious = box_iou(pred.xyxy, ref.xyxy)
    ious[pred.class_id[:, None] != ref.class_id[None, :]] = -1.0
    used = np.zeros(len(ref), bool)
    matched = 0
    for i in np.argsort(-pred.confidence, kind="stable"):
        row = np.where(used, -1.0, ious[i])
        j = int(np.argmax(row))
        if row[j] >= iou:
            used[j] = True
            matched += 1
    return matched


def agreement(pred: Sequence[Detections], ref: Sequence[Detections], iou: float = 0.5) -> Agreement:
    """Frame-by-frame agreement of ``pred`` with ``ref`` (same frames, same order)."""
    if len(pred) != len(ref):
        raise ValueError(f"different frame counts: {len(pred)} vs {len(ref)}")
    return Agreement(sum(match_frame(p, r, iou) for p, r in zip(pred, ref)),
                     sum(len(p) for p in pred), sum(len(r) for r in ref))
