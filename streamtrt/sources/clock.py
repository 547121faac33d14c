"""Presentation time of decoded frames: seconds since the stream's first frame, never backwards.

A frame's time is its PTS (as stored in the file, so variable frame rate stays as it is) minus the
first frame's. Where the PTS clock breaks, the time continues from the previous frame's time plus
one frame duration, and the break is logged once per stream:

- the clock goes back or stands still: concatenated MPEG-TS, NVR segments joined end to end, a
  33-bit MPEG-TS counter wrapping around;
- in formats whose timestamps may jump (FFmpeg's ``AVFMT_TS_DISCONT``: MPEG-TS, FLV, ...), the
  clock leaps forward by more than ``jump_s`` (10 s, FFmpeg's ``dts_delta_threshold``).

In other formats (MP4, MKV) a forward gap is real time that passed without frames: it is kept,
and the first one longer than ``jump_s`` is logged.

Frames without a PTS (raw ``.h264``/``.h265`` elementary streams) are timed by the frame rate.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Optional

log = logging.getLogger("streamtrt")

DTS_DELTA_THRESHOLD_S = 10.0  # ffmpeg's -dts_delta_threshold default


class PresentationClock:
    """Maps ``(pts, duration)`` of each frame in output order to a monotonic timestamp."""

    def __init__(self, time_base: Optional[Fraction], rate: Optional[float], display: str = "",
                 may_jump: bool = False, jump_s: float = DTS_DELTA_THRESHOLD_S):
        self.time_base = time_base
        self.rate = rate if rate and rate > 0 else None
        self.display = display
        self.may_jump = may_jump
        self.jump_s = jump_s
        self.breaks = 0
        self.gaps = 0  # forward gaps kept (and logged once) where the format has no discontinuities
        self._anchor_pts: Optional[int] = None  # PTS at which the current segment starts
        self._anchor_t = 0.0  # its time
        self._anchor_frames = 0  # frames since the anchor (for frames without PTS)
        self._last: Optional[float] = None
        self._last_step: Optional[float] = None

    def _default_step(self) -> float:
        if self._last_step:
            return self._last_step
        return 1.0 / self.rate if self.rate else 0.0

    def __call__(self, pts: Optional[int], duration: Optional[int] = None) -> float:
        """The timestamp of the next frame; ``duration`` in ``time_base`` units (0/None: unknown)."""
        tb = self.time_base
        step = float(duration * tb) if duration and tb else None
        if pts is None or tb is None:
            if self._last is None:
                t = 0.0
                self._anchor_pts, self._anchor_t, self._anchor_frames = None, 0.0, 0
            elif self.rate and self._anchor_pts is None:
                self._anchor_frames += 1
                t = self._anchor_t + self._anchor_frames / self.rate
            else:
                t = self._last + (step or self._default_step())
                self._anchor_pts, self._anchor_t, self._anchor_frames = None, t, 0
        elif self._anchor_pts is None and self._last is None:
            self._anchor_pts, self._anchor_t = pts, 0.0
            t = 0.0
        else:
            if self._anchor_pts is None:  # PTS after frames without: start a segment here
                self._anchor_pts, self._anchor_t = pts, self._last + self._default_step()
            t = self._anchor_t + float((pts - self._anchor_pts) * tb)
            gap = t - self._last
            if gap <= 0 or (self.may_jump and gap > self.jump_s):
                resumed = self._last + self._default_step()
                self._note_break(gap, resumed)
                self._anchor_pts, self._anchor_t = pts, resumed
                t = resumed
            elif gap > self.jump_s and not self.gaps:  # kept: the file says nothing was recorded meanwhile
                self.gaps += 1
                log.warning("%s: no frame for %.3f s after %.3f s (a gap in the recording; timestamps keep it)",
                            self.display, gap, self._last)
        if step:
            self._last_step = step
        elif self._last is not None and t > self._last:
            self._last_step = t - self._last
        self._last = t
        return t

    def _note_break(self, gap: float, resumed: float) -> None:
        self.breaks += 1
        if self.breaks == 1:
            what = "goes back" if gap < 0 else ("stands still" if gap == 0 else "jumps forward")
            log.warning("%s: the PTS clock %s by %.3f s at %.3f s (a joined or reset stream); "
                        "timestamps continue from %.3f s (further breaks in this stream are not logged)",
                        self.display, what, abs(gap), self._last, resumed)
