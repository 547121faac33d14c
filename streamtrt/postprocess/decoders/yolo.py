"""YOLO heads: YOLOv8/YOLO11 ``[B, 4+C, N]`` and YOLOv5 ``[B, N, 5+C]`` (boxes as cx, cy, w, h)."""

from __future__ import annotations

import math
from typing import Mapping, Optional

import numpy as np

from .base import Candidates, OutputDecoder, Shapes, best_class, confident_rows, cxcywh_to_xyxy, register_decoder


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


@register_decoder
class YoloV8Decoder(_SingleOutputDecoder):
    """``[B, 4+C, N]``: cx, cy, w, h then C class scores (no objectness).

    Pose exports append K*3 rows (``[B, 4+C+K*3, N]``: x, y in input pixels and a sigmoid visibility
    per keypoint, Ultralytics ``Pose.kpts_decode``); segmentation exports append P mask coefficients
    and add a ``[B, P, h, w]`` prototype output: see :meth:`with_extra`."""

    name = "yolov8"
    kpt_shape: Optional[tuple[int, int]] = None
    protos: Optional[str] = None  # segmentation: the prototype output, whose C rows follow the class scores

    @classmethod
    def with_extra(cls, shapes, num_classes: int, kpt_shape: Optional[tuple[int, int]] = None,
                   extra: int = 0) -> Optional["YoloV8Decoder"]:
        """The decoder for a head with ``extra`` rows after the class scores (``K*D`` keypoint rows
        when ``kpt_shape`` is given), on the first 3-D output of that height."""
        rows = 4 + num_classes + (kpt_shape[0] * kpt_shape[1] if kpt_shape else extra)
        for name, shape in shapes.items():
            if len(shape) == 3 and shape[1] == rows and shape[2] > rows:
                dec = cls(name, num_classes)
                dec.kpt_shape = tuple(kpt_shape) if kpt_shape else None
                if extra and not kpt_shape:
                    protos = [n for n, s in shapes.items() if len(s) == 4 and s[1] == extra]
                    dec.protos = protos[0] if len(protos) == 1 else None
                return dec
        return None

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
        nc = self.num_classes
        protos_all = np.asarray(outputs[self.protos], np.float32) if self.protos else None
        for b, item in enumerate(np.asarray(outputs[self.output], np.float32)):
            rows = item.T  # (N, 4+C[+extra])
            keep, scores, ids = confident_rows(rows[:, 4:4 + nc], score_threshold)
            kpts = None
            if self.kpt_shape:
                k, d = self.kpt_shape
                kpts = rows[keep, 4 + nc:4 + nc + k * d].reshape(-1, k, d)
                if d == 2:  # no visibility column: every keypoint counts as seen
                    kpts = np.concatenate([kpts, np.ones((len(kpts), k, 1), np.float32)], axis=2)
            cand = Candidates(cxcywh_to_xyxy(rows[keep, :4]), scores, ids, kpts)
            if protos_all is not None:
                cand.mask_coeffs, cand.protos = rows[keep, 4 + nc:], protos_all[b]
            result.append(cand)
        return result


@register_decoder
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
