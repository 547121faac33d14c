"""TensorFlow Object Detection API exports (``exporter_main_v2.py``, converted with tf2onnx).

Outputs, by name: ``num_detections [B]``, ``detection_boxes [B, K, 4]`` as normalised
``ymin, xmin, ymax, xmax``, ``detection_scores [B, K]`` and ``detection_classes [B, K]`` (label-map
ids, which start at 1; stored as float). Detections are already suppressed. See
https://github.com/tensorflow/models/blob/master/research/object_detection/g3doc/tf2.md.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from .base import Candidates, OutputDecoder, register_decoder

LABEL_OFFSET = 1
"""TF label maps number classes from 1 (0 is the background): class id = label id - 1, so
``model.classes`` lists the label map's names in id order."""


def _find(shapes, suffix: str) -> Optional[str]:
    hits = [n for n in shapes if n.split(":")[0].endswith(suffix)]
    return hits[0] if len(hits) == 1 else None


@register_decoder
class TFObjectDetectionDecoder(OutputDecoder):
    """``detection_boxes`` (normalised yxyx), ``detection_scores``, ``detection_classes``, ``num_detections``."""

    name = "tfod"
    applies_nms = True

    def __init__(self, input_hw: tuple[int, int], num: str, boxes: str, scores: str, classes: str):
        self.input_hw = input_hw
        self.num, self.boxes, self.scores, self.classes = num, boxes, scores, classes

    @classmethod
    def match(cls, shapes, input_hw, num_classes):
        names = [_find(shapes, s) for s in ("num_detections", "detection_boxes", "detection_scores",
                                            "detection_classes")]
        if any(n is None for n in names):
            return None
        num, boxes, scores, classes = names
        if len(shapes[boxes]) != 3 or shapes[boxes][2] != 4:
            return None
        k = shapes[boxes][1]
        if shapes[scores][1:] != (k,) or shapes[classes][1:] != (k,):
            return None
        return cls(input_hw, num, boxes, scores, classes)

    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float) -> list[Candidates]:
        h, w = self.input_hw
        counts = np.asarray(outputs[self.num]).reshape(-1).astype(np.int64)
        result = []
        for b, count in enumerate(counts):
            yxyx = np.asarray(outputs[self.boxes][b, :count], np.float32)
            scores = np.asarray(outputs[self.scores][b, :count], np.float32)
            labels = np.rint(np.asarray(outputs[self.classes][b, :count])).astype(np.int64)
            keep = scores > score_threshold
            xyxy = yxyx[keep][:, [1, 0, 3, 2]] * np.array([w, h, w, h], np.float32)
            result.append(Candidates(xyxy, scores[keep], labels[keep] - LABEL_OFFSET))
        return result
