"""Anchors of boxes and point-in-polygon tests."""

from __future__ import annotations

import numpy as np


def anchors(xyxy: np.ndarray, kind: str) -> np.ndarray:
    """(N, 2) points: the bottom centre (where a person stands) or the centre of each box."""
    cx = (xyxy[:, 0] + xyxy[:, 2]) / 2
    y = xyxy[:, 3] if kind == "bottom_center" else (xyxy[:, 1] + xyxy[:, 3]) / 2
    return np.stack([cx, y], axis=1) if len(xyxy) else np.zeros((0, 2))


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd ray casting: which of ``points`` (N, 2) lie inside ``polygon`` (M, 2)."""
    x, y = points[:, 0][:, None], points[:, 1][:, None]
    x1, y1 = polygon[:, 0][None, :], polygon[:, 1][None, :]
    x2, y2 = np.roll(polygon[:, 0], -1)[None, :], np.roll(polygon[:, 1], -1)[None, :]
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xcross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return np.count_nonzero(crosses & (x < xcross), axis=1) % 2 == 1


def side_of_line(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sign of the cross product: > 0 left of start->end, < 0 right (image coordinates)."""
    d = end - start
    return d[0] * (points[:, 1] - start[1]) - d[1] * (points[:, 0] - start[0])


def crossing(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    """+1 if the move p->q crosses segment a-b from its positive side (``side_of_line`` >= 0 counts as
    positive, so touching the line is not crossing it twice), -1 the other way, 0 if it does not cross."""
    def orient(u, v, w):
        return (v[0] - u[0]) * (w[1] - u[1]) - (v[1] - u[1]) * (w[0] - u[0])

    before, after = orient(a, b, p) >= 0, orient(a, b, q) >= 0
    if before == after:
        return 0
    if orient(p, q, a) * orient(p, q, b) > 0:  # passes beyond an end of the segment
        return 0
    return 1 if before else -1


def signed_distance_to_line(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(N,) distance in pixels of ``points`` (N, 2) from the infinite line through start and end,
    with the sign of :func:`side_of_line`."""
    length = float(np.hypot(*(end - start)))
    return side_of_line(points, start, end) / max(length, 1e-9)


def distance_to_boundary(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) distance in pixels from each of ``points`` (N, 2) to the nearest edge of ``polygon`` (M, 2)."""
    a = polygon[None, :, :]
    b = np.roll(polygon, -1, axis=0)[None, :, :]
    p = points[:, None, :]
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=-1) / np.maximum(np.sum(ab * ab, axis=-1), 1e-12), 0.0, 1.0)
    nearest = a + t[..., None] * ab
    return np.min(np.hypot(*(p - nearest).transpose(2, 0, 1)), axis=1)


def signed_depth_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) distance from the polygon's edge in pixels: positive inside, negative outside."""
    if len(points) == 0:
        return np.zeros(0)
    depth = distance_to_boundary(points, polygon)
    return np.where(inside_polygon(points, polygon), depth, -depth)
