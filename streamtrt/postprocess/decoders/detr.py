"""DETR-style heads (RT-DETR): a fixed set of queries, each a normalised box and per-class scores; no NMS.

Three layouts:

* Ultralytics 8.4 RT-DETR export: ``[B, K, 6]`` rows of cx, cy, w, h (normalised to the input size,
  0..1), score, class: the top K (query, class) pairs (``RTDETRDecoder.postprocess``). Its shape is
  that of ``decoded`` (x1, y1, x2, y2 in pixels), so it is taken only when the format says ``rtdetr``
  (the metadata's ``head: RTDETRDecoder`` does).
* Earlier Ultralytics RT-DETR exports: one ``[B, Q, 4+C]`` output, rows of normalised cx, cy, w, h then
  C sigmoid class scores; the best class per query (as ``RTDETRPredictor.postprocess`` took it).
* Split outputs, as PaddleDetection (``exclude_post_process``) and other DETR exports give them:
  ``boxes [B, Q, 4]`` (normalised cx, cy, w, h) and ``scores [B, Q, C]``; scores outside 0..1 are
  logits and pass through a sigmoid.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from .base import Candidates, OutputDecoder, confident_rows, cxcywh_to_xyxy, register_decoder


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@register_decoder
class RTDETRDecoder(OutputDecoder):
    """Normalised cxcywh queries with per-class scores: the best class per query, no NMS."""

    name = "rtdetr"
    applies_nms = True  # queries are already one per object (set prediction)

    def __init__(self, input_hw: tuple[int, int], joined: Optional[str] = None,
                 boxes: Optional[str] = None, scores: Optional[str] = None, topk: Optional[str] = None):
        self.input_hw = input_hw
        self.joined, self.boxes, self.scores, self.topk = joined, boxes, scores, topk

    @classmethod
    def match(cls, shapes, input_hw, num_classes):
        items = list(shapes.items())
        if len(items) == 1:
            name, shape = items[0]
            if len(shape) == 3 and shape[2] == 4 + num_classes and shape[1] != 4 + num_classes:
                return cls(input_hw, joined=name)
            if len(shape) == 3 and shape[2] == 6:
                return cls(input_hw, topk=name)
            return None
        if len(items) == 2:
            boxes = [n for n, s in items if len(s) == 3 and s[2] == 4]
            if len(boxes) == 2:  # 4 classes: both are [B, Q, 4]; only a name ("boxes", "pred_boxes") tells
                boxes = [n for n in boxes if "box" in n.lower()]
            scores = [n for n, s in items if len(s) == 3 and s[2] == num_classes and n not in boxes]
            if len(boxes) == 1 and len(scores) == 1 and shapes[boxes[0]][1] == shapes[scores[0]][1]:
                return cls(input_hw, boxes=boxes[0], scores=scores[0])
        return None

    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float) -> list[Candidates]:
        h, w = self.input_hw
        scale = np.array([w, h, w, h], np.float32)
        if self.topk is not None:
            result = []
            for rows in np.asarray(outputs[self.topk], np.float32):
                rows = rows[rows[:, 4] > score_threshold]
                result.append(Candidates(cxcywh_to_xyxy(rows[:, :4] * scale), rows[:, 4], rows[:, 5].astype(np.int64)))
            return result
        if self.joined is not None:
            joined = np.asarray(outputs[self.joined], np.float32)
            boxes_all, scores_all = joined[..., :4], joined[..., 4:]
        else:
            boxes_all = np.asarray(outputs[self.boxes], np.float32)
            scores_all = np.asarray(outputs[self.scores], np.float32)
            if scores_all.size and (scores_all.min() < 0.0 or scores_all.max() > 1.0):
                scores_all = _sigmoid(scores_all)
        result = []
        for boxes, scores in zip(boxes_all, scores_all):
            rows, best, ids = confident_rows(scores, score_threshold)
            result.append(Candidates(cxcywh_to_xyxy(boxes[rows] * scale), best, ids))
        return result
