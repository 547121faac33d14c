"""Typed source URIs: what the user wrote, parsed into a kind and a location.

Shorthands follow jetson-utils: a bare path is a file, a folder or glob is a set of images,
``/dev/videoN`` or a bare camera index is a V4L2 camera.
"""

from __future__ import annotations

import glob as _glob
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from ..errors import SourceError, UnsupportedSourceError
from ..redact import redact
from .registry import SCHEMES, SOURCES

SourceKind = str
"""A registered source kind name (:data:`~.registry.SOURCES`): ``file``, ``images``, ``rtsp``, ..."""

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".ts", ".m2ts", ".mov", ".m4v", ".webm", ".h264", ".h265", ".hevc"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
# The built-in live kinds. Ask the registry instead (``SourceURI.is_live``, ``SourceURI.nvdec``):
# these stay for code written before it, and do not list kinds added later.
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
        """The kind is live by default (``sources[].live`` may override)."""
        return SOURCES.lookup(self.kind).live

    @property
    def nvdec(self) -> bool:
        """The kind is demuxed by FFmpeg, so its video may decode on NVDEC (``live.decoder``)."""
        return SOURCES.lookup(self.kind).nvdec

    @property
    def display(self) -> str:
        """The URI as it may be shown in logs, status lines and records (credentials hidden)."""
        return redact(self.raw)

    def __str__(self) -> str:
        return self.display


def parse_source_uri(text: str) -> SourceURI:
    """Parse a source string into a :class:`SourceURI`.

    ``scheme://...`` goes to the kind that registered the scheme (:data:`~.registry.SCHEMES`); a
    string without a scheme to the first kind whose ``bare`` claims it (a camera index), else it is
    a path: a file, or an image folder or glob. Raises :class:`~streamtrt.errors.UnsupportedSourceError`
    for an unknown scheme, :class:`~streamtrt.errors.SourceError` for a malformed URI."""
    raw = str(text).strip()
    if not raw:
        raise SourceError("empty source")
    scheme_match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", raw)
    if scheme_match:
        scheme = scheme_match.group(1).lower()
        kind = SCHEMES.get(scheme)
        if kind is None:
            raise UnsupportedSourceError(
                f"unsupported source scheme '{scheme}://' in {redact(raw)} "
                f"(supported: a path, an image folder or glob, {', '.join(s + '://' for s in SCHEMES.names())})"
            )
        if kind.parse is not None:
            return kind.parse(scheme, raw[scheme_match.end():], raw)
        return SourceURI(kind.name, raw, raw)
    for _, kind in SOURCES.items():
        claimed = kind.bare(raw) if kind.bare is not None else None
        if claimed is not None:
            return claimed
    return classify_path(raw, raw)


def parse_path_uri(scheme: str, rest: str, raw: str) -> SourceURI:
    """``file://PATH`` (also ``file://localhost/PATH``): a file or an image set, as a bare path is."""
    # Not urlsplit: a path may hold '[', '#' or '?' that are not URL syntax here.
    path = rest[len("localhost"):] if rest.startswith("localhost/") else rest
    return classify_path(unquote(path), raw)


def classify_path(path: str, raw: str) -> SourceURI:
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
