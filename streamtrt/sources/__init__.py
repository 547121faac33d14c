"""Sources: where frames come from (files, image folders, live streams)."""

from __future__ import annotations

from typing import Optional

from ..errors import UnsupportedSourceError
from .base import Frame, FrameSource, SourceInfo, SourceStats
from .file import VideoFileSource, decode_error_for, probe_video
from .images import ImageFolderSource
from .uri import LIVE_KINDS, SourceURI, parse_source_uri

__all__ = [
    "Frame", "FrameSource", "SourceInfo", "SourceStats", "SourceURI", "VideoFileSource",
    "ImageFolderSource", "open_source", "parse_source_uri", "decode_error_for", "probe_video",
]


def open_source(uri: SourceURI, stream_id: str = "0", threads: Optional[int] = None,
                options=None, live=None, nvdec_device: Optional[int] = None) -> FrameSource:
    """Open a source for a parsed URI, decoding on the CPU.

    ``options`` is the stream's :class:`~streamtrt.config.SourceConfig`, ``live`` the run's
    :class:`~streamtrt.config.LiveConfig` (supervision of live sources). ``nvdec_device``: FFmpeg
    live sources decode on that GPU's NVDEC instead (frames then are CuPy arrays)."""
    orientation = getattr(options, "orientation", "auto")
    fps = getattr(options, "fps", None)
    if uri.kind == "file":
        return VideoFileSource(uri.location, uri.display, stream_id, threads=threads, orientation=orientation, fps=fps)
    if uri.kind == "images":
        return ImageFolderSource(uri.location, uri.display, stream_id, fps=fps, orientation=orientation)
    if uri.kind in LIVE_KINDS:
        from .live import open_live_source

        return open_live_source(uri, stream_id, options, live, nvdec_device)
    raise UnsupportedSourceError(f"{uri.display}: {uri.kind} sources are not supported")
