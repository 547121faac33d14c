"""Sinks, named by URI: ``jsonl:PATH`` (``-`` for stdout), ``csv:PATH``, ``video:PATH``,
``summary:PATH``, ``mqtt://host:port/topic`` (``mqtts://`` with TLS), ``http(s)://...`` webhooks,
or a bare path whose suffix picks the kind. Any sink takes filters in its query:
``?classes=person,car&min_score=0.5&streams=0``; network sinks also ``outbox=PATH`` (their
durable queue, one process at a time), ``drain=S`` (seconds to keep delivering at exit; default
``delivery.drain_s``) and, for webhooks, ``timeout=S``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
from urllib.parse import parse_qsl, urlencode

from ..errors import SinkError
from ..redact import redact
from .base import Sink
from .csv import CsvSink
from .filters import FILTER_KEYS, FilteredSink, SinkFilter
from .jsonl import JsonlSink
from .summary import SummarySink
from .video import AnnotatedVideoSink

_KINDS = {"jsonl": JsonlSink, "csv": CsvSink, "video": AnnotatedVideoSink, "summary": SummarySink}
_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".json": "summary", ".mp4": "video",
              ".m4v": "video", ".mov": "video", ".avi": "video", ".mkv": "video"}
_NETWORK_KEYS = ("outbox", "timeout", "drain")

__all__ = ["Sink", "JsonlSink", "CsvSink", "AnnotatedVideoSink", "SummarySink", "open_sink", "sink_filter",
           "is_summary_uri"]


def _split_query(text: str, keep_unknown: bool) -> tuple[str, dict[str, str], str]:
    """(the URI without streamtrt's own options, those options, the filter query)."""
    base, sep, query = text.partition("?")
    if not sep:
        return text, {}, ""
    pairs = parse_qsl(query, keep_blank_values=True)
    ours = [(k, v) for k, v in pairs if k in FILTER_KEYS or k in _NETWORK_KEYS]
    rest = [(k, v) for k, v in pairs if k not in FILTER_KEYS and k not in _NETWORK_KEYS]
    if rest and not keep_unknown:
        raise SinkError(f"sink {redact(text)!r}: unknown option(s) {', '.join(sorted({k for k, _ in rest}))} "
                        f"(filters: {', '.join(FILTER_KEYS)})")
    filters = urlencode([(k, v) for k, v in ours if k in FILTER_KEYS])
    options = {k: v for k, v in ours if k in _NETWORK_KEYS}
    return (base + ("?" + urlencode(rest) if rest else "")), options, filters


def sink_filter(uri: str) -> "SinkFilter | None":
    """The filter a sink URI's query sets (None without one), parsed as :func:`open_sink` does."""
    text = uri.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    _, _, filters = _split_query(text, keep_unknown=scheme in ("http", "https", "mqtt", "mqtts"))
    return SinkFilter.from_query(filters, redact(uri)) if filters else None


def open_sink(uri: str, delivery=None) -> Sink:
    """Create the sink a URI names (wrapped in its filter when the URI has one). ``delivery``
    (a :class:`~streamtrt.config.DeliveryConfig`) gives network sinks their defaults."""
    text = uri.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    network = scheme in ("mqtt", "mqtts", "http", "https")
    target, options, filters = _split_query(text, keep_unknown=scheme in ("http", "https", "mqtt", "mqtts"))
    sink = _make(target, options, delivery) if network else _make_local(target, uri)
    if filters:
        rule = SinkFilter.from_query(filters, redact(uri))
        if rule.active:
            return FilteredSink(sink, rule)
    return sink


def is_summary_uri(uri: str) -> bool:
    """Whether a sink URI names a summary sink (``summary:PATH``, or a ``.json`` path), told as
    :func:`open_sink` tells it but without creating any sink."""
    text = uri.strip()
    if "://" in text:
        return False
    try:
        base, _, _ = _split_query(text, keep_unknown=False)
    except SinkError:
        return False
    kind, sep, rest = base.partition(":")
    if sep and kind in _KINDS and not rest.startswith("//"):
        return kind == "summary" and bool(rest)
    return _BY_SUFFIX.get(Path(base).suffix.lower()) == "summary"


def _seconds(target: str, options: dict[str, str], key: str) -> Optional[float]:
    if key not in options:
        return None
    try:
        value = float(options[key])
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise SinkError(f"sink {redact(target)!r}: {key} must be a number of seconds (got {options[key]!r})")
    return value


def _make(target: str, options: dict[str, str], delivery=None) -> Sink:
    kwargs = {}
    if "outbox" in options:
        kwargs["outbox"] = Path(options["outbox"])
    drain = _seconds(target, options, "drain")
    if drain is None and delivery is not None:
        drain = delivery.drain_s
    if drain is not None:
        kwargs["drain_s"] = drain
    if target.startswith(("mqtt://", "mqtts://")):
        from .mqtt import MqttSink

        return MqttSink(target, **kwargs)
    from .webhook import WebhookSink

    if "timeout" in options:
        kwargs["timeout_s"] = _seconds(target, options, "timeout")
    return WebhookSink(target, **kwargs)


def _make_local(text: str, original: str) -> Sink:
    if text in ("-", "stdout", "jsonl:", "jsonl:-"):
        return JsonlSink("-")
    kind, sep, rest = text.partition(":")
    if sep and kind in _KINDS and not rest.startswith("//"):
        if not rest:
            raise SinkError(f"sink {original!r}: missing path after '{kind}:'")
        return _KINDS[kind](rest)
    if sep and "://" in text and len(kind) > 1:
        raise SinkError(f"sink {redact(original)!r}: unsupported scheme '{kind}://' "
                        "(supported: jsonl:, csv:, video:, summary:, mqtt://, mqtts://, http(s)://, a path)")
    kind = _BY_SUFFIX.get(Path(text).suffix.lower())
    if kind is None:
        raise SinkError(
            f"sink {original!r}: cannot tell the kind from the name; use jsonl:PATH, csv:PATH, video:PATH or summary:PATH"
        )
    return _KINDS[kind](text)
