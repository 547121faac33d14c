"""Named extension points: a :class:`Registry` maps a name (a sink scheme, a model format, a
runner kind, a source kind) to the class or factory that implements it.

Each built-in piece registers itself in its own module with one decorator line, e.g.::

    @SINKS.register("jsonl")
    class JsonlSink(Sink): ...

and the package ``__init__`` imports that module (the import is what triggers registration).
Unknown names raise :class:`~streamtrt.errors.ConfigError` with the config key path and a
did-you-mean; :meth:`Registry.names` lists the names for ``--help`` texts and error messages.
Nothing is discovered by scanning installed packages: third-party pieces are loaded only when
the config names their module explicitly (see :func:`load_object`).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Callable, Generic, Iterator, Optional, TypeVar

from .errors import ConfigError, first_line

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> class or factory, in registration order.

    ``what`` names an entry in messages (``"sink kind"``, ``"model format"``)."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator: register the decorated class or function under ``name`` (and ``aliases``).

        Raises :class:`ValueError` when a name is taken (two pieces claiming one name is a bug)."""

        def decorate(obj: T) -> T:
            for key in (name, *aliases):
                self.add(key, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` (what :meth:`register` does, without the decorator)."""
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = obj

    def lookup(self, name: str, key_path: Optional[str] = None) -> T:
        """The entry for ``name``.

        Raises :class:`~streamtrt.errors.ConfigError` ``"<key_path>: unknown <what> 'x'; did you
        mean 'y'? (known: a, b, c)"`` for an unknown name."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self.unknown_message(name, key_path)) from None

    def unknown_message(self, name: str, key_path: Optional[str] = None) -> str:
        """The message :meth:`lookup` raises for an unknown ``name``."""
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = f"{key_path}: " if key_path else ""
        return f"{where}unknown {self.what} {name!r}{hint} (known: {', '.join(self.names())})"

    def get(self, name: str) -> Optional[T]:
        """The entry for ``name``, or ``None``."""
        return self._entries.get(name)

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in registration order."""
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def load_object(spec: str, key_path: str) -> object:
    """Import ``module.path:Attribute`` (``module.path:Outer.Inner`` also works) and return the attribute.

    The module is imported only now, because a config names it. Raises
    :class:`~streamtrt.errors.ConfigError` with ``key_path`` when the spec is malformed, the module
    cannot be imported, or it has no such attribute; the module's own errors on import are
    reported the same way (their first line)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{key_path}: {spec!r} is not 'module.path:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{key_path}: cannot import module {module_name!r} ({exc})") from None
    except Exception as exc:  # the module itself failed while importing
        raise ConfigError(f"{key_path}: importing module {module_name!r} failed: {first_line(exc)}") from None
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{key_path}: module {module_name!r} has no attribute {attr!r}") from None
    return obj
