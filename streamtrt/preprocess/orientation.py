"""Orientation as players show it: the display matrix's rotation, and the geometry it implies.

``rotation`` here is always in **clockwise** degrees to apply to the stored frame for display
(0, 90, 180 or 270), the convention of the legacy ``rotate`` tag. FFmpeg's display matrix angle
(``av_display_rotation_get``, ffprobe's ``rotation``, PyAV's ``VideoFrame.rotation``) is
counter-clockwise: ffprobe ``rotation=90`` is ``270`` here, and ffmpeg's autorotated output of
such a file equals ``np.rot90(stored, 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


def normalize_rotation(degrees: Optional[float]) -> int:
    """``degrees`` (clockwise, any sign) as 0, 90, 180 or 270; ``ValueError`` if not a multiple of 90
    (within a degree, as display matrices store it as floats)."""
    if not degrees:
        return 0
    quarter = round(float(degrees) / 90)
    if abs(float(degrees) - 90 * quarter) > 1:
        raise ValueError(f"rotation {degrees} is not a multiple of 90 degrees")
    return (90 * quarter) % 360


def rot90_k(rotation: int) -> int:
    """The ``k`` of ``np.rot90`` (counter-clockwise quarter turns) for a clockwise ``rotation``."""
    return (-normalize_rotation(rotation) // 90) % 4


def display_size(height: int, width: int, rotation: int) -> tuple[int, int]:
    """(height, width) of a stored ``height`` x ``width`` frame once rotated: swapped for 90/270."""
    return (width, height) if normalize_rotation(rotation) in (90, 270) else (height, width)


def rotate_frame(image: np.ndarray, rotation: int) -> np.ndarray:
    """A stored (H, W, ...) NumPy frame as displayed (contiguous; the same array when ``rotation`` is 0)."""
    k = rot90_k(rotation)
    return image if k == 0 else np.ascontiguousarray(np.rot90(image, k))


def clockwise_from_display_matrix(ccw_degrees: Optional[float]) -> int:
    """FFmpeg's counter-clockwise display-matrix angle (PyAV ``frame.rotation``) as clockwise degrees."""
    return normalize_rotation(-(ccw_degrees or 0))


@dataclass(frozen=True)
class StoredVideo:
    """A file's first video stream as stored: ``height`` x ``width`` before rotation."""

    height: int
    width: int
    rotation: int  # clockwise degrees to apply for display

    @property
    def display_size(self) -> tuple[int, int]:
        return display_size(self.height, self.width, self.rotation)


def probe_stored_video(path: str) -> StoredVideo:
    """The stored size and display rotation of ``path``'s first video stream, read from its first
    decoded frame (PyAV attaches the container's display matrix to frames). Raises PyAV's errors."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            return StoredVideo(frame.height, frame.width, clockwise_from_display_matrix(frame.rotation))
        ctx = stream.codec_context
        return StoredVideo(ctx.height, ctx.width, 0)
