"""What every source yields: decoded host frames with their index and timestamp."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Optional

import numpy as np


@dataclass
class Frame:
    """One decoded frame: ``image`` is HxWx3 uint8 BGR, in displayed orientation.

    ``timestamp``: seconds since the stream's first frame, never decreasing. ``pts`` and
    ``time_base``: the frame's presentation timestamp as stored in the file (``pts * time_base``
    seconds; ``pts`` is ``None`` where the stream has none, e.g. a raw ``.h264``), so a record can
    be traced back to the file. ``source_file``: for image sources, the file, relative to the folder.
    """

    image: np.ndarray
    index: int
    timestamp: Optional[float]
    pts: Optional[int] = None
    time_base: Optional[Fraction] = None
    source_file: Optional[str] = None


@dataclass
class SourceInfo:
    """What is known about a source before decoding."""

    stream_id: str
    uri: str
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    frame_count: Optional[int] = None
    """Frames the source will yield; see ``frame_count_estimated``."""
    codec: Optional[str] = None
    is_live: bool = False
    frame_count_estimated: bool = False
    """``frame_count`` is a guess (duration x rate), not a count from the container's index: fine
    for a progress bar, never a reason to report frames as undecodable."""
    rotation: int = 0
    """Counterclockwise degrees (0, 90, 180, 270) the decoded picture is turned to show it as
    players do (the display matrix; ffprobe's ``rotation`` modulo 360): displayed =
    ``np.rot90(decoded, rotation // 90)``, then mirrored left-right if ``mirror``. ``width`` and
    ``height`` are the displayed size; CPU sources yield frames already turned. 0 (and no mirror)
    with ``sources[].orientation: ignore``."""
    mirror: bool = False
    """The display matrix also flips the picture left-right (after ``rotation``)."""


@dataclass
class SourceStats:
    """Counters a source keeps while decoding."""

    decoded: int = 0
    bad_frames: int = 0
    """Frames that could not be decoded: what the decoder or demuxer rejected, and (once the source
    reached its own end) frames an exact frame count promised that the source did not hold."""
    errors: list[str] = field(default_factory=list)
    decode_errors: int = 0
    """Of ``bad_frames``, those the decoder or demuxer really rejected, counted as they happen: all a
    run stopped early (a signal) can tell."""


class FrameSource(abc.ABC):
    """An iterable of :class:`Frame`. Call :meth:`close` (or use ``with``) when done."""

    info: SourceInfo
    stats: SourceStats

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:
        """Release files and decoders; safe to call twice."""

    def bind_stop(self, stop, abort) -> None:
        """Also end (a reconnect wait, or between frames) when ``stop`` or ``abort`` (events) is
        set; sources that never wait ignore it."""

    def status(self) -> dict:
        """Supervision counters of a live source (``state``, ``reconnects``, ``frames_lost``,
        ``error``, ``decoder``...); empty for other sources."""
        return {}

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
