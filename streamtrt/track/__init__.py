"""Multi-object tracking (ByteTrack-style) per stream."""

from .bytetrack import ByteTracker
from .kalman import KalmanBoxFilter

__all__ = ["ByteTracker", "KalmanBoxFilter"]
