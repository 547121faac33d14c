"""Decoded PyAV video frames -> BGR uint8 images, as players show them, at a constant cost.

Two per-frame habits of the obvious code (``vframe.to_ndarray(format="bgr24")`` then
``vframe.side_data`` for the display matrix) grew a 24/7 process:

- ``VideoFrame.to_ndarray(format=...)`` gives every frame its own ``VideoReformatter``, so a new
  swscale context, which (PyAV >= 14, FFmpeg >= 7.1) starts its own pool of slice threads, one per
  core, and joins them when the frame is freed: 2 threads created and joined per frame on a 2-core
  machine, 16 on a 16-core one.
- ``VideoFrame.side_data`` caches a container on the frame that refers back to the frame: a
  reference cycle. The frame, its pixels and that scaler with its threads then live until Python's
  cyclic collector runs, which for frames promoted to an older generation can take thousands of
  frames: the thread count swung between 168 and 1,083 on a 16-core GPU machine, and the resident
  size crept as the allocator's per-thread arenas filled and emptied.

:class:`BgrFrames` converts with one reformatter per decoding loop (its scaler, threads included,
is made once and reconfigured only if the frames change) and reads the display matrix from the
side data only when the frame's rotation angle (``VideoFrame.rotation``, read without creating
side-data objects) changes: once per connection for a fixed matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .orientation import frame_rotation, orient


class BgrFrames:
    """Call with a decoded PyAV ``VideoFrame``; returns its BGR uint8 image (H, W, 3), turned by
    the frame's display matrix when ``turn`` (``orientation: auto``). After a call, ``rotation``
    and ``mirror`` hold that frame's transform (0 and False without ``turn``).

    One per decoding loop: not thread-safe. The returned array may be a view of a frame buffer
    that the next call does not reuse (each conversion makes a new frame)."""

    def __init__(self, turn: bool = True):
        from av.video.reformatter import VideoReformatter

        self.turn = turn
        self.rotation, self.mirror = 0, False
        self._reformatter = VideoReformatter()
        self._angle: Any = None  # the last frame's rotation angle; None: no frame read yet

    def __call__(self, vframe: Any) -> np.ndarray:
        image = self._reformatter.reformat(vframe, format="bgr24").to_ndarray()
        if not self.turn:
            return image
        angle = getattr(vframe, "rotation", None)  # PyAV >= 13: no side-data objects made
        if angle is None or angle != self._angle:
            self._angle = angle
            self.rotation, self.mirror = frame_rotation(vframe)
        return orient(image, self.rotation, self.mirror)
