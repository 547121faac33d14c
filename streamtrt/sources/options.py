"""Per-kind ``sources[]`` options: each source kind declares which of :data:`~.registry.KIND_OPTIONS`
it takes; the others are refused (with their key path) when the streams are resolved, instead of
being silently ignored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, SourceError
from .registry import KIND_OPTIONS, SOURCES
from .uri import parse_source_uri

if TYPE_CHECKING:
    from ..config import Config, SourceConfig


def _default(sc: "SourceConfig", key: str) -> Any:
    return type(sc).model_fields[key].get_default(call_default_factory=True)


def check_source_options(sc: "SourceConfig", key_path: str) -> None:
    """Refuse options that ``sc``'s kind would ignore (a default value is never refused: a dumped and
    re-read config spells every default out).

    Raises :class:`~streamtrt.errors.ConfigError` ``"<key_path>.<key>: does not apply to a video file;
    it applies to ... sources"``; an unparseable URI is left to the code that opens it."""
    try:
        kind = SOURCES.get(parse_source_uri(sc.uri).kind)
    except SourceError:
        return
    if kind is None:
        return
    values = sc.model_dump()
    for key in KIND_OPTIONS:
        if key in kind.options or values[key] == _default(sc, key):
            continue
        takes = sorted(name for name, k in SOURCES.items() if key in k.options)
        hint = " (to state a file's frame rate use fps)" if key == "options" and kind.name == "file" else ""
        raise ConfigError(f"{key_path}.{key}: does not apply to {kind.what}; it applies to "
                          f"{', '.join(takes)} sources{hint}")


def check_config_sources(config: "Config") -> None:
    """:func:`check_source_options` for every stream of ``config`` (key paths ``sources.N`` or ``source``)."""
    if config.sources:
        for i, item in enumerate(config.sources):
            if not isinstance(item, str):
                check_source_options(item, f"sources.{i}")
