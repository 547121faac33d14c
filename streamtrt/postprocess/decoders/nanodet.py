"""NanoDet heads (GFL-style: class scores + distance distributions per anchor point).

Two export layouts are recognised:

* one score and one box output per stride (NanoDet-m, the sample model): ``[B, N, C]`` sigmoid
  scores and ``[B, N, 4*(R+1)]`` distributions, with cell centres at ``(x + 0.5) * stride``;
* a single ``[B, N, C + 4*(R+1)]`` output over strides 8..32 or 8..64 (NanoDet-Plus ONNX
  export), with cell centres at ``x * stride``.

Distances are the expected value of a softmax over the R+1 bins, times the stride.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np

from .base import Candidates, OutputDecoder, Shapes, confident_rows, register_decoder

_STRIDES = (4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class Level:
    stride: int
    grid_w: int
    grid_h: int
    scores: str  # output name (multi-output layout) or "" (single output)
    boxes: str


def _grid(input_hw: tuple[int, int], stride: int) -> tuple[int, int]:
    return math.ceil(input_hw[1] / stride), math.ceil(input_hw[0] / stride)


def _stride_for(n: int, input_hw: tuple[int, int]) -> Optional[int]:
    for s in _STRIDES:
        gw, gh = _grid(input_hw, s)
        if gw * gh == n:
            return s
    return None


def _centers(level: Level, offset: float) -> np.ndarray:
    ys, xs = np.mgrid[0 : level.grid_h, 0 : level.grid_w]
    return (np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32) + offset) * level.stride


def _distances(dist: np.ndarray, bins: int) -> np.ndarray:
    """(N, 4*bins) logits -> (N, 4) expected distances in bins."""
    d = dist.reshape(-1, 4, bins)
    d = np.exp(d - d.max(axis=2, keepdims=True))
    d /= d.sum(axis=2, keepdims=True)
    return d @ np.arange(bins, dtype=np.float32)


@register_decoder
class NanoDetDecoder(OutputDecoder):
    name = "nanodet"

    def __init__(self, levels: list[Level], bins: int, num_classes: int, single_output: str = "",
                 center_offset: float = 0.5):
        self.levels = levels
        self.bins = bins
        self.num_classes = num_classes
        self.single_output = single_output
        self.center_offset = center_offset
        self._centers = [_centers(lv, center_offset) for lv in levels]

    @classmethod
    def match(cls, shapes: Shapes, input_hw, num_classes):
        return cls._match_multi(shapes, input_hw, num_classes) or cls._match_single(shapes, input_hw, num_classes)

    @classmethod
    def _match_multi(cls, shapes, input_hw, num_classes):
        three_d = {n: s for n, s in shapes.items() if len(s) == 3}
        if len(three_d) != len(shapes) or len(shapes) < 2 or len(shapes) % 2:
            return None
        score_outs = {s[1]: n for n, s in three_d.items() if s[2] == num_classes}
        box_outs = {s[1]: n for n, s in three_d.items() if s[2] != num_classes and s[2] % 4 == 0}
        if len(score_outs) != len(shapes) // 2 or set(score_outs) != set(box_outs):
            return None
        bins = {three_d[n][2] // 4 for n in box_outs.values()}
        if len(bins) != 1:
            return None
        levels = []
        for n_points in sorted(score_outs, reverse=True):
            stride = _stride_for(n_points, input_hw)
            if stride is None:
                return None
            gw, gh = _grid(input_hw, stride)
            levels.append(Level(stride, gw, gh, score_outs[n_points], box_outs[n_points]))
        return cls(levels, bins.pop(), num_classes, center_offset=0.5)

    @classmethod
    def _match_single(cls, shapes, input_hw, num_classes):
        if len(shapes) != 1:
            return None
        name, shape = next(iter(shapes.items()))
        if len(shape) != 3 or shape[2] <= num_classes or (shape[2] - num_classes) % 4:
            return None
        bins = (shape[2] - num_classes) // 4
        for strides in ((8, 16, 32), (8, 16, 32, 64)):
            grids = [_grid(input_hw, s) for s in strides]
            if sum(w * h for w, h in grids) == shape[1] and bins >= 2:
                levels = [Level(s, w, h, "", "") for s, (w, h) in zip(strides, grids)]
                return cls(levels, bins, num_classes, single_output=name, center_offset=0.0)
        return None

    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float) -> list[Candidates]:
        per_level = []
        if self.single_output:
            out = np.asarray(outputs[self.single_output], np.float32)
            start = 0
            for lv in self.levels:
                n = lv.grid_w * lv.grid_h
                chunk = out[:, start : start + n]
                per_level.append((chunk[..., : self.num_classes], chunk[..., self.num_classes :]))
                start += n
        else:
            for lv in self.levels:
                per_level.append((np.asarray(outputs[lv.scores], np.float32), np.asarray(outputs[lv.boxes], np.float32)))
        batch = per_level[0][0].shape[0]
        result = []
        for b in range(batch):
            boxes, scores, ids = [], [], []
            for lv, centers, (cls_out, box_out) in zip(self.levels, self._centers, per_level):
                keep, s, c = confident_rows(cls_out[b], score_threshold)
                if not len(keep):
                    continue
                dist = _distances(box_out[b][keep], self.bins) * lv.stride
                ctr = centers[keep]
                boxes.append(np.concatenate([ctr - dist[:, :2], ctr + dist[:, 2:]], axis=1))
                scores.append(s)
                ids.append(c)
            if boxes:
                result.append(Candidates(np.concatenate(boxes), np.concatenate(scores), np.concatenate(ids)))
            else:
                result.append(Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)))
        return result
