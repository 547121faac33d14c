"""Custom sinks, loaded by module path from the config: ``python:MODULE:CLASS?KEY=VALUE&...``.

``MODULE`` is imported only because the config names it (nothing is discovered by scanning
installed packages); ``CLASS`` must subclass :class:`~streamtrt.sinks.base.Sink` and is
constructed with the query's keys as keyword arguments (string values). The filters
(``classes``, ``min_score``, ``streams``) apply as to every sink. See README "Extending streamtrt".
"""

from __future__ import annotations

from ..errors import ConfigError
from ..registry import load_object
from .base import Sink
from .registry import SinkKind, SinkSpec, register_sink_kind


def open_python_sink(spec: SinkSpec) -> Sink:
    """Import ``spec.target`` (``module.path:ClassName``) and construct it with ``spec.options``.

    Raises :class:`~streamtrt.errors.ConfigError` naming the key path when the module cannot be
    imported, has no such class, the class is not a :class:`Sink`, or it does not take the options."""
    where = spec.key_path or f"sink {spec.display!r}"
    obj = load_object(spec.target, where)
    if not (isinstance(obj, type) and issubclass(obj, Sink)):
        raise ConfigError(f"{where}: {spec.target} is not a subclass of streamtrt.sinks.base.Sink")
    try:
        sink = obj(**spec.options)
    except TypeError as exc:  # an option the class does not take, or one it needs
        raise ConfigError(f"{where}: {spec.target}: {exc}") from None
    if sink.display == Sink.display:
        sink.display = spec.display
    return sink


register_sink_kind(SinkKind("python", open_python_sink, any_options=True,
                            usage="python:MODULE:CLASS?KEY=VALUE (a custom Sink subclass)"))
