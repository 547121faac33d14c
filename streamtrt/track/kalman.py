"""A constant-velocity Kalman filter over boxes as (cx, cy, aspect, height), as in SORT/ByteTrack."""

from __future__ import annotations

import numpy as np

_POS_WEIGHT = 1.0 / 20
_VEL_WEIGHT = 1.0 / 160


def xyxy_to_xyah(box: np.ndarray) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + w / 2, box[1] + h / 2, w / max(h, 1e-6), h], np.float64)


def xyah_to_xyxy(state: np.ndarray) -> np.ndarray:
    cx, cy, a, h = state[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


class KalmanBoxFilter:
    """State: (cx, cy, a, h) and their velocities; noise scales with the box height."""

    def __init__(self) -> None:
        self.motion = np.eye(8)
        for i in range(4):
            self.motion[i, 4 + i] = 1.0
        self.observe = np.eye(4, 8)

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = np.r_[measurement, np.zeros(4)]
        h = measurement[3]
        std = [2 * _POS_WEIGHT * h, 2 * _POS_WEIGHT * h, 1e-2, 2 * _POS_WEIGHT * h,
               10 * _VEL_WEIGHT * h, 10 * _VEL_WEIGHT * h, 1e-5, 10 * _VEL_WEIGHT * h]
        return mean, np.diag(np.square(std))

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = mean[3]
        std = [_POS_WEIGHT * h, _POS_WEIGHT * h, 1e-2, _POS_WEIGHT * h,
               _VEL_WEIGHT * h, _VEL_WEIGHT * h, 1e-5, _VEL_WEIGHT * h]
        mean = self.motion @ mean
        cov = self.motion @ cov @ self.motion.T + np.diag(np.square(std))
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = mean[3]
        std = [_POS_WEIGHT * h, _POS_WEIGHT * h, 1e-1, _POS_WEIGHT * h]
        projected = self.observe @ mean
        s = self.observe @ cov @ self.observe.T + np.diag(np.square(std))
        gain = np.linalg.solve(s, self.observe @ cov).T  # cov H^T S^-1
        mean = mean + gain @ (measurement - projected)
        cov = cov - gain @ s @ gain.T
        return mean, cov
