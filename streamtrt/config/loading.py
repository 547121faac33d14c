"""Reading a config: YAML, relative paths, ``--set`` overrides, and validation errors with their key path."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .base import _Strict
from .job import Config


_INPUT_PATH_KEYS = (
    ("source",), ("model", "path"), ("model", "classes"), ("tensorrt", "calibration", "source"),
    ("tensorrt", "calibration", "cache"), ("tensorrt", "cache_dir"), ("cluster", "batch", "inputs"),
)
_INPUT_PATH_LISTS = (("tensorrt", "plugins"), ("cluster", "batch", "inputs"))


def _config_models() -> dict[str, type]:
    """Every config model by class name (the models validation errors are reported against)."""
    found, todo = {}, [_Strict]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def _did_you_mean(model_name: str, loc: list) -> Optional[str]:
    """The closest known key to an unknown one (``loc``'s last part), by difflib, or None."""
    import difflib
    import typing

    def model_in(annotation):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        for arg in typing.get_args(annotation):
            found = model_in(arg)
            if found is not None:
                return found
        return None

    model = _config_models().get(model_name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for part in loc[:-1]:
        if not isinstance(part, str):
            continue  # a list index: the item model is already the current one
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = model_in(field.annotation)
        if model is None:
            return None
    names = list(model.model_fields) + [f.alias for f in model.model_fields.values() if f.alias]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    if not close:
        return None
    return ".".join(str(p) for p in loc[:-1]) + ("." if len(loc) > 1 else "") + close[0]


def _format_validation_error(err: ValidationError, origin: str, overrides: Optional[list[str]] = None) -> str:
    """One line for a validation error: ``ORIGIN: problem; problem``. ``ORIGIN`` is the config file,
    or ``--set KEY=VALUE`` where the first problem lies under a key that override set."""
    parts = []
    for e in err.errors():
        # Union members and validators add tags such as "list[str]" to the location: drop them.
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and "[" in p))
        if not parts and overrides:
            origin = _override_for(loc, overrides) or origin
        if e["type"] == "extra_forbidden":
            hint = _did_you_mean(err.title, [p for p in e["loc"] if not (isinstance(p, str) and "[" in p)])
            parts.append(f"unknown key '{loc}'" + (f" (did you mean '{hint}'?)" if hint else ""))
        elif e["type"] == "missing":
            parts.append(f"missing required key '{loc}'")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
    # Union members report one error each; keep the message short and unique.
    seen: list[str] = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    return f"{origin}: " + "; ".join(seen[:3]) + (f" (and {len(seen) - 3} more)" if len(seen) > 3 else "")


def _override_for(loc: str, overrides: list[str]) -> Optional[str]:
    """``--set ITEM`` for the last override whose key is ``loc``, a section above it or a key below it."""
    for item in reversed(overrides):
        key = ".".join(k for k in item.partition("=")[0].strip().split(".") if k)
        if key and (loc == key or loc.startswith(key + ".") or key.startswith(loc + ".")):
            return f"--set {item}"
    return None


def _resolve_input_paths(raw: dict[str, Any], base: Path) -> None:
    sources = raw.get("sources")
    if isinstance(sources, list):
        for i, item in enumerate(sources):
            if isinstance(item, str) and not _is_uri_or_device(item):
                sources[i] = _resolve(item, base)
            elif isinstance(item, dict) and isinstance(item.get("uri"), str) and not _is_uri_or_device(item["uri"]):
                item["uri"] = _resolve(item["uri"], base)
    for key_path in _INPUT_PATH_KEYS:
        node: Any = raw
        for k in key_path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        value = node.get(key_path[-1])
        if not isinstance(value, str) or value == "coco" or _is_uri_or_device(value):
            continue
        node[key_path[-1]] = _resolve(value, base)
    for key_path in _INPUT_PATH_LISTS:
        node = raw
        for k in key_path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        values = node.get(key_path[-1]) if isinstance(node, dict) else None
        if isinstance(values, list):
            node[key_path[-1]] = [_resolve(v, base) if isinstance(v, str) else v for v in values]


def _is_uri_or_device(value: str) -> bool:
    return "://" in value or value.isdigit() or value.startswith("/dev/")


def _resolve(value: str, base: Path) -> str:
    p = Path(os.path.expanduser(value))
    return str(p) if p.is_absolute() else os.path.normpath(str(base / p))


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``key.path=value``; the value is read as YAML (so ``8``, ``true``, ``[a, b]`` work)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, _, value = item.partition("=")
    path = [k for k in key.strip().split(".") if k]
    if not path:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc.__class__.__name__})") from None
    return path, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key.path=value`` overrides applied."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        path, value = parse_override(item)
        if len(path) > 1 and path[0] == "sources" and not raw.get("sources") and isinstance(raw.get("source"), str):
            # `--set sources.0.fps=5` on a config that names its one input with `source:`
            raw["sources"], raw["source"] = [{"uri": raw["source"]}], None
        node: Any = raw
        for i, k in enumerate(path[:-1]):
            if isinstance(node, list):  # an item of a list by its index: sources.0.format
                idx = _list_index(node, k, item, path[:i])
                child = node[idx]
                if isinstance(child, str) and path[:i] == ["sources"]:
                    child = node[idx] = {"uri": child}  # a plain URI string is {uri: ...}
            else:
                child = node.get(k)
                if child is None:
                    child = node[k] = {}
            if not isinstance(child, (dict, list)):
                raise ConfigError(f"--set {item!r}: '{'.'.join(path[: i + 1])}' is not a section")
            node = child
        if isinstance(node, list):
            node[_list_index(node, path[-1], item, path[:-1])] = value
        else:
            node[path[-1]] = value
    return raw


def _list_index(items: list, key: str, item: str, where: list[str]) -> int:
    if not key.isdigit() or int(key) >= len(items):
        raise ConfigError(f"--set {item!r}: '{'.'.join(where)}' has {len(items)} item(s); "
                          f"'{key}' is not one of the indices 0..{len(items) - 1}")
    return int(key)


def read_yaml(path: Union[str, Path]) -> dict[str, Any]:
    """Read a YAML mapping, mapping I/O and syntax errors to :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def config_from_dict(raw: dict[str, Any], origin: str = "config", overrides: Optional[list[str]] = None) -> Config:
    """Validate a raw mapping into a :class:`Config`; ``overrides`` (the ``--set`` items applied to
    ``raw``) name the culprit when the error lies under one of their keys."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, origin, overrides)) from None


def load_config(
    source: Union[str, Path, dict[str, Any], Config],
    overrides: Optional[list[str]] = None,
) -> Config:
    """Load a config from a YAML file, a mapping or a :class:`Config`, applying ``key=value`` overrides.

    Relative input paths in a file are resolved against the file's directory.
    """
    if isinstance(source, Config):
        if not overrides:
            return source
        # Only what was set: keys left at their defaults stay "unset", so the model's metadata may fill them.
        raw, origin = source.model_dump(mode="json", exclude_unset=True), "config"
    elif isinstance(source, dict):
        raw, origin = copy.deepcopy(source), "config"
    else:
        path = Path(source)
        raw, origin = read_yaml(path), str(path)
        _resolve_input_paths(raw, path.resolve().parent)
    if overrides:
        raw = apply_overrides(raw, overrides)
    return config_from_dict(raw, origin, overrides)
