"""Typed source URIs: what the user wrote, parsed into a kind and a location.

Shorthands follow jetson-utils: a bare path is a file, a folder or glob is a set of images,
``/dev/videoN`` or a bare camera index is a V4L2 camera.
"""

from __future__ import annotations

import glob as _glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from ..errors import SourceError, UnsupportedSourceError
from ..redact import redact

SourceKind = Literal["file", "images", "rtsp", "http", "v4l2", "csi", "gstreamer", "ffmpeg"]

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".ts", ".m2ts", ".mov", ".m4v", ".webm", ".h264", ".h265", ".hevc"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
LIVE_KINDS = frozenset({"rtsp", "http", "v4l2", "csi", "gstreamer", "ffmpeg"})
GSTREAMER_LIVE_KINDS = frozenset({"csi", "gstreamer"})  # read through OpenCV's GStreamer backend
FFMPEG_LIVE_KINDS = LIVE_KINDS - GSTREAMER_LIVE_KINDS  # demuxed by FFmpeg (PyAV)

@dataclass(frozen=True)
class SourceURI:
    """A parsed source.

    ``location`` is a filesystem path for ``file``, a folder or glob pattern for ``images``,
    the URL for network sources, a device path for ``v4l2``, a sensor id for ``csi``, a
    GStreamer pipeline for ``gstreamer`` (``gst://...``) and an FFmpeg input for ``ffmpeg``
    (``ffmpeg://...``, with ``format`` and ``options`` in the source's config).
    """

    kind: SourceKind
    location: str
    raw: str

    @property
    def is_live(self) -> bool:
        return self.kind in LIVE_KINDS

    @property
    def display(self) -> str:
        """The URI as it may be shown in logs, status lines and records (credentials hidden)."""
        return redact(self.raw)

    def __str__(self) -> str:
        return self.display


def parse_source_uri(text: str) -> SourceURI:
    """Parse a source string into a :class:`SourceURI`; raise for unknown schemes."""
    raw = str(text).strip()
    if not raw:
        raise SourceError("empty source")
    scheme_match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", raw)
    if scheme_match:
        scheme = scheme_match.group(1).lower()
        rest = raw[scheme_match.end():]
        if scheme in ("gst", "gstreamer", "ffmpeg"):
            if not rest.strip():
                raise SourceError(f"{redact(raw)}: empty {scheme}:// input")
            return SourceURI("gstreamer" if scheme.startswith("gst") else "ffmpeg", rest.strip(), raw)
        if scheme == "file":
            # Not urlsplit: a path may hold '[', '#' or '?' that are not URL syntax here.
            path = rest[len("localhost"):] if rest.startswith("localhost/") else rest
            return _classify_path(unquote(path), raw)
        parts = urlsplit(raw)
        if scheme in ("rtsp", "rtsps", "rtspt"):
            return SourceURI("rtsp", raw, raw)
        if scheme in ("http", "https"):
            return SourceURI("http", raw, raw)
        if scheme == "v4l2":
            device = parts.path or parts.netloc
            if device.isdigit():
                device = f"/dev/video{device}"
            return SourceURI("v4l2", device, raw)
        if scheme == "csi":
            sensor = parts.netloc or parts.path.lstrip("/") or "0"
            if not sensor.isdigit():
                raise SourceError(f"{redact(raw)}: csi:// expects a sensor index, e.g. csi://0")
            return SourceURI("csi", sensor, raw)
        raise UnsupportedSourceError(
            f"unsupported source scheme '{scheme}://' in {redact(raw)} "
            "(supported: file://, a path, an image folder or glob, rtsp://, http(s)://, v4l2://, csi://, "
            "gst://, ffmpeg://)"
        )
    if raw.isdigit():
        return SourceURI("v4l2", f"/dev/video{raw}", raw)
    if raw.startswith("/dev/video"):
        return SourceURI("v4l2", raw, raw)
    return _classify_path(raw, raw)


def _classify_path(path: str, raw: str) -> SourceURI:
    """A path that exists is taken as written (``[``, ``*``, spaces and all); only a path that does
    not exist may be a glob pattern of images."""
    p = Path(path).expanduser()
    if p.is_dir():
        return SourceURI("images", str(p), raw)
    if not p.exists() and _glob.has_magic(path):
        return SourceURI("images", path, raw)
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return SourceURI("images", str(p), raw)
    return SourceURI("file", str(p), raw)


def source_kind(text: str) -> SourceKind | None:
    """The kind of source a URI string names (``None`` if it cannot be parsed); paths are
    ``file`` or ``images``."""
    try:
        return parse_source_uri(text).kind
    except SourceError:
        return None
