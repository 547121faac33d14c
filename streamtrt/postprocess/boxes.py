"""Box geometry shared by NMS (host and device), the tracker's matching and detector comparison."""

from __future__ import annotations

from typing import Any

import numpy as np


def box_iou(a: Any, b: Any, xp: Any = np) -> Any:
    """Pairwise intersection over union of xyxy boxes, in float64.

    ``a``: (..., N, 4), ``b``: (..., M, 4) with the same leading (batch) dimensions, or flat
    sequences that reshape to (N, 4) (an empty list is zero boxes). Returns (..., N, M). A box with
    ``x2 < x1`` or ``y2 < y1`` has zero area; a pair whose union is zero has IoU 0. ``xp`` is the array
    module: :mod:`numpy` on the host, ``cupy`` for device arrays (the result stays on the device).
    """
    a = xp.asarray(a, dtype=xp.float64)
    b = xp.asarray(b, dtype=xp.float64)
    if a.ndim < 2:
        a = a.reshape(-1, 4)
    if b.ndim < 2:
        b = b.reshape(-1, 4)
    lt = xp.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = xp.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = xp.maximum(rb - lt, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    size_a = xp.maximum(a[..., 2:] - a[..., :2], 0.0)
    size_b = xp.maximum(b[..., 2:] - b[..., :2], 0.0)
    area_a = size_a[..., 0] * size_a[..., 1]
    area_b = size_b[..., 0] * size_b[..., 1]
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    positive = union > 0
    return xp.where(positive, inter / xp.where(positive, union, 1.0), 0.0)
