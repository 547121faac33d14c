"""Sources: where frames come from (files, image folders, live streams).

Each source kind registers itself in :data:`~streamtrt.sources.registry.SOURCES` (its URI
schemes, whether it is live, the ``sources[]`` options it takes, how it opens); the module
imports below are the registration lines of the built-in kinds.
"""

from __future__ import annotations

from typing import Optional

from ..config import LiveConfig, SourceConfig
from ..errors import UnsupportedSourceError
from .base import Frame, FrameSource, SourceInfo, SourceStats
from .registry import SOURCES, SourceKind, register_source_kind
from .uri import SourceURI, parse_source_uri
from .options import check_config_sources, check_source_options
from .file import VideoFileSource, decode_error_for, probe_video  # registers file
from .images import ImageFolderSource  # registers images
from . import live as _live_kinds  # noqa: F401 - registers rtsp, http, v4l2, ffmpeg
from . import gstreamer  # noqa: F401 - registers csi, gstreamer

__all__ = [
    "Frame", "FrameSource", "SOURCES", "SourceInfo", "SourceKind", "SourceStats", "SourceURI", "VideoFileSource",
    "ImageFolderSource", "check_config_sources", "check_source_options", "open_source", "parse_source_uri",
    "register_source_kind", "decode_error_for", "probe_video",
]


def open_source(uri: SourceURI, stream_id: str = "0", threads: Optional[int] = None,
                options: Optional[SourceConfig] = None, live: Optional[LiveConfig] = None,
                nvdec_device: Optional[int] = None) -> FrameSource:
    """Open a source for a parsed URI with its kind's ``open`` (decoding on the CPU).

    ``options`` is the stream's :class:`~streamtrt.config.SourceConfig`, ``live`` the run's
    :class:`~streamtrt.config.LiveConfig` (supervision of live sources). ``nvdec_device``: FFmpeg
    live sources decode on that GPU's NVDEC instead (frames then are CuPy arrays).
    Raises :class:`~streamtrt.errors.SourceError` (subclasses for unsupported or undecodable inputs)."""
    kind = SOURCES.get(uri.kind)
    if kind is None:
        raise UnsupportedSourceError(f"{uri.display}: {uri.kind} sources are not supported")
    return kind.open(uri, stream_id, threads=threads, options=options or SourceConfig(uri=uri.raw),
                     live=live or LiveConfig(), nvdec_device=nvdec_device)
