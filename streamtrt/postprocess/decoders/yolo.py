"""YOLO heads: YOLOv8/YOLO11 ``[B, 4+C, N]`` and YOLOv5 ``[B, N, 5+C]`` (boxes as cx, cy, w, h)."""

from __future__ import annotations

import math
from typing import Mapping, Optional

import numpy as np

from .base import Candidates, OutputDecoder, Shapes, best_class, confident_rows, cxcywh_to_xyxy


def _single_3d(shapes: Shapes) -> Optional[tuple[str, tuple[int, ...]]]:
    if len(shapes) != 1:
        return None
    name, shape = next(iter(shapes.items()))
    return (name, shape) if len(shape) == 3 else None


def anchor_points(input_hw: tuple[int, int], strides=(8, 16, 32)) -> int:
    """Grid cells over the usual YOLO strides: the N of an anchor-free head."""
    return sum(math.ceil(input_hw[0] / s) * math.ceil(input_hw[1] / s) for s in strides)


class _SingleOutputDecoder(OutputDecoder):
    def __init__(self, output: str, num_classes: int):
        self.output = output
        self.num_classes = num_classes


class YoloV8Decoder(_SingleOutputDecoder):
    """``[B, 4+C, N]``: cx, cy, w, h then C class scores (no objectness)."""

    name = "yolov8"

    @classmethod
    def match(cls, shapes, input_hw, num_classes):
        found = _single_3d(shapes)
        if found and found[1][1] == 4 + num_classes:
            n = found[1][2]
            if n > found[1][1] or n == anchor_points(input_hw):
                return cls(found[0], num_classes)
        return None

    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float) -> list[Candidates]:
        result = []
        for item in np.asarray(outputs[self.output], np.float32):
            rows = item.T  # (N, 4+C)
            keep, scores, ids = confident_rows(rows[:, 4:], score_threshold)
            result.append(Candidates(cxcywh_to_xyxy(rows[keep, :4]), scores, ids))
        return result


class YoloV5Decoder(_SingleOutputDecoder):
    """``[B, N, 5+C]``: cx, cy, w, h, objectness, then C class scores (score = obj * cls)."""

    name = "yolov5"

    @classmethod
    def match(cls, shapes, input_hw, num_classes):
        found = _single_3d(shapes)
        if found and found[1][2] == 5 + num_classes:
            n = found[1][1]
            if n > found[1][2] or n == 3 * anchor_points(input_hw):
                return cls(found[0], num_classes)
        return None

    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float) -> list[Candidates]:
        result = []
        for rows in np.asarray(outputs[self.output], np.float32):
            candidates = rows[rows[:, 4] > score_threshold]
            scores, ids = best_class(candidates[:, 5:] * candidates[:, 4:5])
            keep = scores > score_threshold
            result.append(Candidates(cxcywh_to_xyxy(candidates[keep, :4]), scores[keep], ids[keep]))
        return result
