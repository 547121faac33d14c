"""What the controller keeps about each worker and stream, and the actor names of a job."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from ..config import ClusterConfig

_DONE_STATES = ("done", "failed", "removed")
STARTUP_WAIT_S = 60.0
"""The first streams wait this long at most for every first worker to be ready (so they spread)."""


CONTROLLER_SUFFIX = "-controller"


def controller_name(cluster: ClusterConfig) -> str:
    return cluster.name + CONTROLLER_SUFFIX


def worker_prefix(cluster: ClusterConfig) -> str:
    return f"{cluster.name}-w"


@dataclass
class _Worker:
    name: str
    slot: int
    handle: Any
    state: str = "starting"  # starting, ready, draining, stopping, dead
    info: dict = field(default_factory=dict)
    streams: set = field(default_factory=set)
    leaving: set = field(default_factory=set)  # draining: streams still running here until placed elsewhere
    ready_ref: Any = None
    drain_ref: Any = None
    drain_started: float = 0.0
    started: float = field(default_factory=time.monotonic)
    snapshot: dict = field(default_factory=dict)


@dataclass
class _Stream:
    id: str
    source: dict
    live: bool
    state: str = "pending"  # pending, running, done, failed, removed
    worker: Optional[str] = None
    restarts: int = 0
    error: Optional[str] = None
    stats: dict = field(default_factory=dict)
    orphaned_at: Optional[float] = None


def validate_source(source: dict, origin: str = "cluster add") -> dict:
    """A source added at run time, checked as ``sources.0`` of a config would be (the same messages,
    with the key path and rule); returns it JSON-ready with its ``uri`` and ``id``. Raises
    :class:`ConfigError`."""
    from pydantic import TypeAdapter, ValidationError

    from ..config import SourceConfig
    from ..config.loading import _format_validation_error
    from ..errors import ConfigError

    try:
        sc = TypeAdapter(dict[str, list[SourceConfig]]).validate_python({"sources": [source]})["sources"][0]
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, origin)) from None
    if sc.id is None:
        raise ConfigError(f"{origin}: a stream added to a cluster needs an id")
    out = sc.model_dump(mode="json", exclude_defaults=True)
    out["uri"], out["id"] = sc.uri, sc.id
    return out


def check_local_file(source: dict) -> dict:
    """A file or image source (a plain path or ``file://``) must exist here, where ``cluster add`` runs:
    :class:`SourceError` (as ``streamtrt run`` gives) when it does not. A relative path becomes
    absolute (the workers do not share this working directory). Other sources pass unchanged."""
    import os

    from ..errors import SourceError
    from ..sources.images import list_images
    from ..sources.uri import parse_source_uri

    uri = source["uri"]
    if source.get("format") or "://" in uri and not uri.startswith("file://"):
        return source
    parsed = parse_source_uri(uri)
    hint = "; a file source must be on a path every node sees"
    if parsed.kind == "file":
        if not os.path.isfile(parsed.location):
            raise SourceError(f"source not found: {uri}{hint}")
    elif parsed.kind == "images":
        try:
            list_images(parsed.location, uri)
        except SourceError as exc:
            raise SourceError(f"{exc}{hint}") from None
    else:
        return source
    if "://" not in uri and not os.path.isabs(os.path.expanduser(uri)):
        source = dict(source, uri=os.path.abspath(os.path.expanduser(uri)))
    return source


def _is_live(source: dict) -> bool:
    from ..sources.uri import parse_source_uri

    if source.get("live") is not None:
        return bool(source["live"])
    return parse_source_uri(source["uri"]).is_live
