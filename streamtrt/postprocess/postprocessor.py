"""Raw outputs -> per-frame :class:`Detections` in source pixels."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from ..config import PostprocessConfig
from ..preprocess.spec import Geometry
from .classes import resolve_class_filter
from .decoders import OutputDecoder
from .detections import Detections
from .nms import batched_nms


class Postprocessor:
    """Decode, threshold, filter classes, per-class NMS, keep the best ``max_detections``, map back."""

    def __init__(self, decoder: OutputDecoder, class_names: list[str], cfg: PostprocessConfig,
                 candidate_threshold: Optional[float] = None, input_hw: Optional[tuple[int, int]] = None):
        self.decoder = decoder
        self.input_hw = input_hw  # model input (height, width): needed for segmentation masks
        self.class_names = class_names
        self.cfg = cfg
        # A tracker also wants low-score detections (its second association stage).
        self.threshold = min(cfg.score_threshold, candidate_threshold) if candidate_threshold is not None \
            else cfg.score_threshold
        self.class_filter: Optional[np.ndarray] = None
        if cfg.classes:
            self.class_filter = np.array(sorted(resolve_class_filter(cfg.classes, class_names)), np.int64)

    def __call__(self, outputs: Mapping[str, np.ndarray], geometries: Sequence[Geometry],
                 sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """``sizes`` holds each frame's (height, width)."""
        cfg = self.cfg
        results = []
        for cand, geom, (h, w) in zip(self.decoder.decode(outputs, self.threshold), geometries, sizes):
            boxes, scores, ids = cand.xyxy, cand.scores, cand.class_ids.astype(np.int64)
            valid = (ids >= 0) & (ids < len(self.class_names))
            if self.class_filter is not None:
                valid &= np.isin(ids, self.class_filter)
            boxes, scores, ids = boxes[valid], scores[valid], ids[valid]
            if self.decoder.applies_nms:
                order = np.argsort(-scores, kind="stable")
            else:
                order = batched_nms(boxes, scores, ids, cfg.iou_threshold)
            order = order[: cfg.max_detections]
            xyxy = geom.to_source(boxes[order], h, w)
            kpts = None
            if cand.keypoints is not None:
                kpts = cand.keypoints[valid][order].astype(np.float32)
                kpts[..., 0] = np.clip((kpts[..., 0] - geom.pad_x) / geom.scale_x, 0, w)
                kpts[..., 1] = np.clip((kpts[..., 1] - geom.pad_y) / geom.scale_y, 0, h)
            masks = None
            if cand.mask_coeffs is not None and cand.protos is not None:
                from .masks import instance_masks

                input_hw = self.decoder.input_hw or self.input_hw
                masks = instance_masks(cand.mask_coeffs[valid][order], cand.protos, boxes[order], input_hw,
                                       geom, (h, w))
            results.append(Detections(xyxy, scores[order], ids[order], [self.class_names[i] for i in ids[order]],
                                      keypoints=kpts, masks=masks))
        return results
