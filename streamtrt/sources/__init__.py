"""Sources: where frames come from (files, image folders; live streams follow)."""

from __future__ import annotations

from typing import Optional

from ..errors import UnsupportedSourceError
from .base import Frame, FrameSource, SourceInfo, SourceStats
from .file import VideoFileSource, decode_error_for, probe_video
from .images import ImageFolderSource
from .uri import SourceURI, parse_source_uri, redact

__all__ = [
    "Frame", "FrameSource", "SourceInfo", "SourceStats", "SourceURI", "VideoFileSource",
    "ImageFolderSource", "open_source", "parse_source_uri", "redact", "decode_error_for", "probe_video",
]


def open_source(uri: SourceURI, stream_id: str = "0", threads: Optional[int] = None) -> FrameSource:
    """Open a CPU-decoding source for a parsed URI."""
    if uri.kind == "file":
        return VideoFileSource(uri.location, uri.display, stream_id, threads=threads)
    if uri.kind == "images":
        return ImageFolderSource(uri.location, uri.display, stream_id)
    raise UnsupportedSourceError(
        f"{uri.display}: {uri.kind} sources are parsed but not supported in this release yet"
    )
