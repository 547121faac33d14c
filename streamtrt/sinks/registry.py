"""The sink kinds: ``SINKS`` maps a kind name to a :class:`SinkKind`, and sink URIs are parsed here.

A sink is written ``kind:TARGET`` (``jsonl:out.jsonl``), ``scheme://...`` (``mqtt://host/topic``;
the whole URL is the target) or as a bare path whose suffix picks the kind (``out.csv``). Each
sink module registers its kind in one statement::

    register_sink_kind(SinkKind("csv", lambda spec: CsvSink(spec.target), suffixes=(".csv",), usage="csv:PATH"))

and ``streamtrt/sinks/__init__.py`` imports the module. The query holds the filters every sink
takes (``classes``, ``min_score``, ``streams``) and the options the kind declares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import parse_qsl, urlencode

from ..errors import SinkError
from ..registry import Registry
from ..redact import redact

if TYPE_CHECKING:
    from .base import Sink

FILTER_KEYS = ("classes", "min_score", "streams")
"""Query keys every sink takes (see :class:`~streamtrt.sinks.filters.SinkFilter`)."""


@dataclass(frozen=True)
class SinkSpec:
    """A parsed sink URI, handed to :attr:`SinkKind.open`."""

    uri: str
    """As written (it may hold credentials: show it as :attr:`display`)."""
    target: str
    """The path of ``kind:PATH`` and bare paths; the URL (without streamtrt's options) of ``scheme://``."""
    options: dict[str, str] = field(default_factory=dict)
    """The kind's own options from the query (e.g. ``outbox``, ``drain``, ``timeout``)."""
    delivery: Any = None
    """The job's :class:`~streamtrt.config.DeliveryConfig` (network sinks' defaults), or ``None``."""
    key_path: Optional[str] = None
    """Where the URI came from in the config (``sinks.0``), for messages."""

    @property
    def display(self) -> str:
        return redact(self.uri)


@dataclass(frozen=True)
class SinkKind:
    """How one kind of sink is written and opened."""

    name: str
    """The kind; ``name:TARGET`` names it unless ``prefix`` is false."""
    open: Callable[[SinkSpec], "Sink"]
    """Create the sink (not yet opened: the pipeline calls ``open(fps)``). Raises
    :class:`~streamtrt.errors.SinkError` for a bad target or option."""
    prefix: bool = True
    """Written ``name:TARGET``."""
    schemes: tuple[str, ...] = ()
    """Written ``scheme://...`` (the whole URL is the target)."""
    suffixes: tuple[str, ...] = ()
    """A bare path with one of these suffixes (lower case, with the dot) is this kind."""
    options: tuple[str, ...] = ()
    """Query keys beyond the filters that this kind takes (into :attr:`SinkSpec.options`)."""
    keeps_query: bool = False
    """Other query keys belong to the target URL and stay in it (MQTT's ``?ca=``); otherwise they are refused."""
    any_options: bool = False
    """Every other query key is an option of this kind (``python:`` sinks' constructor arguments)."""
    usage: str = ""
    """How ``--sink`` help shows it, e.g. ``csv:PATH``."""


SINKS: Registry[SinkKind] = Registry("sink kind")
SINK_SCHEMES: Registry[SinkKind] = Registry("sink scheme")
_SUFFIXES: dict[str, SinkKind] = {}
STDOUT = ("-", "stdout", "jsonl:", "jsonl:-")
"""Ways to write JSON Lines to stdout."""


def register_sink_kind(kind: SinkKind) -> SinkKind:
    """Register ``kind`` under its name, schemes and suffixes."""
    SINKS.add(kind.name, kind)
    for scheme in kind.schemes:
        SINK_SCHEMES.add(scheme, kind)
    for suffix in kind.suffixes:
        if suffix in _SUFFIXES and _SUFFIXES[suffix] is not kind:
            raise ValueError(f"sink suffix {suffix!r} is registered twice")
        _SUFFIXES[suffix] = kind
    return kind


def sink_usage() -> str:
    """The sink kinds as ``--sink`` help lists them."""
    return ", ".join(k.usage for _, k in SINKS.items() if k.usage)


def _prefixes() -> str:
    return ", ".join([f"{k.name}:" for _, k in SINKS.items() if k.prefix] + [f"{s}://" for s in SINK_SCHEMES.names()])


@dataclass(frozen=True)
class ParsedSink:
    kind: SinkKind
    spec: SinkSpec
    filters: str
    """The filter part of the query (``classes=...&min_score=...``), empty without one."""


def parse_sink_uri(uri: str, delivery: Any = None, key_path: Optional[str] = None) -> ParsedSink:
    """Which kind ``uri`` names, its target, options and filter query. Raises
    :class:`~streamtrt.errors.SinkError` for an unknown kind or option (as ``open_sink`` always has)."""
    text = uri.strip()
    if text in STDOUT:
        return ParsedSink(SINKS.lookup("jsonl"), SinkSpec(uri, "-", {}, delivery, key_path), "")
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        kind = SINK_SCHEMES.get(scheme)
        if kind is None:
            if len(scheme) > 1:
                raise SinkError(f"sink {redact(uri)!r}: unsupported scheme '{scheme}://' "
                                f"(supported: {_prefixes()}, a path)")
            kind = None  # a Windows drive letter: a path
        else:
            target, options, filters = _split_query(text, kind, uri)
            return ParsedSink(kind, SinkSpec(uri, target, options, delivery, key_path), filters)
    name, sep, rest = text.partition(":")
    kind = SINKS.get(name) if sep and not rest.startswith("//") else None
    if kind is not None and kind.prefix:
        target, options, filters = _split_query(rest, kind, uri)
        if not target:
            raise SinkError(f"sink {uri!r}: missing {'path' if kind.suffixes else 'target'} after '{name}:'")
        return ParsedSink(kind, SinkSpec(uri, target, options, delivery, key_path), filters)
    base = text.partition("?")[0]
    kind = _SUFFIXES.get(Path(base).suffix.lower())
    if kind is None:
        raise SinkError(f"sink {uri!r}: cannot tell the kind from the name; use "
                        + ", ".join(f"{k.name}:PATH" for _, k in SINKS.items() if k.suffixes))
    target, options, filters = _split_query(text, kind, uri)
    return ParsedSink(kind, SinkSpec(uri, target, options, delivery, key_path), filters)


def _split_query(text: str, kind: SinkKind, uri: str) -> tuple[str, dict[str, str], str]:
    """(the target without streamtrt's own query keys, the kind's options, the filter query)."""
    base, sep, query = text.partition("?")
    if not sep:
        return text, {}, ""
    pairs = parse_qsl(query, keep_blank_values=True)
    mine = [(k, v) for k, v in pairs if k in kind.options or (kind.any_options and k not in FILTER_KEYS)]
    rest = [(k, v) for k, v in pairs if k not in FILTER_KEYS and (k, v) not in mine]
    if rest and not kind.keeps_query:
        raise SinkError(f"sink {redact(uri)!r}: unknown option(s) {', '.join(sorted({k for k, _ in rest}))} "
                        f"(filters: {', '.join(FILTER_KEYS)}"
                        + (f"; {kind.name} sinks also: {', '.join(kind.options)})" if kind.options else ")"))
    filters = urlencode([(k, v) for k, v in pairs if k in FILTER_KEYS])
    return (base + ("?" + urlencode(rest) if rest else "")), dict(mine), filters
