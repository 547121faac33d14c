"""Every name a user types, checked in one place: class names in ``postprocess.classes``, in
``analytics.lines[].classes`` / ``analytics.zones[].classes`` and in sink filters (``?classes=``),
and stream ids in sink filters (``?streams=``).

A misspelt name used to be accepted and to count nothing (exit 0, zero counts): now it is a
:class:`~streamtrt.errors.ConfigError` (exit 2) that names the key path and the nearest valid names
(``difflib.get_close_matches``). The one exception: a ``?streams=`` filter may name a stream that is
not configured when streams can be added at run time (``control.enabled``, or a pipeline built with
``keep_alive``); that is accepted with a warning, since the stream may arrive later.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Optional, Sequence

from .config import Config
from .errors import ConfigError
from .postprocess.classes import resolve_class_filter, unknown_name
from .sinks.filters import SinkFilter

log = logging.getLogger("streamtrt")


def check_names(config: Config, class_names: Sequence[str], sink_filters: Iterable[tuple[str, Optional[SinkFilter]]],
                runtime_streams: bool = False, warn: Callable[[str], None] = log.warning) -> None:
    """Raise :class:`ConfigError` for the first name that is not a class of the model (or not kept by
    ``postprocess.classes``) or not a configured stream id.

    ``sink_filters``: (key path, filter) per sink, e.g. ``("sinks.0", SinkFilter(...))``.
    ``runtime_streams``: streams may be added while running, so an unknown ``?streams=`` id is
    warned about (through ``warn``) instead of rejected.
    """
    names = list(class_names)
    kept = names
    if config.postprocess.classes:
        ids = resolve_class_filter(config.postprocess.classes, names)
        kept = [names[i] for i in sorted(ids)]

    def check_class(key: str, name: str) -> None:
        if name not in names:
            raise unknown_name(key, "class", name, names, "the model's classes are")
        if name not in kept:
            raise ConfigError(f"{key}: class {name!r} is dropped by postprocess.classes, so it would never be "
                              f"seen; kept classes: {', '.join(repr(k) for k in kept)}")

    for kind, items in (("lines", config.analytics.lines), ("zones", config.analytics.zones)):
        for i, item in enumerate(items):
            for name in item.classes or []:
                check_class(f"analytics.{kind}.{i}.classes", name)
    streams = [s.id for s in config.streams()]
    for key, rule in sink_filters:
        if rule is None:
            continue
        for name in sorted(rule.classes or ()):
            check_class(f"{key} (?classes=)", name)
        for sid in sorted(rule.streams or ()):
            if sid in streams:
                continue
            if runtime_streams:
                warn(f"{key} (?streams=): no configured stream is {sid!r}; kept because streams may be added "
                     "while running (control.enabled)")
                continue
            raise unknown_name(f"{key} (?streams=)", "stream", sid, streams, "the configured streams are")
