"""What the controller keeps about each worker and stream, and the actor names of a job."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from ..config import ClusterConfig

_DONE_STATES = ("done", "failed", "removed")
STARTUP_WAIT_S = 60.0
"""The first streams wait this long at most for every first worker to be ready (so they spread)."""


def controller_name(cluster: ClusterConfig) -> str:
    return f"{cluster.name}-controller"


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


def _is_live(source: dict) -> bool:
    from ..sources.uri import parse_source_uri

    if source.get("live") is not None:
        return bool(source["live"])
    return parse_source_uri(source["uri"]).is_live
