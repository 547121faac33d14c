"""The source kinds: ``SOURCES`` maps a kind name (``file``, ``rtsp``, ...) to a :class:`SourceKind`.

A source module declares each kind it serves in one statement::

    register_source_kind(SourceKind("rtsp", open_ffmpeg_live, schemes=("rtsp", "rtsps", "rtspt"), live=True,
                                    options=frozenset({"options", "format", "transport", "orientation"})))

and ``streamtrt/sources/__init__.py`` imports the module. :func:`~streamtrt.sources.uri.parse_source_uri`
finds a URI's kind by its scheme here, :func:`~streamtrt.sources.open_source` opens it with the
kind's ``open``, and :func:`~streamtrt.sources.options.check_source_options` refuses per-stream
options the kind would ignore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from ..registry import Registry

if TYPE_CHECKING:
    from .base import FrameSource
    from .uri import SourceURI

KIND_OPTIONS = ("options", "format", "transport", "pace", "fps", "orientation")
"""The ``sources[]`` keys that apply to some kinds only; each kind lists those it takes in ``options``."""


@dataclass(frozen=True)
class SourceKind:
    """How one kind of source is named, parsed and opened."""

    name: str
    """The kind (``SourceURI.kind``): ``file``, ``images``, ``rtsp``, ..."""
    open: Callable[..., "FrameSource"]
    """``open(uri: SourceURI, stream_id: str, *, threads: int | None, options: SourceConfig,
    live: LiveConfig, nvdec_device: int | None) -> FrameSource`` (CPU decode; ``nvdec_device``:
    decode on that GPU where the kind can). Raises :class:`~streamtrt.errors.SourceError`."""
    schemes: tuple[str, ...] = ()
    """URI schemes (``rtsp`` for ``rtsp://...``) that name this kind."""
    live: bool = False
    """A live source by default (reconnects; stale frames dropped); ``sources[].live`` overrides."""
    options: frozenset[str] = frozenset()
    """Which of :data:`KIND_OPTIONS` apply; any other set to a non-default value is refused."""
    description: Optional[str] = None
    """How messages name it (``a video file``); default ``a <name> source``."""
    parse: Optional[Callable[[str, str, str], "SourceURI"]] = None
    """``parse(scheme, rest, raw) -> SourceURI`` for ``scheme://rest`` (``raw``: the whole text);
    default: ``SourceURI(name, raw, raw)``. Raises :class:`~streamtrt.errors.SourceError` for a malformed URI."""
    bare: Optional[Callable[[str], Optional["SourceURI"]]] = None
    """``bare(text) -> SourceURI | None``: claim a string without a scheme (``0`` is camera 0); paths
    that no kind claims are files or image sets."""
    nvdec: bool = False
    """Demuxed by FFmpeg, so its video may decode on NVDEC (``live.decoder``)."""

    @property
    def what(self) -> str:
        return self.description or f"a {self.name} source"


SOURCES: Registry[SourceKind] = Registry("source kind")
SCHEMES: Registry[SourceKind] = Registry("source scheme")


def register_source_kind(kind: SourceKind) -> SourceKind:
    """Register ``kind`` under its name and each of its schemes."""
    SOURCES.add(kind.name, kind)
    for scheme in kind.schemes:
        SCHEMES.add(scheme, kind)
    return kind
