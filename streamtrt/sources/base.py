"""What every source yields (:class:`Frame`) and the interface every source implements (:class:`FrameSource`)."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator, Optional

from ..tensors import FrameImage, image_on_device


@dataclass
class Frame:
    """One decoded frame, in displayed orientation.

    ``image``: ``uint8`` ``(H, W, 3)`` in BGR channel order: a numpy array in host memory, or, for
    sources decoding on NVDEC (``live.decoder: nvdec``), a CuPy array of the same shape, dtype and
    order on that GPU (:attr:`on_device` tells which; ``sources.nvdec.to_host_bgr`` copies it back).

    ``timestamp``: seconds since the stream's first frame, never decreasing. ``pts`` and
    ``time_base``: the frame's presentation timestamp as stored in the file (``pts * time_base``
    seconds; ``pts`` is ``None`` where the stream has none, e.g. a raw ``.h264``), so a record can
    be traced back to the file. ``source_file``: for image sources, the file, relative to the folder.
    """

    image: FrameImage
    index: int
    timestamp: Optional[float]
    pts: Optional[int] = None
    time_base: Optional[Fraction] = None
    source_file: Optional[str] = None

    @property
    def on_device(self) -> bool:
        """``image`` is a CuPy array in GPU memory (NVDEC), not a numpy array on the host."""
        return image_on_device(self.image)


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
    """A source of :class:`Frame`: iterate it (once) for frames; call :meth:`close` (or use ``with``) when done.

    Every method the pipeline calls is declared here. A source kind registers itself in
    :data:`streamtrt.sources.registry.SOURCES`. Iteration raises :class:`~streamtrt.errors.SourceError`
    (or :class:`~streamtrt.errors.DecodeError`) for inputs that cannot be read; frames that fail to
    decode are counted in :attr:`stats` and skipped. Live sources reconnect on their own and end only
    when stopped (:meth:`bind_stop`, :meth:`close`) or when they give up (``live.max_reconnects``).
    """

    kind: str = ""
    """The source kind (``file``, ``images``, ``rtsp``, ...); classes serving several kinds set it per instance."""
    live: bool = False
    """Frames come in real time (a camera or stream) rather than as fast as they are read."""
    info: SourceInfo
    """What is known before decoding (size, rate, frame count); may fill in at the first frame for live sources."""
    stats: SourceStats
    """Counters kept while decoding (decoded, bad frames, errors)."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:
        """Release files and decoders and stop a running iteration; safe to call twice, from any thread."""

    def bind_stop(self, *events: Any) -> None:
        """Also stop when any of ``events`` (``threading.Event``: the pipeline passes its stop and
        abort events) is set, including during a reconnect backoff. Default: nothing to wait on."""

    def status(self) -> dict[str, Any]:
        """Supervisor counters for status and metrics: ``state``, ``reconnects``, ``attempts``,
        ``frames_lost``, ``error``, ``down_for_s`` and, where it can change per connection,
        ``decoder`` (``cpu``/``nvdec``). Default: ``{}`` (a source without supervision)."""
        return {}

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
