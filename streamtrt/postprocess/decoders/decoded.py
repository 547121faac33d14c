"""Outputs that are already detections: ``[B, N, 6]`` rows and TensorRT's EfficientNMS layout."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .base import Candidates, OutputDecoder, register_decoder


@register_decoder
class EfficientNMSDecoder(OutputDecoder):
    """TensorRT EfficientNMS: ``num_dets [B,1]``, ``boxes [B,K,4]``, ``scores [B,K]``, ``classes [B,K]``."""

    name = "efficientnms"
    applies_nms = True

    def __init__(self, num: str, boxes: str, scores: str, classes: str):
        self.num, self.boxes, self.scores, self.classes = num, boxes, scores, classes

    @classmethod
    def match(cls, shapes, input_hw, num_classes):
        if len(shapes) != 4:
            return None
        num = [n for n, s in shapes.items() if len(s) == 1 or (len(s) == 2 and s[1] == 1)]
        boxes = [n for n, s in shapes.items() if len(s) == 3 and s[2] == 4]
        pairs = [n for n, s in shapes.items() if len(s) == 2 and s[1] != 1]
        if len(num) != 1 or len(boxes) != 1 or len(pairs) != 2:
            return None
        k = shapes[boxes[0]][1]
        if any(shapes[n][1] != k for n in pairs):
            return None
        by_name = {("class" in n.lower()): n for n in pairs}
        if len(by_name) == 2:
            return cls(num[0], boxes[0], by_name[False], by_name[True])
        return cls(num[0], boxes[0], pairs[0], pairs[1])  # names say nothing: resolved at decode time

    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float) -> list[Candidates]:
        scores_all = np.asarray(outputs[self.scores])
        classes_all = np.asarray(outputs[self.classes])
        if not _integral(classes_all) and _integral(scores_all):
            scores_all, classes_all = classes_all, scores_all
        counts = np.asarray(outputs[self.num]).reshape(-1).astype(np.int64)
        result = []
        for b, count in enumerate(counts):
            boxes = np.asarray(outputs[self.boxes][b, :count], np.float32)
            scores = scores_all[b, :count].astype(np.float32)
            ids = classes_all[b, :count].astype(np.int64)
            keep = scores > score_threshold
            result.append(Candidates(boxes[keep], scores[keep], ids[keep]))
        return result


def _integral(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.integer) or bool(np.all(np.mod(a, 1) == 0))


@register_decoder
class DecodedDecoder(OutputDecoder):
    """``[B, N, 6]`` rows of x1, y1, x2, y2, score, class in model-input pixels (NMS already applied)."""

    name = "decoded"
    applies_nms = True

    def __init__(self, output: str):
        self.output = output

    @classmethod
    def match(cls, shapes, input_hw, num_classes):
        if len(shapes) == 1:
            name, shape = next(iter(shapes.items()))
            if len(shape) == 3 and shape[2] == 6:
                return cls(name)
        return None

    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float) -> list[Candidates]:
        result = []
        for rows in np.asarray(outputs[self.output], np.float32):
            rows = rows[rows[:, 4] > score_threshold]
            result.append(Candidates(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)))
        return result
