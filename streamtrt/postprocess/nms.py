"""Non-maximum suppression in numpy."""

from __future__ import annotations

import numpy as np

from .boxes import box_iou


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, highest score first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    boxes = np.asarray(boxes, np.float64)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iou = box_iou(boxes[i:i + 1], boxes[rest])[0]
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Per-class NMS: boxes of different classes never suppress each other."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    # Shift each class into its own region so one NMS pass treats classes independently.
    span = float(np.max(boxes)) - float(min(np.min(boxes), 0.0)) + 1.0
    offsets = class_ids.astype(np.float64)[:, None] * span
    keep = nms(boxes.astype(np.float64) + offsets, scores, iou_threshold)
    return keep[np.argsort(-scores[keep], kind="stable")]
