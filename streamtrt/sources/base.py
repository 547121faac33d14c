"""What every source yields: decoded host frames with their index and timestamp."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np


@dataclass
class Frame:
    """One decoded frame: ``image`` is HxWx3 uint8 BGR."""

    image: np.ndarray
    index: int
    timestamp: Optional[float]


@dataclass
class SourceInfo:
    """What is known about a source before decoding."""

    stream_id: str
    uri: str
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    frame_count: Optional[int] = None
    codec: Optional[str] = None
    is_live: bool = False


@dataclass
class SourceStats:
    """Counters a source keeps while decoding."""

    decoded: int = 0
    bad_frames: int = 0
    errors: list[str] = field(default_factory=list)


class FrameSource(abc.ABC):
    """An iterable of :class:`Frame`. Call :meth:`close` (or use ``with``) when done."""

    info: SourceInfo
    stats: SourceStats

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:
        """Release files and decoders; safe to call twice."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
