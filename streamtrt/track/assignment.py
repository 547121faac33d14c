"""Optimal assignment of tracks to detections: SciPy's ``linear_sum_assignment`` (the shortest
augmenting path method of Crouse 2016, in C), as Ultralytics and supervision use ``lap``/SciPy."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Row/column pairs minimising the total cost; rectangular (N, M) matrices allowed, min(N, M)
    pairs returned, sorted by row. ``cost`` must be finite."""
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols)]
