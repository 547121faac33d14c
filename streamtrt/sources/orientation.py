"""Display orientation: the display matrix (rotation side data) applied as players apply it.

One convention everywhere (CPU and GPU paths): ``rotation`` is **counterclockwise** degrees
(0, 90, 180, 270) as ffprobe reports it, and ``mirror`` a left-right flip after turning:
displayed = ``np.rot90(decoded, rotation // 90)``, then ``np.fliplr`` if ``mirror``
(:class:`~streamtrt.sources.base.SourceInfo`). The DALI graph that does the same on the GPU is
``streamtrt.preprocess.dali.orient_sequence``.

Phones store portrait video as landscape frames plus a display matrix saying how to turn them.
FFmpeg's command-line tool (``autorotate``, fftools ``ffmpeg_filter.c``) and players turn the
frames before showing them; so does streamtrt, with the same rules: the matrix's rotation
(``av_display_rotation_get``) snapped to a quarter turn, plus the flips the matrix asks for.
"""

from __future__ import annotations

import logging
import math
import struct
from typing import Any, Optional

import cv2
import numpy as np

log = logging.getLogger("streamtrt")

_DISPLAYMATRIX = "DISPLAYMATRIX"

# (counterclockwise quarter turns k, mirror) -> the OpenCV operations that give
# np.fliplr(np.rot90(image, k)) if mirror else np.rot90(image, k)
_ROTATE = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def rotation_from_matrix(matrix: bytes) -> tuple[int, bool]:
    """``(rotation, mirror)`` for a 3x3 display matrix (36 bytes: nine int32, 16.16 fixed point).

    ``rotation`` is in counterclockwise degrees (0, 90, 180, 270) as ffprobe reports it (modulo
    360); ``mirror``: flip left-right after turning. Follows FFmpeg's fftools (``get_rotation``
    and the ``transpose``/``hflip``/``vflip`` choice in ``ffmpeg_filter.c``); an angle that is
    not a quarter turn is snapped to the nearest one (FFmpeg would rotate by the exact angle).
    """
    m = struct.unpack("<9i", matrix[:36])
    a, b, c, d = (v / 65536.0 for v in (m[0], m[1], m[3], m[4]))
    s0, s1 = math.hypot(a, c), math.hypot(b, d)
    if s0 == 0 or s1 == 0:
        return 0, False
    ccw = -math.degrees(math.atan2(b / s1, a / s0))  # av_display_rotation_get
    theta = -round(ccw)  # get_rotation: clockwise degrees
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - round(theta / 90) * 90) >= 1.0:
        snapped = round(theta / 90) * 90 % 360
        log.warning("display matrix rotates by %.0f degrees; turning by %d instead", theta, snapped)
        theta = snapped
    theta = round(theta / 90) * 90 % 360
    if theta == 90:  # transpose: cclock_flip if m[3] > 0 else clock
        return 270, m[3] > 0
    if theta == 270:  # transpose: clock_flip if m[3] < 0 else cclock
        return 90, m[3] < 0
    if theta == 180:  # hflip if m[0] < 0, vflip if m[4] < 0
        h, v = m[0] < 0, m[4] < 0
        return (180 if v else 0), h != v
    return (180, True) if m[4] < 0 else (0, False)  # a vflip alone


def frame_rotation(vframe) -> tuple[int, bool]:
    """``(rotation, mirror)`` of a decoded PyAV frame, from its display-matrix side data."""
    try:
        side = vframe.side_data
        if not len(side):
            return 0, False
        for sd in side:
            if getattr(sd.type, "name", "") == _DISPLAYMATRIX:
                return rotation_from_matrix(bytes(sd))
    except (AttributeError, struct.error, ValueError):
        pass
    return 0, False


def orient(image: np.ndarray, rotation: int, mirror: bool = False) -> np.ndarray:
    """``image`` (H, W, C) turned ``rotation`` degrees counterclockwise, then flipped left-right
    if ``mirror``: what a player shows. Returns ``image`` itself when there is nothing to do."""
    k = (rotation // 90) % 4
    if k:
        image = cv2.rotate(image, _ROTATE[k])
    if mirror:
        image = cv2.flip(image, 1)
    return image


def orient_array(image: Any, rotation: int, mirror: bool = False, xp: Any = np) -> Any:
    """:func:`orient` for any array module with NumPy's ``rot90`` (``xp``: ``numpy`` or ``cupy``):
    ``image`` (H, W, ...) turned ``rotation`` degrees counterclockwise, then flipped left-right if
    ``mirror``. Returns a view (not contiguous unless nothing is done)."""
    k = (rotation // 90) % 4
    if k:
        image = xp.rot90(image, k)
    return image[:, ::-1] if mirror else image


def displayed_size(width: Optional[int], height: Optional[int], rotation: int) -> tuple[Optional[int], Optional[int]]:
    """``(width, height)`` as displayed: swapped by a quarter turn."""
    return (height, width) if rotation % 180 == 90 else (width, height)


def stored_size(width: Optional[int], height: Optional[int], rotation: int) -> tuple[Optional[int], Optional[int]]:
    """``(width, height)`` as stored in the file (what a decoder gives) for a displayed size:
    :func:`displayed_size` undone (a quarter turn swaps them back)."""
    return displayed_size(width, height, rotation)


def stream_display_transform(stream: Any, packet: Any) -> tuple[int, bool]:
    """``(rotation, mirror)`` of a PyAV video ``stream``, read by decoding ``packet`` (a keyframe)
    on the CPU with the stream's own decoder, which is reset afterwards (a later decode must start
    at a keyframe again).

    For decoders that do not go through PyAV's frames (NVDEC): PyAV (up to 18) cannot read a
    stream's side data (``VideoStream`` can only *write* a display matrix), but FFmpeg's decoder
    attaches the stream's display matrix to every frame it decodes. ``(0, False)`` if the packet
    gives no frame (logged)."""
    import av

    ctx = stream.codec_context
    try:
        frames = list(ctx.decode(packet)) or list(ctx.decode(None))
    except av.error.FFmpegError as exc:
        frames = []
        log.warning("could not read the stream's display matrix (%s); frames are shown as stored", exc)
    finally:
        try:
            ctx.flush_buffers()
        except av.error.FFmpegError:
            pass
    return frame_rotation(frames[0]) if frames else (0, False)
