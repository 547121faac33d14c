"""A constant-velocity Kalman filter over boxes as (cx, cy, aspect, height), as in SORT/ByteTrack
(noise weights 1/20 for position and 1/160 for velocity, scaled by the box height, as ByteTrack's
``kalman_filter.py``). Every method works on one box or on a stack of N boxes at once."""

from __future__ import annotations

import numpy as np

_POS_WEIGHT = 1.0 / 20
_VEL_WEIGHT = 1.0 / 160

_MOTION = np.eye(8)
for _i in range(4):
    _MOTION[_i, 4 + _i] = 1.0
_OBSERVE = np.eye(4, 8)


def xyxy_to_xyah(box: np.ndarray) -> np.ndarray:
    """(..., 4) x1, y1, x2, y2 -> (..., 4) centre x, centre y, width / height, height (float64)."""
    box = np.asarray(box, np.float64)
    w, h = box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]
    return np.stack([box[..., 0] + w / 2, box[..., 1] + h / 2, w / np.maximum(h, 1e-6), h], axis=-1)


def xyah_to_xyxy(state: np.ndarray) -> np.ndarray:
    """(..., >=4) states -> (..., 4) x1, y1, x2, y2 (float32)."""
    state = np.asarray(state)
    cx, cy, a, h = state[..., 0], state[..., 1], state[..., 2], state[..., 3]
    w = a * h
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).astype(np.float32)


def _diag(std: np.ndarray) -> np.ndarray:
    """(..., K) standard deviations -> (..., K, K) diagonal covariances."""
    out = np.zeros(std.shape + (std.shape[-1],))
    idx = np.arange(std.shape[-1])
    out[..., idx, idx] = np.square(std)
    return out


class KalmanBoxFilter:
    """State: (cx, cy, a, h) and their velocities; noise scales with the box height.

    ``mean`` is (8,) or (N, 8), ``cov`` (8, 8) or (N, 8, 8), ``measurement`` (4,) or (N, 4), float64."""

    motion = _MOTION
    observe = _OBSERVE

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = np.asarray(measurement, np.float64)
        mean = np.concatenate([m, np.zeros_like(m)], axis=-1)
        h = m[..., 3:4]
        one = np.ones_like(h)
        std = np.concatenate([2 * _POS_WEIGHT * h, 2 * _POS_WEIGHT * h, 1e-2 * one, 2 * _POS_WEIGHT * h,
                              10 * _VEL_WEIGHT * h, 10 * _VEL_WEIGHT * h, 1e-5 * one, 10 * _VEL_WEIGHT * h], axis=-1)
        return mean, _diag(std)

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = mean[..., 3:4]
        one = np.ones_like(h)
        std = np.concatenate([_POS_WEIGHT * h, _POS_WEIGHT * h, 1e-2 * one, _POS_WEIGHT * h,
                              _VEL_WEIGHT * h, _VEL_WEIGHT * h, 1e-5 * one, _VEL_WEIGHT * h], axis=-1)
        mean = mean @ _MOTION.T
        cov = _MOTION @ cov @ _MOTION.T + _diag(std)
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = mean[..., 3:4]
        one = np.ones_like(h)
        std = np.concatenate([_POS_WEIGHT * h, _POS_WEIGHT * h, 1e-1 * one, _POS_WEIGHT * h], axis=-1)
        projected = mean[..., :4]
        pht = cov[..., :, :4]                                   # cov H^T (H picks the first 4 rows)
        s = cov[..., :4, :4] + _diag(std)
        gain = np.swapaxes(np.linalg.solve(s, np.swapaxes(pht, -1, -2)), -1, -2)  # cov H^T S^-1
        innovation = np.asarray(measurement, np.float64) - projected
        mean = mean + (gain @ innovation[..., None])[..., 0]
        cov = cov - gain @ s @ np.swapaxes(gain, -1, -2)
        return mean, cov
