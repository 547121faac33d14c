"""Multi-object tracking (ByteTrack-style) per stream."""

from .bytetrack import ByteTracker, iou_matrix
from .kalman import KalmanBoxFilter

__all__ = ["ByteTracker", "KalmanBoxFilter", "iou_matrix"]
