"""Sinks, named by URI: ``jsonl:PATH`` (``-`` for stdout), ``csv:PATH``, ``video:PATH``,
``summary:PATH``, ``mqtt://host:port/topic`` (``mqtts://`` with TLS), ``http(s)://...`` webhooks,
``python:MODULE:CLASS`` (a custom sink), or a bare path whose suffix picks the kind. Any sink takes
filters in its query: ``?classes=person,car&min_score=0.5&streams=0``; network sinks also
``outbox=PATH`` (their durable queue, one process at a time), ``drain=S`` (seconds to keep
delivering at exit; default ``delivery.drain_s``) and, for webhooks, ``timeout=S``.

Each kind registers itself in :data:`~streamtrt.sinks.registry.SINKS`; the module imports below
are the registration lines of the built-in kinds."""

from __future__ import annotations

from typing import Any, Optional

from ..errors import SinkError
from .base import Sink, SinkStats
from .filters import FilteredSink, SinkFilter
from .registry import SINKS, SinkKind, SinkSpec, parse_sink_uri, register_sink_kind, sink_usage
from .jsonl import JsonlSink  # registers jsonl
from .csv import CsvSink  # registers csv
from .video import AnnotatedVideoSink  # registers video
from .summary import SummarySink  # registers summary
from . import mqtt  # noqa: F401 - registers mqtt, mqtts
from . import webhook  # noqa: F401 - registers http, https
from . import custom  # noqa: F401 - registers python:

__all__ = ["Sink", "SinkKind", "SinkSpec", "SinkStats", "SINKS", "JsonlSink", "CsvSink", "AnnotatedVideoSink",
           "SummarySink", "open_sink", "register_sink_kind", "sink_filter", "sink_usage", "is_summary_uri"]


def sink_filter(uri: str) -> Optional[SinkFilter]:
    """The filter a sink URI's query sets (None without one), parsed as :func:`open_sink` does."""
    filters = parse_sink_uri(uri).filters
    return SinkFilter.from_query(filters, parse_sink_uri(uri).spec.display) if filters else None


def open_sink(uri: str, delivery: Any = None, key_path: Optional[str] = None) -> Sink:
    """Create the sink a URI names (wrapped in its filter when the URI has one). ``delivery``
    (a :class:`~streamtrt.config.DeliveryConfig`) gives network sinks their defaults; ``key_path``
    (``sinks.0``) names the URI's place in the config in errors.

    Raises :class:`~streamtrt.errors.SinkError` for an unknown kind, option or bad target;
    :class:`~streamtrt.errors.ConfigError` for a custom (``python:``) sink that cannot be loaded."""
    parsed = parse_sink_uri(uri, delivery, key_path)
    sink = parsed.kind.open(parsed.spec)
    if sink.display == Sink.display:
        sink.display = parsed.spec.display
    if parsed.filters:
        rule = SinkFilter.from_query(parsed.filters, parsed.spec.display)
        if rule.active:
            return FilteredSink(sink, rule)
    return sink


def is_summary_uri(uri: str) -> bool:
    """Whether a sink URI names a summary sink (``summary:PATH``, or a ``.json`` path), told as
    :func:`open_sink` tells it but without creating any sink."""
    try:
        return parse_sink_uri(uri).kind.name == "summary"
    except SinkError:
        return False
