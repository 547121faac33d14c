"""Instance masks of YOLO segmentation heads, and their compact form in records (RLE).

Ultralytics' segment head gives each detection 32 mask coefficients and each image 32 prototype
maps at 1/4 of the input size. As ``ultralytics.utils.ops.process_mask(upsample=True)`` and
``scale_masks`` do: mask logits = coefficients @ prototypes, upsampled (bilinear) to the input size,
kept where above 0 (sigmoid above 0.5) and inside the detection's box; then the letterbox border is
removed and the binary mask resized (bilinear, kept above 0.5) to the frame.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..preprocess.spec import Geometry


def instance_masks(coeffs: np.ndarray, protos: np.ndarray, boxes_in: np.ndarray, input_hw: tuple[int, int],
                   geom: Geometry, frame_hw: tuple[int, int]) -> np.ndarray:
    """Boolean (N, H, W) frame-sized masks.

    ``coeffs`` (N, C); ``protos`` (C, h, w); ``boxes_in`` (N, 4) xyxy in model-input pixels."""
    n = len(coeffs)
    fh, fw = frame_hw
    out = np.zeros((n, fh, fw), bool)
    if n == 0:
        return out
    c, mh, mw = protos.shape
    logits = (coeffs.astype(np.float32) @ protos.reshape(c, -1).astype(np.float32)).reshape(n, mh, mw)
    ih, iw = input_hw
    cols, rows = np.arange(iw)[None, :], np.arange(ih)[:, None]
    y0, x0 = geom.pad_y, geom.pad_x
    y1, x1 = y0 + geom.resized_height, x0 + geom.resized_width
    for i in range(n):
        up = cv2.resize(logits[i], (iw, ih), interpolation=cv2.INTER_LINEAR)
        bx1, by1, bx2, by2 = boxes_in[i]
        inside = (cols >= bx1) & (cols < bx2) & (rows >= by1) & (rows < by2)
        binary = ((up > 0) & inside).astype(np.float32)
        out[i] = cv2.resize(binary[y0:y1, x0:x1], (fw, fh), interpolation=cv2.INTER_LINEAR) > 0.5
    return out


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE: ``{"size": [h, w], "counts": [...]}``, run lengths over the mask in
    column-major order, starting with a run of zeros (possibly 0 long)."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """The inverse of :func:`mask_to_rle`."""
    h, w = rle["size"]
    values = np.zeros(len(rle["counts"]), bool)
    values[1::2] = True
    return np.repeat(values, rle["counts"]).reshape((h, w), order="F")
