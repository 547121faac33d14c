"""Typed messages that travel between stages."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Optional

import numpy as np

from ..postprocess.detections import Detections
from ..preprocess.spec import Geometry


FRAME_SCHEMA = "streamtrt.frame/1"


@dataclass
class FrameMeta:
    """Where a frame came from: kept from source to sink."""

    stream_id: str
    index: int
    timestamp: Optional[float]
    height: int
    width: int
    started: float = 0.0
    """perf_counter() when the frame came out of the decoder (or was due, for a paced source)."""
    pts: Optional[int] = None
    """The frame's PTS in the file (video sources), in ``time_base`` units."""
    time_base: Optional[Fraction] = None
    source_file: Optional[str] = None
    """The image file (image sources), relative to the folder."""


@dataclass
class FrameBatch:
    """Decoded host frames (BGR uint8), waiting for preprocessing."""

    meta: list[FrameMeta]
    images: list[np.ndarray]
    started: float  # perf_counter() when decoding of the batch began


@dataclass
class TensorBatch:
    """A preprocessed batch: a host array or a device tensor, with each frame's geometry.

    ``release`` is set once the runner no longer needs a device tensor (DALI may reuse it).
    """

    meta: list[FrameMeta]
    tensor: Any
    geometries: list[Geometry]
    images: Optional[list[np.ndarray]]
    started: float
    release: Optional[threading.Event] = None


@dataclass
class OutputBatch:
    """Raw model outputs for a batch, on the host."""

    meta: list[FrameMeta]
    outputs: dict[str, np.ndarray]
    geometries: list[Geometry]
    images: Optional[list[np.ndarray]]
    started: float


@dataclass
class FrameResult:
    """What the pipeline yields per frame: detections in source pixels plus provenance."""

    stream_id: str
    frame_index: int
    timestamp: Optional[float]
    width: int
    height: int
    detections: Detections
    image: Optional[np.ndarray] = field(default=None, repr=False)
    latency_ms: float = 0.0
    events: list = field(default_factory=list)
    """Analytics events this frame produced (:class:`~streamtrt.analytics.Event`)."""
    analytics: Optional[dict] = field(default=None, repr=False)
    """Counts and occupancy after this frame, for sinks that draw them."""
    message_id: str = ""
    """Unique per record (run, stream, frame): receivers deduplicate at-least-once deliveries by it."""
    pts: Optional[int] = None
    """Where the frame came from in a video: its PTS as stored (``None`` where the stream has
    none, e.g. a raw ``.h264``), in units of ``time_base`` seconds."""
    time_base: Optional[Fraction] = None
    source_file: Optional[str] = None
    """Where the frame came from in an image source: the file, relative to the folder."""

    def to_record(self) -> dict[str, Any]:
        """The JSON Lines record of this frame."""
        record = {
            "schema": FRAME_SCHEMA,
            "stream_id": self.stream_id,
            "frame_index": self.frame_index,
            "timestamp": None if self.timestamp is None else round(self.timestamp, 6),
            "width": self.width,
            "height": self.height,
            "detections": self.detections.to_records(),
        }
        if self.source_file is not None:
            record["source_file"] = self.source_file
        else:
            record["pts"] = self.pts
            record["time_base"] = None if self.time_base is None else f"{self.time_base.numerator}/{self.time_base.denominator}"
        if self.message_id:
            record["message_id"] = self.message_id
        return record


@dataclass
class ResultBatch:
    results: list[FrameResult]


class EndOfStream:
    """Sent once by each stage after its last batch."""


@dataclass
class StageFailure:
    """Sent downstream when a stage fails; the consumer re-raises ``error``."""

    stage: str
    error: BaseException


EOS = EndOfStream()
