"""Sinks, named by URI: ``jsonl:PATH`` (``-`` for stdout), ``video:PATH``, ``summary:PATH``,
or a bare path whose suffix picks the kind."""

from __future__ import annotations

from pathlib import Path

from ..errors import SinkError
from .base import Sink
from .jsonl import JsonlSink
from .summary import SummarySink
from .video import AnnotatedVideoSink

_KINDS = {"jsonl": JsonlSink, "video": AnnotatedVideoSink, "summary": SummarySink}
_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "summary", ".mp4": "video", ".m4v": "video",
              ".mov": "video", ".avi": "video", ".mkv": "video"}

__all__ = ["Sink", "JsonlSink", "AnnotatedVideoSink", "SummarySink", "open_sink"]


def open_sink(uri: str) -> Sink:
    """Create the sink a URI names."""
    text = uri.strip()
    if text in ("-", "stdout", "jsonl:", "jsonl:-"):
        return JsonlSink("-")
    kind, sep, rest = text.partition(":")
    if sep and kind in _KINDS and not rest.startswith("//"):
        if not rest:
            raise SinkError(f"sink {uri!r}: missing path after '{kind}:'")
        return _KINDS[kind](rest)
    if sep and "://" in text and len(kind) > 1:
        raise SinkError(f"sink {uri!r}: unsupported scheme '{kind}://' (supported: jsonl:, video:, summary:, a path)")
    kind = _BY_SUFFIX.get(Path(text).suffix.lower())
    if kind is None:
        raise SinkError(
            f"sink {uri!r}: cannot tell the kind from the name; use jsonl:PATH, video:PATH or summary:PATH"
        )
    return _KINDS[kind](text)
