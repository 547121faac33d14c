"""Decode and NMS on the GPU (CuPy), so only final detections cross to the host.

The same code runs on NumPy (that is how the CPU tests check it against the host
:class:`~streamtrt.postprocess.postprocessor.Postprocessor`, which it matches: same candidate
order, float64 IoU, the same greedy suppression). Greedy NMS is computed without a sequential
loop over boxes: ``keep_i = valid_i and no kept j < i overlaps i above the IoU threshold``, by
fixed-point iteration of that rule over a suppression matrix; the first ``k`` entries are final
after ``k`` rounds, so it ends in at most ``top_k`` rounds (a few in practice).

Supported layout: NanoDet (one score and one distribution output per stride, or NanoDet-Plus's
single output). ``top_k`` (default 1000) candidates per frame enter NMS, highest scores first,
like TensorRT's EfficientNMS; the host path has no such cap.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ..tensors import is_device_tensor
from .boxes import box_iou
from .decoders.nanodet import NanoDetDecoder

FINAL_OUTPUTS = ("final_boxes", "final_scores", "final_class_ids", "final_counts")


def cupy_available() -> bool:
    try:
        import cupy  # noqa: F401

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


class DeviceNanoDetPostprocessor:
    """NanoDet outputs (device or host arrays) -> the best ``max_detections`` per frame after
    per-class NMS, as host arrays named :data:`FINAL_OUTPUTS`."""

    def __init__(self, decoder: NanoDetDecoder, score_threshold: float, iou_threshold: float,
                 max_detections: int, class_filter: Optional[np.ndarray] = None, num_names: Optional[int] = None,
                 top_k: int = 1000, xp: Any = np):
        self.decoder = decoder
        self.threshold = float(score_threshold)
        self.iou = float(iou_threshold)
        self.max_det = int(max_detections)
        self.top_k = int(top_k)
        self.xp = xp
        centers = np.concatenate(decoder._centers).astype(np.float32)
        strides = np.concatenate([np.full(lv.grid_w * lv.grid_h, lv.stride, np.float32) for lv in decoder.levels])
        self.centers = xp.asarray(centers)
        self.strides = xp.asarray(strides)
        self.bin_values = xp.arange(decoder.bins, dtype=xp.float32)
        self.num_names = num_names
        self.class_filter = None if class_filter is None else xp.asarray(np.asarray(class_filter, np.int64))

    def _concat(self, outputs: Mapping[str, Any]):
        xp, d = self.xp, self.decoder
        if d.single_output:
            out = xp.asarray(outputs[d.single_output], dtype=xp.float32)
            return out[..., : d.num_classes], out[..., d.num_classes:]
        scores = xp.concatenate([xp.asarray(outputs[lv.scores], dtype=xp.float32) for lv in d.levels], axis=1)
        dists = xp.concatenate([xp.asarray(outputs[lv.boxes], dtype=xp.float32) for lv in d.levels], axis=1)
        return scores, dists

    def __call__(self, outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        xp = self.xp
        scores, dists = self._concat(outputs)  # (B, N, C), (B, N, 4*bins)
        batch, n, _ = scores.shape
        best = scores.max(axis=2)
        ids = scores.argmax(axis=2).astype(xp.int64)
        valid = best > self.threshold
        if self.num_names is not None:
            valid &= ids < self.num_names
        if self.class_filter is not None:
            valid &= xp.isin(ids, self.class_filter)
        # Only as many candidates as the busiest frame has (one small sync), at most top_k.
        k = max(1, min(self.top_k, int(valid.sum(axis=1).max())))
        masked = xp.where(valid, best, xp.float32(-1.0))
        order = xp.argsort(-masked, axis=1, kind="stable")[:, :k]  # (B, k), best first, ties by anchor
        rows = xp.arange(batch)[:, None]
        cand_scores = masked[rows, order]
        cand_valid = cand_scores > self.threshold
        cand_ids = ids[rows, order]
        bins = self.decoder.bins
        logits = dists[rows, order].reshape(batch, k, 4, bins)
        e = xp.exp(logits - logits.max(axis=3, keepdims=True))
        e /= e.sum(axis=3, keepdims=True)
        dist = (e @ self.bin_values) * self.strides[order][..., None]  # (B, k, 4)
        ctr = self.centers[order]  # (B, k, 2)
        boxes = xp.concatenate([ctr - dist[..., :2], ctr + dist[..., 2:]], axis=2)
        keep = self._greedy_nms(boxes, cand_ids, cand_valid)
        # kept boxes stay in score order: rank them and scatter the first max_det into place
        rank = xp.cumsum(keep, axis=1) - 1
        take = keep & (rank < self.max_det)
        counts = take.sum(axis=1)
        m = self.max_det
        out_boxes = xp.zeros((batch, m, 4), xp.float32)
        out_scores = xp.zeros((batch, m), xp.float32)
        out_ids = xp.zeros((batch, m), xp.int64)
        b_idx, c_idx = xp.nonzero(take)
        slot = rank[b_idx, c_idx]
        out_boxes[b_idx, slot] = boxes[b_idx, c_idx]
        out_scores[b_idx, slot] = cand_scores[b_idx, c_idx]
        out_ids[b_idx, slot] = cand_ids[b_idx, c_idx]
        host = _to_host(xp, (out_boxes, out_scores, out_ids, counts))
        return dict(zip(FINAL_OUTPUTS, host))

    def _greedy_nms(self, boxes, ids, valid):
        xp = self.xp
        iou = box_iou(boxes, boxes, xp=xp)  # (B, k, k)
        k = boxes.shape[1]
        earlier = xp.tril(xp.ones((k, k), dtype=bool), -1)  # [i, j]: j comes before i
        suppresses = (iou > self.iou) & (ids[:, :, None] == ids[:, None, :]) & earlier[None]
        suppresses &= valid[:, None, :]
        keep = valid.copy()
        for _ in range(k):
            blocked = (suppresses & keep[:, None, :]).any(axis=2)
            new_keep = valid & ~blocked
            if bool((new_keep == keep).all()):
                break
            keep = new_keep
        return keep


def as_cupy(value: Any, dtype) -> Any:
    """A device tensor (an ONNX Runtime ``OrtValue``, or a :class:`~streamtrt.tensors.DeviceTensor`)
    viewed as a CuPy array without a copy; ``value`` stays its owner."""
    import cupy

    if is_device_tensor(value):
        ptr, shape = value.ptr, tuple(value.shape)
    else:  # an OrtValue: data_ptr() and shape() are methods
        ptr, shape = value.data_ptr(), tuple(value.shape())
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    mem = cupy.cuda.UnownedMemory(int(ptr), nbytes, value)
    return cupy.ndarray(shape, dtype, cupy.cuda.MemoryPointer(mem, 0))


def _to_host(xp, arrays):
    if xp is np:
        return [np.asarray(a) for a in arrays]
    return [xp.asnumpy(a) for a in arrays]


class FinalDetectionsDecoder:
    """Reads what :class:`DeviceNanoDetPostprocessor` produced (already thresholded and NMS'd)."""

    name = "device-final"
    applies_nms = True

    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float):
        from .decoders.base import Candidates

        boxes, scores, ids, counts = (outputs[k] for k in FINAL_OUTPUTS)
        return [Candidates(boxes[i, :c], scores[i, :c], ids[i, :c]) for i, c in enumerate(counts.astype(int))]
